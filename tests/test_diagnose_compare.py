"""The review workflow's first verbs: the full convergence gate (`diagnose`) and LOO `compare`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimes.cli import main
from regimes.compare import CompareError, compare_runs
from regimes.diagnostics import Thresholds, diagnose, quick_verdict, table
from regimes.errors import ConfigError
from regimes.results import POSTERIOR, write_netcdf, write_run

T = 48
TIME = pd.date_range("2000-01-01", periods=T, freq="MS")


def _tree(
    post: dict[str, np.ndarray],
    *,
    lp: np.ndarray | None = None,
    energy: np.ndarray | None = None,
    diverging: np.ndarray | None = None,
    tree_depth: np.ndarray | None = None,
    log_lik: np.ndarray | None = None,
    time: pd.DatetimeIndex = TIME,
    seed: int = 0,
) -> xr.DataTree:
    """A minimal posterior DataTree shaped like what `regimes.sampling.sample` returns."""
    rng = np.random.default_rng(seed)
    first = next(iter(post.values()))
    chains, draws = first.shape[:2]
    cd = ("chain", "draw")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset(
        {k: (cd + tuple(f"{k}_dim_{i}" for i in range(v.ndim - 2)), v) for k, v in post.items()},
        coords=coords,
    )
    stats = {
        "lp": lp if lp is not None else rng.normal(size=(chains, draws)),
        "energy": energy if energy is not None else rng.normal(size=(chains, draws)),
        "diverging": diverging if diverging is not None else np.zeros((chains, draws), bool),
    }
    if tree_depth is not None:
        stats["tree_depth"] = tree_depth
    groups = {
        "posterior": posterior,
        "sample_stats": xr.Dataset({k: (cd, v) for k, v in stats.items()}, coords=coords),
    }
    if log_lik is not None:
        groups["log_likelihood"] = xr.Dataset(
            {"y": ((*cd, "time"), log_lik)}, coords={**coords, "time": time}
        )
        groups["observed_data"] = xr.Dataset(
            {"y": ("time", np.zeros(len(time)))}, coords={"time": time}
        )
    return xr.DataTree.from_dict(groups)


def _iid(chains: int, draws: int, seed: int = 1, shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(chains, draws, *shape))


def _good_tree(**kw) -> xr.DataTree:
    return _tree({"mu": _iid(4, 500, 1), "beta": _iid(4, 500, 2, (3,))}, **kw)


# --- diagnose ------------------------------------------------------------------------------


def test_well_mixed_posterior_passes() -> None:
    d = diagnose(_good_tree())
    assert d.passed, d.reasons
    assert d.reasons == []
    assert len(d.variables) == 4  # mu + beta[0..2], one row per scalar element
    assert d.max_rhat <= 1.01 and d.min_ess_bulk >= 400 and d.min_ess_tail >= 400
    assert all(np.isfinite(v.mcse_mean) and v.mcse_mean > 0 for v in d.variables)
    assert d.divergences == 0 and len(d.bfmi) == 4 and min(d.bfmi) > 1.0
    text = table(d)
    assert text.splitlines()[0].startswith("verdict: PASSED")
    assert "beta[" in text and "mcse_mean" in text


def test_too_few_draws_fails_on_ess() -> None:
    d = diagnose(_tree({"mu": _iid(2, 40)}))
    assert not d.passed
    assert any("bulk ESS below 200" in r for r in d.reasons), d.reasons
    assert any("tail ESS below 200" in r for r in d.reasons), d.reasons
    assert "ess_bulk" in d.variables[0].problems


def test_chains_far_apart_fail_rhat_and_agreement() -> None:
    mu = _iid(2, 500)
    mu[1] += 5.0  # second chain in another mode
    lp = _iid(2, 500, seed=3)
    lp[1] -= 50.0  # ...with clearly lower log density
    stuck = _iid(2, 500, seed=4)  # a well-mixed parameter, listed after the bad one
    d = diagnose(_tree({"stuck": stuck, "mu": mu}, lp=lp))
    assert not d.passed
    assert d.variables[0].name == "mu" and "r_hat" in d.variables[0].problems
    assert d.variables[1].ok
    assert any(r.startswith("R-hat above 1.01") and "mu" in r for r in d.reasons), d.reasons
    assert any("chains [1]" in r and "lower-density mode" in r for r in d.reasons), d.reasons
    assert d.chain_agreement["off_chains"] == [1]
    lines = table(d).splitlines()
    assert lines[0].startswith("verdict: FAILED")
    header = next(i for i, line in enumerate(lines) if line.startswith("variable"))
    assert lines[header + 1].startswith("mu ") and "FAIL r_hat" in lines[header + 1]


def test_divergences_fail() -> None:
    div = np.zeros((4, 500), bool)
    div[2, [10, 20, 30]] = True
    d = diagnose(_good_tree(diverging=div))
    assert not d.passed and d.divergences == 3
    assert d.reasons == [d.reasons[0]] and d.reasons[0].startswith("3 divergent transitions")
    assert diagnose(_good_tree(diverging=div), Thresholds(divergences_max=3)).passed


def test_low_e_bfmi_fails() -> None:
    import arviz as az

    # a random-walk energy: tiny jumps between draws relative to its spread, so E-BFMI << 0.3
    energy = np.cumsum(np.random.default_rng(5).normal(0, 0.1, size=(4, 500)), axis=1)
    tree = _good_tree(energy=energy)
    d = diagnose(tree)
    expected = az.bfmi(tree)["energy"].values
    np.testing.assert_allclose(d.bfmi, expected)
    assert max(d.bfmi) < 0.3
    assert not d.passed and len(d.reasons) == 1
    assert d.reasons[0].startswith("E-BFMI below 0.3 (chain 0:"), d.reasons


def test_max_tree_depth_share_is_reported_not_failed() -> None:
    depth = np.full((4, 500), 4)
    depth[0, :50] = 10
    d = diagnose(_good_tree(tree_depth=depth))
    assert d.passed and d.max_treedepth == 10
    assert d.treedepth_share == pytest.approx(50 / 2000)
    assert any("maximum tree depth 10" in n for n in d.notes)
    assert "2.5% of draws at max depth 10" in table(d)


def test_thresholds_are_configurable_and_validated() -> None:
    tree = _tree({"mu": _iid(2, 40)})
    assert not diagnose(tree).passed
    assert diagnose(tree, Thresholds(ess_min_per_chain=10)).passed
    with pytest.raises(ConfigError):
        Thresholds(rhat_max=0.9)


def test_quick_verdict_keeps_its_keys() -> None:
    v = quick_verdict(_good_tree())
    assert set(v) >= {
        "converged",
        "status",
        "max_rhat",
        "min_ess_bulk",
        "divergences",
        "chains_agree",
        "chain_agreement",
        "thresholds",
    }
    assert v["converged"] and v["status"] == "ok"


# --- run directories and the CLI ------------------------------------------------------------


def _write(tmp_path: Path, name: str, tree: xr.DataTree) -> Path:
    def writer(tmp: Path) -> dict:
        write_netcdf(tree, tmp / POSTERIOR)
        return {"seed": 0}

    return write_run(tmp_path / "results", name, "run1", writer)


def _log_lik(mu_centre: float, seed: int, time: pd.DatetimeIndex = TIME) -> np.ndarray:
    """Pointwise Normal(y | mu, 1) log densities for y ~ N(0, 1) and posterior draws of mu."""
    rng = np.random.default_rng(seed)
    y = np.random.default_rng(99).normal(size=len(time))
    mu = rng.normal(mu_centre, 0.15, size=(4, 500, 1))
    return -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)


def test_cli_diagnose_strict_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = _write(tmp_path, "good", _good_tree(log_lik=_log_lik(0.0, 1)))
    mu = _iid(2, 500)
    mu[1] += 5.0
    bad = _write(tmp_path, "bad", _tree({"mu": mu}))

    assert main(["diagnose", str(good), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASSED" in out
    assert main(["diagnose", str(bad)]) == 0  # without --strict it only reports
    assert "verdict: FAILED" in capsys.readouterr().out
    assert main(["diagnose", str(bad), "--strict"]) == 1
    assert main(["diagnose", str(bad), "--strict", "--rhat-max", "100", "--ess-min", "1"]) == 0
    assert main(["diagnose", str(good), "--strict", "--ess-min", "1000"]) == 1
    assert main(["diagnose", str(good), "--strict", "--bfmi-min", "5"]) == 1
    capsys.readouterr()

    assert main(["diagnose", str(tmp_path / "nowhere"), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("regimes: error:") and "not a complete run" in err[0]


# --- compare ---------------------------------------------------------------------------------


def test_compare_ranks_the_better_run_first(tmp_path: Path) -> None:
    good = _write(tmp_path, "near", _good_tree(log_lik=_log_lik(0.0, 1)))
    worse = _write(tmp_path, "far", _good_tree(log_lik=_log_lik(1.5, 2)))
    df = compare_runs([worse, good])
    assert list(df.index) == ["near/run1", "far/run1"]
    assert list(df["rank"]) == [0, 1]
    assert df["elpd_diff"].iloc[0] == 0.0
    # E[(y - 1.5)^2 - y^2] / 2 = 1.125 per observation: a large, certain difference
    assert df["elpd_diff"].iloc[1] > 30 and df["elpd_diff"].iloc[1] > 4 * df["dse"].iloc[1]
    assert df["elpd_loo"].iloc[0] - df["elpd_loo"].iloc[1] == pytest.approx(df["elpd_diff"].iloc[1])
    assert set(df.columns) >= {"elpd_loo", "se", "p_loo", "n_k_high", "max_k", "dse", "weight"}
    assert (df["n_k_high"] == 0).all() and (df["max_k"] < 0.7).all()


def test_cli_compare_prints_and_writes_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _write(tmp_path, "near", _good_tree(log_lik=_log_lik(0.0, 1)))
    worse = _write(tmp_path, "far", _good_tree(log_lik=_log_lik(1.5, 2)))
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(good), str(worse)]) == 0
    out = capsys.readouterr().out
    assert out.index("near/run1") < out.index("far/run1")
    for ext in ("png", "svg"):
        assert (tmp_path / "compare" / f"compare.{ext}").stat().st_size > 1000
    assert main(["compare", str(good), str(worse), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "compare.png").is_file()


def test_compare_rejects_different_observations(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    shifted = TIME + pd.DateOffset(months=1)
    a = _write(tmp_path, "a", _good_tree(log_lik=_log_lik(0.0, 1)))
    b = _write(tmp_path, "b", _good_tree(log_lik=_log_lik(0.0, 2, shifted), time=shifted))
    with pytest.raises(CompareError, match=r"a/run1 and b/run1 were fit to different observations"):
        compare_runs([a, b])
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2000-01..2003-12 vs 48 time points 2000-02..2004-01" in err[0]


def test_compare_needs_log_likelihood(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path, "a", _good_tree(log_lik=_log_lik(0.0, 1)))
    b = _write(tmp_path, "nolik", _good_tree())
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nolik/run1 has no log_likelihood group" in err[0]
    with pytest.raises(CompareError, match="at least two"):
        compare_runs([a])
