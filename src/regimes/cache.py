"""Where compiled code is cached (PyTensor, numba, JAX): one folder, never scattered.

`REGIMES_CACHE_DIR` sets it (CI and the tests point it inside the project's ignored `.cache/`);
otherwise the per-user cache directory is used. Set before PyTensor is first imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The folder holding all compiled-code caches."""
    env = os.environ.get("REGIMES_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("regimes")) / "compiled"


def configure_compile_caches() -> Path:
    """Point PyTensor, numba and JAX caches at `cache_root()` unless the user set them already."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags:
        extra = f"base_compiledir={root / 'pytensor'}"
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{extra}" if flags else extra
    os.environ.setdefault("NUMBA_CACHE_DIR", str(root / "numba"))
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(root / "jax"))
    # one XLA host device per core, so numpyro runs chains in parallel (read when JAX starts)
    xla = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in xla:
        count = f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
        os.environ["XLA_FLAGS"] = f"{xla} {count}".strip()
    return root
