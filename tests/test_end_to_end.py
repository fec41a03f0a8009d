"""Every shipped experiment runs with --quick and yields a complete run directory (examples can't rot)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from regimes.api import run_experiment
from regimes.results import open_run

ROOT = Path(__file__).resolve().parents[1]
# study folders (with a study.toml) run as a whole in test_study.py, with the same checks per run
STUDY_DIRS = {p.parent for p in (ROOT / "experiments").rglob("study.toml")}
EXPERIMENTS = sorted(
    p
    for p in (ROOT / "experiments").rglob("*.toml")
    if p.parent not in STUDY_DIRS and p.name != "study.toml"
)


def check_run_dir(run_dir: Path, stem: str) -> None:
    """Everything a complete quick run directory must hold, whatever its family (shared with the
    study test, which runs the experiments under experiments/gold/)."""
    run = open_run(run_dir)
    files = set(run.manifest["files"])
    assert {
        "posterior.nc",
        "derived.nc",
        "config.toml",
        "figures/fair_value.png",
        "figures/fair_value.svg",
    } <= files
    derived = run.derived()
    for name in ("price", "fair_value", "deviation_pct"):
        assert name in derived
    assert derived["fair_value"].dims == ("time", "quantile")
    assert derived["deviation_pct"].dims == ("time", "quantile")
    assert np.issubdtype(derived["time"].dtype, np.datetime64)
    assert [
        q for q in derived["quantile"].values.tolist() if q in (0.05, 0.25, 0.5, 0.75, 0.95)
    ] == [0.05, 0.25, 0.5, 0.75, 0.95]
    if derived.attrs["family"] == "static":
        assert 0 < derived.attrs["r2_bayes"] < 1
    if derived.attrs["family"] == "markov":
        k = derived.attrs["k_regimes"]
        assert derived.sizes["regime"] == k
        assert derived["regime"].dtype.kind in "UO"
        np.testing.assert_allclose(derived["regime_prob"].sum("regime"), 1.0, atol=1e-9)
        assert derived["regime_prob_q"].dims == ("time", "regime", "quantile")
        assert derived["fair_value_by_regime"].dims == ("time", "regime", "quantile")
        if derived.attrs["transition"] == "covariates":
            assert derived["expected_duration"].dims == ("time", "regime", "quantile")
        else:
            assert derived["expected_duration"].dims == ("regime", "quantile")
        if derived.attrs["transition"] == "changepoint":
            assert derived["break_prob"].dims == ("time", "break")
            assert "figures/break_dates.png" in files
        assert (derived["expected_duration"] >= 1).all()
        assert {
            "figures/regime_ribbon.png",
            "figures/transition_matrix.svg",
            "figures/durations.png",
        } <= files
    if derived.attrs["family"] in ("static", "markov"):  # one-step posterior predictive checks
        assert "posterior_predictive" in run.posterior().children
        assert derived["pit"].dims == ("time",)
        assert "figures/ppc.png" in files
        assert derived.attrs["ppc_ok"] in (0, 1)
    for attr in ("experiment", "model", "sample_start", "sample_end", "converged", "data_hash"):
        assert attr in derived.attrs
    # fair value continues past the fit window to the latest month
    in_sample = derived["in_sample"].values.astype(bool)
    assert (~in_sample[-12:]).all() if stem == "old_framework" else in_sample.any()
    assert np.isfinite(derived["fair_value"].values).all()
    tree = run.posterior()
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(tree.children)
    config = tomllib.loads(run.config_text)
    assert config["resolved_model"]["family"]
    assert run.manifest["data_hash"] == derived.attrs["data_hash"]
    assert run.manifest["packages"]["pymc"].startswith("6.")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_runs_quick(path: Path, data_dir: Path, tmp_path: Path) -> None:
    run_dir = run_experiment(
        path, data_dir=data_dir, out=tmp_path, quick=True, progress=False, quiet=True, report=False
    )  # reports are tested in test_report.py
    check_run_dir(run_dir, path.stem)


def test_cli_user_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'model = "static_fair_value"\n[data]\ntarget = "gold"\nstart = "2000-01"\nend = "2001-01"\nfoo = 1\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "regimes.cli", "run", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("regimes: error:")
    assert "unknown key 'data.foo'" in proc.stderr
    assert "Traceback" not in proc.stderr
