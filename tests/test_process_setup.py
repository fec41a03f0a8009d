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
