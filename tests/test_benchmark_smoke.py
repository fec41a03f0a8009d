"""Smoke tests: the benchmark scripts run end to end and write sane JSON (no wall-clock asserts)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPT = BENCH / "bench_fedfunds.py"
GROWTH = BENCH / "bench_growth.py"
MEMORY = BENCH / "bench_memory.py"
COMPILE = BENCH / "bench_compile.py"
SAMPLED = ("regimes_run_1", "numpyro_handwritten")


def _run(args: list[str], timeout: int = 600) -> None:
    """Run a benchmark script with this interpreter from the repository root; fail with its output."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _positive(value: Any) -> bool:
    """A finite number above zero."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _loadavg_ok(data: dict[str, Any]) -> None:
    """Load averages recorded at start and end (None only where the OS cannot tell)."""
    for key in ("loadavg_start", "loadavg_end"):
        assert key in data
        assert data[key] is None or (len(data[key]) == 3 and all(x >= 0 for x in data[key]))


@pytest.mark.validation  # about a minute: by hand with -m validation (CI budget)
def test_bench_fedfunds_smoke(tmp_path: Path) -> None:
    """`bench_fedfunds.py --smoke --no-peers --json` exits 0 with positive times and finite ESS."""
    out = tmp_path / "bench.json"
    _run([str(SCRIPT), "--smoke", "--no-peers", "--json", str(out)])
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
    assert "skipped" in entrants["pymc_extras_nutpie"]  # --no-peers
    assert len(data["targets"]) == 3
    _loadavg_ok(data)


def _load_fedfunds() -> ModuleType:
    """Import bench_fedfunds.py as a module (benchmarks/ is not a package)."""
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_fedfunds_under_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peer_entrant_skipped_without_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pymc-extras here and without benchmarks/.venv-peers the peer is skipped, with why."""
    import numpy as np

    bench = _load_fedfunds()
    monkeypatch.setattr(bench, "pymc_extras_available", lambda: False)
    monkeypatch.setattr(bench, "PEERS_PYTHON", tmp_path / "no-venv" / "bin" / "python")
    row = bench.peer_entrant(np.zeros(5), tmp_path, (1, 10, 10, 0), no_peers=False)
    assert row == {"skipped": bench.SKIP_PYMC_EXTRAS}
    assert "make_env.sh" in row["skipped"]
    assert bench.peer_entrant(np.zeros(5), tmp_path, (1, 10, 10, 0), no_peers=True) == {
        "skipped": "skipped (--no-peers)"
    }


@pytest.mark.validation  # about a minute: by hand with -m validation (CI budget)
def test_bench_growth_smoke(tmp_path: Path) -> None:
    """`bench_growth.py --smoke --json` fits every smoke cell and reports positive times and ESS."""
    out = tmp_path / "growth.json"
    _run([str(GROWTH), "--smoke", "--json", str(out)])
    data = json.loads(out.read_text(encoding="utf-8"))
    settings = data["settings"]
    cells = data["cells"]
    assert len(cells) == len(settings["T"]) * len(settings["K"]) >= 2
    for cell in cells:
        assert {
            "T",
            "K",
            "sample_s",
            "multistart_s",
            "min_ess_bulk",
            "ess_per_s",
            "loglik_s",
        } <= set(cell)
        assert _positive(cell["sample_s"]) and _positive(cell["loglik_s"])
        assert _positive(cell["min_ess_bulk"]) and _positive(cell["ess_per_s"])
    ratio = data["ratio_hi_lo"]
    assert ratio["T_hi"] > ratio["T_lo"]
    assert all(_positive(ratio[f"K={k}"]) for k in settings["K"])
    assert data["target"].startswith("target:")
    _loadavg_ok(data)


@pytest.mark.validation  # a quick fed funds run under the memory probe: by hand (CI budget)
def test_bench_memory_smoke(tmp_path: Path) -> None:
    """`bench_memory.py` on a --quick, figure-less fed-funds run reports positive peak memory."""
    out = tmp_path / "memory.json"
    experiment = ROOT / "experiments" / "fedfunds_msv.toml"
    args = ["--experiment", str(experiment), "--quick", "--no-figures", "--json", str(out)]
    _run([str(MEMORY), *args])
    data = json.loads(out.read_text(encoding="utf-8"))
    for key in ("wall_s", "maxrss_mb", "peak_mb", "ratio_to_2048"):
        assert _positive(data[key]), key
    assert data["tree_peak_mb"] is None or data["tree_peak_mb"] > 0
    assert data["peak_mb"] >= data["maxrss_mb"]
    assert data["quick"] is True and data["figures"] is False
    assert "smoke settings" in data["target"]
    _loadavg_ok(data)


@pytest.mark.validation  # a minute of compiling and refits: by hand with -m validation
def test_bench_compile_smoke(tmp_path: Path) -> None:
    """`bench_compile.py --smoke --json` exits 0 with positive times and ratios for both parts."""
    out = tmp_path / "compile.json"
    _run([str(COMPILE), "--smoke", "--json", str(out)])
    data = json.loads(out.read_text(encoding="utf-8"))
    _loadavg_ok(data)
    (lfo,) = data["lfo"]
    assert lfo["model"] == "ms1_ecm" and lfo["refits"] == 2
    assert all(_positive(lfo[k]) for k in ("cold_s", "reused_s", "first_reused_s", "ratio"))
    assert _positive(data["lfo_ratio"])
    sbc = data["sbc"]
    assert sbc["sims"] == 2 and all(_positive(sbc[k]) for k in ("cold_s", "later_mean_s", "ratio"))
