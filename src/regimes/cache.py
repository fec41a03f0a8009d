"""Process-wide setup, made once per process by an explicit call (`setup_process`): where compiled
code is cached (PyTensor, numba, JAX: one folder, never scattered), how many XLA host devices
JAX sees, one BLAS thread per process, and where the `regimes` loggers write.

Only entry points call it (the `regimes` command, a Dask worker's start-up, validation and
benchmark scripts): library code never does, so a notebook or another program that imports
`regimes` keeps its own environment, thread limits and logging.

`REGIMES_CACHE_DIR` sets it (CI and the tests point it inside the project's ignored `.cache/`);
otherwise the per-user cache directory is used. Set before PyTensor is first imported.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from regimes.errors import ConfigError

HOST_DEVICES = 8  # chains numpyro can run side by side whatever the core count


def cache_root() -> Path:
    """The folder holding all compiled-code caches."""
    env = os.environ.get("REGIMES_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("regimes")) / "compiled"


def configure_compile_caches() -> Path:
    """Point PyTensor, numba and JAX caches at `cache_root()` unless the user set them already."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:  # a file in the way, no permission, a bad name
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"compile cache folder {str(root)[:200]} cannot be created ({reason}); point "
            "REGIMES_CACHE_DIR at a writable folder"
        ) from None
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags:
        extra = f"base_compiledir={root / 'pytensor'}"
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{extra}" if flags else extra
    os.environ.setdefault("NUMBA_CACHE_DIR", str(root / "numba"))
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(root / "jax"))
    # every compiled function, not only those that took over JAX's default 1 s: a run compiles
    # tens of small functions (passes, derive, PPC) whose compilation is most of a warm run's
    # compile phase (fed funds, warm: 3.1 -> 2.0 s; benchmarks/README.md)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    # numpyro runs chains in parallel only with one XLA host device per chain; with fewer it falls
    # back to drawing them one after another on one core (4 chains on 2 cores: 1.8x slower). So
    # at least HOST_DEVICES devices, even on fewer cores (read once, when JAX starts). PyMC's
    # pymc.sampling.jax prepends its own count of 100 on import, but XLA takes the last one: ours.
    xla = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in xla:
        n = max(os.cpu_count() or 1, HOST_DEVICES)
        count = f"--xla_force_host_platform_device_count={n}"
        os.environ["XLA_FLAGS"] = f"{xla} {count}".strip()
    return root


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> None:
    """One BLAS thread per process, unless the user set a BLAS thread count. The numpy and scipy
    work here is small (L-BFGS steps between jitted calls, filters, summaries), and OpenBLAS
    threads spin while they wait: with processes side by side on the same cores (SBC runs, the
    test suite's workers) a 12-start multistart took 16× as long as alone with one thread per
    core, and 1.9× with one (`benchmarks/bench_side_by_side.py`). Dask's workers get the same
    from their nanny."""
    if any(var in os.environ for var in BLAS_VARS):
        return
    for var in BLAS_VARS:  # read when a BLAS library loads
        os.environ[var] = "1"
    if "numpy" in sys.modules:  # already loaded (a notebook, a test runner): limit it now
        from threadpoolctl import threadpool_limits  # deferred: only needed in this case

        threadpool_limits(1, user_api="blas")


@contextmanager
def environment_kept() -> Iterator[None]:
    """Leave `os.environ` as it was when the block started: a library call of `regimes` must
    not change an importing user's process, and some of what it imports does on import (PyMC's
    JAX module rewrites XLA_FLAGS with its own device count)."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k not in before]:
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


class _Stderr(logging.StreamHandler):
    """A handler that writes to whatever `sys.stderr` is at the time (test capture included)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_SETUP: dict[str, Path] = {}


def setup_process(level: int = logging.INFO) -> Path:
    """The one process-wide setup: compile caches, XLA host devices and BLAS threads (before
    JAX, PyTensor or numpy start), and progress messages of the `regimes` loggers on stderr as
    `[regimes] ...` lines. Entry points call it once, first thing (the CLI, a worker, a script);
    later calls only change the level. A notebook may call it to get the same set-up."""
    logger = logging.getLogger("regimes")
    logger.setLevel(level)
    if "root" not in _SETUP:
        _SETUP["root"] = configure_compile_caches()
        limit_blas_threads()
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("[regimes] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return _SETUP["root"]
