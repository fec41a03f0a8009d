"""Leave-future-out CV: one likelihood scale (Jacobians), the PSIS weighting against closed forms,
exact vs approximate LFO, a markov run end to end, and the CLI's error path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import lognorm, norm

from regimes.config import Experiment, ModelSpec
from regimes.dataset import FitFrame, truncate
from regimes.families import markov, static
from regimes.lfo import (
    LFOError,
    Refit,
    approximate_lfo,
    default_min_train,
    lfo_frame,
    psis_step,
    score,
)

# --- helpers -------------------------------------------------------------------------------


def _frame(y: np.ndarray, x: np.ndarray | None = None) -> FitFrame:
    idx = pd.date_range("2000-01-01", periods=len(y), freq="MS")
    cols = {"y": y} if x is None else {"y": y, "x": x}
    return FitFrame(
        "y",
        () if x is None else ("x",),
        pd.DataFrame(cols, index=idx),
        pd.Series(True, index=idx, name="in_sample"),
    )


def _experiment(family: str, options: dict, *, draws: int = 200, seed: int = 1) -> Experiment:
    spec = ModelSpec(family=family, options=options, name="sim")
    return Experiment.model_validate(
        {
            "name": "sim",
            "model": "sim",
            "data": {"target": "y", "start": "2000-01", "end": "2004-12"},
            "sampler": {"draws": draws, "tune": draws, "chains": 2, "seed": seed},
            "spec": spec,
        }
    )


def _posterior(**values: float) -> xr.DataTree:
    """A one-chain, one-draw posterior at fixed parameter values."""
    data = {}
    for name, value in values.items():
        arr = np.asarray(value, dtype=float)
        dims = ("chain", "draw", *(f"{name}_dim" for _ in range(arr.ndim)))
        data[name] = (dims, arr.reshape(1, 1, *arr.shape))
    post = xr.Dataset(data, coords={"chain": [0], "draw": [0]})
    if "beta" in post:
        post = post.rename({"beta_dim": "term"}).assign_coords(term=["x"])
    return xr.DataTree.from_dict({"posterior": post})


# --- (a) one likelihood scale --------------------------------------------------------------


@pytest.fixture(scope="module")
def level_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    return 50.0 + 5.0 * x + rng.normal(0, 2.0, 30), x


def test_rescaled_target_shifts_log_likelihood_by_log_10(level_data) -> None:
    y, x = level_data
    exp = _experiment("static", {"transform": "level", "errors": "ar1"})
    tree = _posterior(intercept=0.1, beta=[0.8], sigma=0.4, rho=0.5)
    ll = score(exp, tree, _frame(y, x)).values.ravel()
    ll10 = score(exp, tree, _frame(10 * y, x)).values.ravel()
    # the standardised model is identical; only the density's units change
    np.testing.assert_allclose(ll10 - ll, -np.log(10.0), rtol=0, atol=1e-9)


@pytest.mark.parametrize("transform", ["level", "log"])
def test_natural_scale_matches_hand_computed_density(level_data, transform: str) -> None:
    y, x = level_data
    exp = _experiment("static", {"transform": transform, "errors": "iid"})
    a, b, s = 0.2, 0.7, 0.5
    ll = score(exp, _posterior(intercept=a, beta=[b], sigma=s), _frame(y, x)).values.ravel()
    z = np.log(y) if transform == "log" else y
    # natural (or log) units; factors are scaled by their sample sd (ddof 1)
    mu = z.mean() + z.std() * (a + b * (x - x.mean()) / x.std(ddof=1))
    sd = z.std() * s
    if transform == "log":  # y lognormal: log y ~ Normal(mu, sd)
        expected = lognorm.logpdf(y, s=sd, scale=np.exp(mu))
    else:
        expected = norm.logpdf(y, mu, sd)
    np.testing.assert_allclose(ll, expected, rtol=1e-10)


def test_log_and_level_jacobians_differ_by_log_y(level_data) -> None:
    y, x = level_data
    frame = _frame(y, x)
    spec = ModelSpec(family="static", options={"transform": "log"})
    jac_log = static.FAMILY.log_jacobian(frame, spec).values
    level = spec.model_copy(update={"options": {"transform": "level"}})
    jac_level = static.FAMILY.log_jacobian(frame, level).values
    np.testing.assert_allclose(jac_log, -np.log(np.log(y).std()) - np.log(y))
    np.testing.assert_allclose(jac_level, -np.log(y.std()))
    mspec = ModelSpec(family="markov", options={"k_regimes": 1, "ar_order": 1, "transform": "log"})
    jac_m = markov.FAMILY.log_jacobian(frame, mspec)
    assert jac_m.sizes["time"] == len(y) - 1  # the first month is conditioned on
    np.testing.assert_allclose(jac_m.values, jac_log[1:])


def test_truncate_keeps_scale_window_when_scoring_on() -> None:
    frame = _frame(np.arange(1.0, 41.0))
    short = truncate(frame, 20)
    scoring = truncate(frame, 20, score_until=30)
    assert short.fit.sum() == 20 and (short.scale == short.fit.to_numpy()).all()
    assert scoring.fit.sum() == 30 and scoring.scale.sum() == 20
    a, b = scoring.scaling("level").moments(), short.scaling("level").moments()
    assert a == b == (10.5, np.arange(1, 21).std())
    assert scoring.attrs["fit_end"] == "2002-06"


# --- (c) the PSIS weighting against a conjugate closed form --------------------------------

SIGMA, TAU0 = 1.0, 2.0  # known observation sd; prior mu ~ Normal(0, TAU0)


def _conjugate(y: np.ndarray, draws: int, seed: int = 0):
    """Exact posterior draws of a Normal mean after i observations and the exact predictive."""

    def posterior(i: int) -> tuple[float, float]:
        prec = 1 / TAU0**2 + i / SIGMA**2
        return y[:i].sum() / SIGMA**2 / prec, 1 / prec

    def refit(i: int) -> Refit:
        m, v = posterior(i)
        mu = np.random.default_rng(seed + i).normal(m, np.sqrt(v), draws)
        return Refit(norm.logpdf(y[None, i:], mu[:, None], SIGMA))

    def exact(i: int) -> float:
        m, v = posterior(i)
        return float(norm.logpdf(y[i], m, np.sqrt(SIGMA**2 + v)))

    return refit, exact


def test_psis_weights_move_old_draws_to_the_new_posterior() -> None:
    y = np.random.default_rng(1).normal(0.7, SIGMA, 60)
    refit, exact = _conjugate(y, draws=4000)
    fit = refit(10)  # draws of p(mu | y_1..10), reweighted to p(mu | y_1..40)
    value, k = psis_step(fit.log_lik[:, :30], fit.log_lik[:, 30])
    unweighted, _ = psis_step(fit.log_lik[:, :0], fit.log_lik[:, 30])
    # Monte Carlo error of a log mean with 4000 well-behaved weights is ~0.005; the unweighted
    # estimate (the wrong posterior) is off by ~0.2, so both the sign and the weights matter
    assert abs(value - exact(40)) < 0.02
    assert abs(unweighted - exact(40)) > 0.1
    assert k < 0.7


def test_lfo_loop_matches_closed_form_and_refits_at_a_break() -> None:
    rng = np.random.default_rng(2)
    y = np.concatenate([rng.normal(0, SIGMA, 30), rng.normal(3, SIGMA, 30)])
    refit, exact = _conjugate(y, draws=1000)
    truth = np.array([exact(i) for i in range(10, 60)])
    full = approximate_lfo(refit, 60, 10, k_threshold=0.0)  # exact LFO
    approx = approximate_lfo(refit, 60, 10)
    never = approximate_lfo(refit, 60, 10, k_threshold=np.inf)
    assert full.refit.all() and full.refit.sum() == 60 - 10
    # exact LFO: only the Monte Carlo error of 1000 exact draws per point (~0.01-0.03)
    assert np.abs(full.elpd - truth).max() < 0.1
    # approximate: refits after the break, each weight with k <= 0.7; error << se (~6)
    assert 1 < approx.refit.sum() < 20 and approx.refit[0]
    assert np.nanmax(approx.pareto_k) <= 0.7
    assert abs(approx.elpd_lfo - truth.sum()) < 1.5
    # never refitting: heavy-tailed weights after the break, badly wrong -> the threshold matters
    assert never.refit.sum() == 1 and np.nanmax(never.pareto_k) > 0.7
    assert abs(never.elpd_lfo - truth.sum()) > 5


def test_default_min_train_and_bounds() -> None:
    assert default_min_train(226) == 113
    assert default_min_train(60) == 30
    assert default_min_train(30) == 24
    assert default_min_train(10) == 9
    with pytest.raises(LFOError, match="min_train"):
        approximate_lfo(lambda i: Refit(np.zeros((5, 10 - i))), 10, 10)


# --- (b) exact vs approximate on a sampled static AR(1) model ------------------------------


@pytest.mark.slow
def test_exact_and_approximate_lfo_agree_on_static_ar1() -> None:
    rng = np.random.default_rng(0)
    T, L = 56, 52  # four months scored: four exact refits
    x = rng.normal(size=T)
    u = np.zeros(T)
    for t in range(1, T):
        u[t] = 0.5 * u[t - 1] + rng.normal(0, 0.3)
    frame = _frame(1.0 + 0.8 * x + u, x)
    exp = _experiment("static", {"transform": "level", "errors": "ar1"})
    exact = lfo_frame(exp, frame, min_train=L, k_threshold=0.0)
    approx = lfo_frame(exp, frame, min_train=L)
    assert exact.attrs["n_refits"] == T - L and exact["refit"].all()
    assert approx.attrs["n_refits"] >= 1 and approx.attrs["max_k"] <= 0.7
    # The two differ by the Monte Carlo error of different fits (400 draws each, ~0.02 per
    # month) and by PSIS error, both small next to elpd's se (~1): 0.3 in total, 0.1 per month
    # (a wrong weighting or a unit mismatch shifts elpd by whole units).
    assert abs(exact.attrs["elpd_lfo"] - approx.attrs["elpd_lfo"]) < 0.3
    np.testing.assert_allclose(exact["elpd"], approx["elpd"], atol=0.1)
    assert exact.attrs["scale"] == "natural units of the target"


# --- (d) a markov run end to end -----------------------------------------------------------


@pytest.mark.slow
def test_markov_run_lfo_end_to_end(tmp_path: Path, data_dir: Path, repo_root: Path) -> None:
    from regimes.api import run_experiment
    from regimes.config import SHIPPED_MODELS
    from regimes.lfo import compare_lfo, ensure_lfo, load_lfo
    from regimes.results import open_run, sha256_file

    toml = (repo_root / "experiments" / "textbook" / "fedfunds.toml").read_text()
    toml = toml.replace('start = "1954-07"', 'start = "1990-01"')
    toml += "\n[sampler.quick]\ndraws = 100\ntune = 100\nchains = 2\n"
    (tmp_path / "models").mkdir()
    for spec in ("ms_mean", "ms_mean_variance"):
        src = SHIPPED_MODELS / f"{spec}.toml"
        (tmp_path / "models" / f"{spec}.toml").write_text(
            src.read_text().replace("n_starts = 12", "n_starts = 3")
        )
    exp_path = tmp_path / "ff.toml"
    exp_path.write_text(toml)
    run_dir = run_experiment(
        exp_path,
        data_dir=data_dir,
        out=tmp_path / "results",
        quick=True,
        progress=False,
        figures=False,
    ).path
    ll = open_run(run_dir).posterior()["log_likelihood"]
    assert ll.attrs["scale"] == "natural units of the target"
    n = ll.sizes["time"]
    ds = ensure_lfo(run_dir, min_train=n - 4)
    assert ds.sizes["time"] == 4 and ds.attrs["L"] == n - 4
    assert np.isfinite(ds["elpd"]).all() and ds["refit"].values[0]
    manifest = open_run(run_dir).manifest
    assert manifest["files"]["lfo.nc"] == sha256_file(run_dir / "lfo.nc")
    # every refit warm-started: the first from the run's stored tuning (same compiled model)
    assert "tuning.npz" in manifest["files"]
    assert ds.attrs["warm_refits"] == ds.attrs["n_refits"] >= 1
    # the LFO elpd of the last months is close to the in-sample one-step densities there
    lppd = np.log(np.exp(ll["y"].values.reshape(-1, n)[:, -4:]).mean(axis=0))
    assert np.all(np.abs(ds["elpd"].values - lppd) < 1.0)
    stored = load_lfo(run_dir)
    assert stored is not None and stored.attrs["elpd_lfo"] == pytest.approx(ds.attrs["elpd_lfo"])
    with pytest.raises(Exception, match="at least two"):
        compare_lfo([run_dir])


# --- compare --lfo on stored results ---------------------------------------------------------


def _run_with_lfo(
    root: Path, name: str, elpd: np.ndarray | None, start: str = "2000-01", stamped: bool = True
) -> Path:
    """A handmade run (its own config.toml, no posterior) with an lfo.nc of `elpd` computed, as
    `compare_lfo` asks, with the default settings (`stamped`: with their reuse key)."""
    from regimes.lfo import LFOResult, lfo_dataset, write_lfo
    from regimes.results import CONFIG, write_run

    def writer(tmp: Path) -> dict:
        (tmp / CONFIG).write_text(f'name = "{name}"\n', encoding="utf-8")
        return {}

    run_dir = write_run(root, name, "r1", writer)
    if elpd is None:
        return run_dir
    n = len(elpd)
    result = LFOResult(elpd, np.full(n, 0.1), np.r_[True, np.zeros(n - 1, bool)], 24, 0.7)
    ds = lfo_dataset(result, pd.date_range(start, periods=n, freq="MS"))
    if stamped:
        from regimes.lfo import lfo_inputs
        from regimes.reopen import stamp
        from regimes.results import open_run

        ds = stamp(ds, lfo_inputs(open_run(run_dir), None, 0.7, False, None))
    write_lfo(run_dir, ds)
    return run_dir


def test_compare_lfo_ranks_runs_and_checks_months(tmp_path: Path) -> None:
    from regimes.compare import CompareError, plot_compare
    from regimes.lfo import compare_lfo, format_compare_lfo
    from regimes.results import open_run, sha256_file

    rng = np.random.default_rng(0)
    base = rng.normal(-1.0, 0.5, 40)
    better = base + rng.normal(0.1, 0.2, 40)
    a = _run_with_lfo(tmp_path, "a", base)
    b = _run_with_lfo(tmp_path, "b", better)
    assert open_run(a).manifest["files"]["lfo.nc"] == sha256_file(a / "lfo.nc")
    df = compare_lfo([a, b])
    assert list(df.index) == ["b/r1", "a/r1"] and list(df["rank"]) == [0, 1]
    diff = better - base
    assert df.loc["a/r1", "elpd_diff"] == pytest.approx(diff.sum())
    assert df.loc["a/r1", "dse"] == pytest.approx(np.sqrt(40 * diff.var()))
    assert df.loc["b/r1", "elpd_lfo"] == pytest.approx(better.sum())
    assert "elpd_lfo" in format_compare_lfo(df)
    assert {p.suffix for p in plot_compare(df, tmp_path / "cmp")} == {".png", ".svg"}
    c = _run_with_lfo(tmp_path, "c", base, start="2000-02")
    with pytest.raises(CompareError, match="score different months"):
        compare_lfo([a, c])


def test_an_lfo_nc_copied_in_is_never_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 31: an lfo.nc copied from run B into run A (and edited) ranked A first without a
    refit. Now a file its manifest does not list is never read: it is computed again (here the
    handmade runs cannot be refit, so the comparison stops with one error instead of ranking
    copied numbers)."""
    import logging

    import xarray as xr

    from regimes.errors import RegimesError
    from regimes.lfo import compare_lfo, load_lfo

    rng = np.random.default_rng(1)
    a = _run_with_lfo(tmp_path, "a", None)
    b = _run_with_lfo(tmp_path, "b", rng.normal(-1.0, 0.5, 40), stamped=False)
    with xr.open_dataset(b / "lfo.nc", engine="h5netcdf") as ds:
        forged = ds.load()
    forged["elpd"] = forged["elpd"] + 10.0  # A would rank first by 400
    forged.to_netcdf(a / "lfo.nc", engine="h5netcdf")
    with pytest.raises(RegimesError, match="not listed"):
        load_lfo(a)
    with caplog.at_level(logging.INFO, logger="regimes.lfo"), pytest.raises(RegimesError):
        compare_lfo([a, b])
    assert "lfo.nc is not trusted" in caplog.text and "computing it again" in caplog.text


