"""Smoke test: the fed-funds benchmark script runs end to end and writes sane JSON."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_fedfunds.py"
SAMPLED = ("regimes_run_1", "numpyro_handwritten")


@pytest.mark.slow
def test_bench_fedfunds_smoke(tmp_path: Path) -> None:
    """`bench_fedfunds.py --smoke --json` exits 0 with positive wall times and finite ESS."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    entrants = data["entrants"]
    expected = {"regimes_run_1", "regimes_run_2", "numpyro_handwritten", "statsmodels_mle"}
    assert expected | {"pymc_extras_nutpie"} <= set(entrants)
    for name in SAMPLED:
        row = entrants[name]
        assert row["wall_s"] > 0
        assert math.isfinite(row["min_ess_bulk"]) and row["min_ess_bulk"] > 0
        assert row["ess_per_s"] > 0
    assert entrants["statsmodels_mle"]["wall_s"] > 0
    assert "skipped" in entrants["regimes_run_2"]  # --smoke skips the warm second run
    pe = entrants["pymc_extras_nutpie"]
    if "skipped" not in pe:
        assert pe["wall_s"] > 0 and math.isfinite(pe["min_ess_bulk"])
    assert len(data["targets"]) == 3
