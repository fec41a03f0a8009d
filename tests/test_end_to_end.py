"""Every shipped experiment runs with --quick and yields a complete run directory (examples can't rot)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regimes.api import run_experiment
from regimes.results import open_run

ROOT = Path(__file__).resolve().parents[1]
# the five named one-step calibration checks of regimes.ppc, in their stored order
PPC_CHECKS = [
    "PIT normal-score autocorrelation (lag 1)",
    "PIT normal-score sd",
    "PIT normal-score mean",
    "coverage of 90% one-step intervals",
    "coverage of 50% one-step intervals",
]
# study folders (with a study.toml) run as a whole in test_study.py, with the same checks per run
STUDY_DIRS = {p.parent for p in (ROOT / "experiments").rglob("study.toml")}
EXPERIMENTS = sorted(
    p
    for p in (ROOT / "experiments").rglob("*.toml")
    if p.parent not in STUDY_DIRS and p.name != "study.toml" and p.parent.name != "sweeps"
)  # sweep files are checked in tests/test_sweep_*.py


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
    lead = ("asset",) if "asset" in derived.dims else ()  # a panel: one per asset
    assert derived["fair_value"].dims == (*lead, "time", "quantile")
    assert derived["deviation_pct"].dims == (*lead, "time", "quantile")
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
        check_ppc_verdict(run, derived)
    for attr in ("experiment", "model", "sample_start", "sample_end", "converged", "data_hash"):
        assert attr in derived.attrs
    config = tomllib.loads(run.config_text)
    check_fit_window(run, derived, config["data"])
    if stem == "old_framework":  # fit ends 2021-12: the fair value runs on past the window
        assert (derived["in_sample"].values[-12:] == 0).all()
    assert np.isfinite(derived["fair_value"].values).all()
    tree = run.posterior()
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(tree.children)
    assert config["resolved_model"]["family"]
    assert run.manifest["data_hash"] == derived.attrs["data_hash"]
    assert run.manifest["packages"]["pymc"].startswith("6.")


def check_fit_window(run, derived, data: dict) -> None:
    """`in_sample` is 1 exactly on the months of the configured fit window ([data] start..end of
    the stored config.toml) and 0 on every later month; the window recorded in the attrs and
    the manifest is that block's first and last month."""
    time = pd.DatetimeIndex(derived["time"].values)
    in_sample = derived["in_sample"].values
    assert set(np.unique(in_sample)) <= {0, 1}
    # months before data.start are not in the frame ("earliest": the first complete month)
    start = time[0] if data["start"] == "earliest" else pd.Timestamp(data["start"])
    expected = (time >= start) & (time <= pd.Timestamp(data["end"]))
    assert expected[0] and expected.sum() >= 3
    np.testing.assert_array_equal(in_sample, expected.astype(in_sample.dtype))
    fit_months = time[in_sample == 1]
    window = run.manifest["data_window"]
    assert derived.attrs["sample_start"] == window["fit_start"] == f"{fit_months[0]:%Y-%m}"
    assert derived.attrs["sample_end"] == window["fit_end"] == f"{fit_months[-1]:%Y-%m}"
    assert window["last"] == f"{time[-1]:%Y-%m}"
    if data.get("predict_end", "latest") != "latest":
        assert time[-1] <= pd.Timestamp(data["predict_end"])


def check_ppc_verdict(run, derived) -> None:
    """The stored posterior-predictive verdict is one consistent story: the five checks in
    `ppc_check` (check, statistic) are what the stored PITs give, a check is flagged (in `ppc_reasons`) exactly
    when it is more than Z_FLAG standard errors from its ideal, `ppc_ok` is 1 exactly when
    nothing is flagged, and the manifest's verdict says the same."""
    checks = derived["ppc_check"]
    assert list(checks["check"].values) == PPC_CHECKS
    assert sorted(checks["statistic"].values) == ["ideal", "value", "z"]
    # PITs are scored on the months of the one-step replicates (inside the fit window), NaN after
    rep = run.posterior()["posterior_predictive"]["y"]
    scored = np.isin(derived["time"].values, rep["time"].values)
    pit = derived["pit"].values
    assert np.isfinite(pit[scored]).all() and np.isnan(pit[~scored]).all()
    assert (derived["in_sample"].values[scored] == 1).all()
    # recompute the five checks from the stored PITs (as regimes.ppc.check defines them)
    pit = pit[scored]
    n, s = len(pit), rep.sizes["chain"] * rep.sizes["draw"]
    z = stats.norm.ppf(np.clip(pit, 0.5 / s, 1 - 0.5 / s))
    values = [
        np.corrcoef(z[:-1], z[1:])[0, 1],
        z.std(),
        z.mean(),
        np.mean((pit > 0.05) & (pit < 0.95)),
        np.mean((pit > 0.25) & (pit < 0.75)),
    ]
    ideals = [0.0, 1.0, 0.0, 0.9, 0.5]
    ses = [1 / np.sqrt(n), 1 / np.sqrt(2 * n), 1 / np.sqrt(n), np.sqrt(0.09 / n), np.sqrt(0.25 / n)]
    zs = [(v - i) / se for v, i, se in zip(values, ideals, ses, strict=True)]
    np.testing.assert_allclose(checks.sel(statistic="value"), values, rtol=0, atol=6e-5)
    np.testing.assert_allclose(checks.sel(statistic="ideal"), ideals, rtol=0, atol=0)
    np.testing.assert_allclose(checks.sel(statistic="z"), zs, rtol=0, atol=6e-5)
    from regimes.ppc import Z_FLAG

    flagged = [name for name, zz in zip(PPC_CHECKS, zs, strict=True) if abs(zz) > Z_FLAG]
    reasons = derived.attrs["ppc_reasons"]
    assert [r.split(" is ")[0] for r in reasons.split("; ") if r] == flagged
    assert derived.attrs["ppc_ok"] == (0 if flagged else 1)
    assert (derived.attrs["ppc_ok"] == 1) == (reasons == "")
    verdict = run.manifest["verdict"]["ppc"]
    assert verdict["ok"] is (not flagged)
    assert "; ".join(verdict["reasons"]) == reasons


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_runs_quick(path: Path, data_dir: Path, tmp_path: Path) -> None:
    run_dir = run_experiment(
        path, data_dir=data_dir, out=tmp_path, quick=True, progress=False, report=False
    ).path  # reports are tested in test_report.py
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