def test_an_lfo_nc_of_other_settings_or_another_run_is_computed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored lfo.nc is reused only under its reuse key: the run's own, with these settings
    (and this code); one listed in the manifest but computed for another run is not."""
    import logging
    import shutil

    from regimes.errors import RegimesError
    from regimes.lfo import ensure_lfo, load_lfo

    a = _run_with_lfo(tmp_path, "a", None)
    b = _run_with_lfo(tmp_path, "b", np.random.default_rng(1).normal(-1.0, 0.5, 40))
    # b's own, listed lfo.nc is reused under its settings; other settings compute it again
    assert float(ensure_lfo(b)["elpd"].sum()) == pytest.approx(float(load_lfo(b)["elpd"].sum()))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="regimes.lfo"), pytest.raises(RegimesError):
        ensure_lfo(b, k_threshold=0.5)
    assert "its settings" in caplog.text
    shutil.copyfile(b / "lfo.nc", a / "lfo.nc")  # listed in a's manifest as well: b's key
    from regimes.files import sha256_file, write_json_atomic
    from regimes.results import open_run

    manifest = open_run(a).manifest
    manifest["files"]["lfo.nc"] = sha256_file(a / "lfo.nc")
    write_json_atomic(a / "manifest.json", manifest)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="regimes.lfo"), pytest.raises(RegimesError):
        ensure_lfo(a)
    assert "its config differs" in caplog.text


# --- (e) CLI -------------------------------------------------------------------------------


def test_cli_lfo_on_a_non_run_folder_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "regimes.cli", "lfo", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regimes: error:")
    assert "not a complete run directory" in lines[0]


def test_runs_on_different_windows_compare_from_their_own_counts(tmp_path, monkeypatch) -> None:
    """compare_lfo takes one training count per run (a study's runs may start in different
    months and reach its first scored month at different counts): each run's LFO gets its own."""
    import regimes.lfo as lfo_module
    from handmade_runs import make_run

    a = make_run(tmp_path, "20260101T000000Z-s1-aaaaaa", 1.0)
    b = make_run(tmp_path, "20260101T000000Z-s2-bbbbbb", 2.0)
    seen = {}
    time = pd.date_range("2020-01-01", periods=4, freq="MS")

    def fake(path, *, min_train, **_):
        seen[Path(path).name] = min_train
        elpd = xr.DataArray(np.full(4, -1.0 * min_train / 100), dims="time", coords={"time": time})
        return xr.Dataset({"elpd": elpd}, attrs={"n_refits": 0, "max_k": 0.1, "se": 0.5})

    monkeypatch.setattr(lfo_module, "ensure_lfo", fake)
    table = lfo_module.compare_lfo([a, b], min_train={str(a): 100, str(b): 91})
    assert seen == {a.name: 100, b.name: 91}
    assert len(table) == 2
    lfo_module.compare_lfo([a, b], min_train=50)
    assert seen == {a.name: 50, b.name: 50}
