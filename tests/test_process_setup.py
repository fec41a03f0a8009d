"""`setup_process` gives each process one BLAS thread unless the user chose a count: spinning
OpenBLAS threads of processes side by side on the same cores made a multistart 17× slower
(benchmarks/bench_side_by_side.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from regimes.cache import BLAS_VARS

PROBE = """
import json, numpy  # loaded before the setup, as in a notebook or a test runner
from regimes.cache import setup_process
setup_process()
from threadpoolctl import threadpool_info
print(json.dumps([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]))
"""


def blas_threads(**env: str) -> list[int]:
    """The BLAS thread counts a fresh process reports after `setup_process`, under `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_blas_thread_even_when_numpy_was_loaded_first() -> None:
    threads = blas_threads()
    assert threads and set(threads) == {1}


def test_a_users_blas_thread_count_is_kept() -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("OpenBLAS caps the count at the cores: one core cannot tell them apart")
    assert set(blas_threads(OPENBLAS_NUM_THREADS="2")) == {2}


JAX_PROBE = """
from regimes.cache import setup_process
setup_process()
import jax
jax.jit(lambda x: x * 2.0 + 1.0)(1.0).block_until_ready()  # compiles in milliseconds
"""


def test_even_a_quick_jax_compilation_is_cached_on_disk(tmp_path) -> None:
    """A run compiles tens of small functions; JAX's default caches only compilations over 1 s,
    so a warm run compiled them all again. After `setup_process` every one is kept."""
    drop = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    clean = {k: v for k, v in os.environ.items() if k not in drop}
    subprocess.run(
        [sys.executable, "-c", JAX_PROBE], env={**clean, "REGIMES_CACHE_DIR": str(tmp_path)},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert [p for p in (tmp_path / "jax").rglob("*") if p.is_file()]
