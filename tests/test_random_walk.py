"""Random-walk-coefficient family: recovery of a drifting coefficient, the family's outputs
through the `Family` interface, the rolling-OLS baseline, unit conversion. The Kalman filter and
backward sampler themselves are tested against dense Gaussian algebra in test_kalman.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimes.config import SamplerSection
from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.families import Family, get_family
from regimes.families import random_walk as rw
from regimes.families.base import Fit
from regimes.sampling import sample
from regimes.scaling import Scaling
from regimes.spec import ModelSpec, PriorSpec

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
SAMPLER = SamplerSection(draws=250, tune=250, chains=2, seed=5, backend="numpyro")
T_FIT, T_OUT = 200, 12


def drifting_frame(seed: int = 5) -> tuple[FitFrame, np.ndarray]:
    """y = 2 + b1_t·x1 + 0.5·x2 + N(0, 0.3²), b1 going linearly from −1 to +1 over 200 months
    (then held at +1 for 12 out-of-sample months); x1, x2 iid N(0, 1). Returns the true (N, 2)."""
    rng = np.random.default_rng(seed)
    n = T_FIT + T_OUT
    x = rng.normal(size=(n, 2))
    truth = np.column_stack(
        [np.concatenate([np.linspace(-1.0, 1.0, T_FIT), np.ones(T_OUT)]), np.full(n, 0.5)]
    )
    y = 2.0 + (truth * x).sum(axis=1) + rng.normal(scale=0.3, size=n)
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    frame = pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1]}, index=index)
    fit = pd.Series(np.arange(n) < T_FIT, index=index)
    return FitFrame(target="y", factors=("x1", "x2"), frame=frame, fit=fit, units="u"), truth


def spec_of(**options) -> ModelSpec:
    return ModelSpec(family="random_walk", options={"transform": "level", **options}, name="sim")


@pytest.fixture(scope="module")
def fitted():
    frame, truth = drifting_frame()
    spec = spec_of()
    tree = sample(rw.FAMILY.build(spec, frame), SAMPLER, progress=False)
    return frame, truth, spec, tree, rw.FAMILY.derive(Fit(tree, frame, spec), QUANTILES)


def test_recovers_drifting_and_constant_coefficients(fitted) -> None:
    frame, truth, _, tree, derived = fitted
    fit = frame.fit.to_numpy()
    coef = derived["coef"].transpose("time", "term", "quantile")
    med = coef.sel(quantile=0.5).values[fit]
    # Tolerance 0.12: 6% of the drift's range of 2, about 2.5x the standard error of a
    # 40-month OLS slope here (0.3/sqrt(40) ≈ 0.05); a constant-coefficient fit misses by 0.5
    # on average and the trailing 40-month rolling OLS by ≈ 0.15 (it lags the drift).
    mae = np.abs(med - truth[fit]).mean(axis=0)
    assert np.all(mae < 0.12), mae
    rolling = derived["rolling_coef"].values[fit]
    ok = np.isfinite(rolling[:, 0])
    assert mae[0] < np.abs(rolling[ok, 0] - truth[fit][ok, 0]).mean()
    lo, hi = coef.sel(quantile=0.05).values[fit], coef.sel(quantile=0.95).values[fit]
    covered = ((lo <= truth[fit]) & (truth[fit] <= hi)).mean(axis=0)
    assert np.all(covered > 0.8), covered
    # the sign change is found: P(b1 > 0) low early, high late
    prob = derived["coef_prob_positive"].sel(term="x1").values[fit]
    assert prob[:40].max() < 0.05 and prob[-40:].min() > 0.95
    # the constant coefficient's steps are small: its implied total drift over the window
    # (τ·√T, natural units) stays well below the drifting one's true range of 2
    tau = derived["coef_innovation_sd"].transpose("term", "quantile")
    assert float(tau.sel(term="x2", quantile=0.95)) * np.sqrt(T_FIT) < 0.5
    assert float(tau.sel(term="x2", quantile=0.5)) < float(tau.sel(term="x1", quantile=0.05))
    # out of sample each draw holds its last coefficients: identical quantiles after the window
    last = coef.values[np.flatnonzero(fit)[-1]]
    np.testing.assert_allclose(coef.values[~fit], np.broadcast_to(last, coef.values[~fit].shape))
    assert "random-walk expectation" in derived.attrs["out_of_sample_coef"]
    # fair value tracks the true regression part better than the noisy observations do
    x = frame.X.to_numpy()
    true_fv = 2.0 + (truth * x).sum(axis=1)
    fv = derived["fair_value"].sel(quantile=0.5).values
    assert np.abs(fv - true_fv)[fit].mean() < 0.5 * np.abs(frame.y.to_numpy() - true_fv)[fit].mean()
    stats = tree["sample_stats"]
    assert int(stats["diverging"].sum()) == 0


def test_outputs_and_pointwise_log_likelihood(fitted) -> None:
    frame, _, spec, tree, derived = fitted
    assert derived["coef"].dims == ("time", "term", "quantile")
    assert derived["coef_prob_positive"].dims == ("time", "term")
    assert derived["rolling_coef"].dims == ("time", "term")
    assert derived["rolling_r2"].dims == ("time",)
    assert list(derived["term"].values) == ["x1", "x2"]
    assert "per unit of the factor" in derived["coef"].attrs["units"]
    assert 0.0 < derived.attrs["r2_bayes"] < 1.0
    ll = rw.FAMILY.log_likelihood(Fit(tree, frame, spec))["y"]
    assert ll.dims == ("chain", "draw", "time") and ll.sizes["time"] == T_FIT
    assert np.isfinite(ll.values).all()
    jac = rw.FAMILY.log_jacobian(frame, spec)
    np.testing.assert_allclose(jac.values, -np.log(frame.scaling("level").y_sd_of()))


def test_posterior_predictive_is_one_step_ahead_in_natural_units(fitted) -> None:
    frame, _, spec, tree, _ = fitted
    pp = rw.FAMILY.posterior_predictive(Fit(tree, frame, spec), seed=1)["y"]
    post = tree["posterior"]
    assert pp.dims == ("chain", "draw", "time")
    assert pp.shape == (post.sizes["chain"], post.sizes["draw"], T_FIT)
    # the replicates scatter around the observations on their own (level) scale
    y = frame.y.to_numpy()[frame.fit.to_numpy()]
    pit = (pp.values < y).mean(axis=(0, 1))
    assert 0.3 < pit.mean() < 0.7
    np.testing.assert_array_equal(
        pp.values, rw.FAMILY.posterior_predictive(Fit(tree, frame, spec), 1)["y"]
    )


def test_fair_value_draws_are_the_paths_derive_summarises(fitted) -> None:
    """Per-draw fair value over every month, (sample, time), from the same seed-0 coefficient
    paths as `derive`: its quantiles are derived.nc's fair value exactly."""
    frame, _, spec, tree, derived = fitted
    fv = rw.FAMILY.fair_value_draws(Fit(tree, frame, spec))["fair_value"]
    post = tree["posterior"]
    assert fv.dims == ("sample", "time")
    assert fv.shape == (post.sizes["chain"] * post.sizes["draw"], T_FIT + T_OUT)
    np.testing.assert_array_equal(fv["time"].values, derived["time"].values)
    q = np.quantile(fv.values, QUANTILES, axis=0).T
    np.testing.assert_array_equal(q, derived["fair_value"].transpose("time", "quantile").values)
    # forecasts reuse it on an extended frame: the default hook gives the same numbers
    again = rw.FAMILY.forecast_draws(Fit(tree, frame, spec), frame)["fair_value"]
    np.testing.assert_array_equal(again.values, fv.values)


def test_family_is_registered_and_draws_its_coefficient_figure(fitted, tmp_path) -> None:
    _, _, _, _, derived = fitted
    assert isinstance(rw.FAMILY, Family) and get_family("random_walk") is rw.FAMILY
    assert rw.FAMILY.name == "random_walk" and rw.FAMILY.options_model is rw.Options
    paths = rw.FAMILY.figures(derived, tmp_path, log_scale=False, source="simulated")
    assert paths == [tmp_path / "coef_paths.png", tmp_path / "coef_paths.svg"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


@pytest.mark.slow
def test_noncentred_states_agree_with_marginal(fitted) -> None:
    """The two treatments of the walks target the same posterior: their paths agree."""
    frame, _, _, _, derived = fitted
    spec = spec_of(states="noncentred")
    tree = sample(rw.FAMILY.build(spec, frame), SAMPLER, progress=False)
    other = rw.FAMILY.derive(Fit(tree, frame, spec), QUANTILES)
    fit = frame.fit.to_numpy()
    a = derived["coef"].sel(quantile=0.5).values[fit]
    b = other["coef"].sel(quantile=0.5).values[fit]
    assert np.abs(a - b).mean() < 0.05
    assert "z" in tree["posterior"] and "y" in tree["log_likelihood"]


# ------------------------------------------------------------------ baseline and units


def test_rolling_ols_matches_lstsq_and_is_nan_before_the_window_fills() -> None:
    rng = np.random.default_rng(3)
    n, w = 60, 12
    x = rng.normal(size=(n, 2))
    y = 1.0 + x @ np.array([0.5, -2.0]) + rng.normal(scale=0.5, size=n)
    y[30] = np.nan  # a missing month blanks every window that contains it
    coef, r2 = rw.rolling_ols(y, x, w)
    assert np.isnan(coef[: w - 1]).all() and np.isnan(r2[: w - 1]).all()
    assert np.isnan(coef[30 : 30 + w]).all() and np.isfinite(coef[30 + w]).all()
    t = 25  # the window of months 14..25
    design = np.column_stack([np.ones(w), x[t - w + 1 : t + 1]])
    direct, *_ = np.linalg.lstsq(design, y[t - w + 1 : t + 1], rcond=None)
    np.testing.assert_allclose(coef[t], direct, rtol=1e-10)
    resid = y[t - w + 1 : t + 1] - design @ direct
    yy = y[t - w + 1 : t + 1]
    assert r2[t] == pytest.approx(1 - (resid**2).sum() / ((yy - yy.mean()) ** 2).sum())


def test_natural_units_by_hand() -> None:
    # y_std = (y − 10)/2, x_std = (x − 3)/4: y_std = 0.5 + 0.8·x_std means
    # y = 10 + 2·(0.5 + 0.8·(x − 3)/4) = 9.8 + 0.4·x  → slope 0.4, intercept 9.8
    scaling = Scaling("level", {"y": 10.0}, {"y": 2.0}, {"x": 3.0}, {"x": 4.0})
    slopes, intercept = rw.natural_units(np.array([[0.5, 0.8]]), scaling, ["x"])
    np.testing.assert_allclose(slopes, [[0.4]])
    np.testing.assert_allclose(intercept, [9.8])


def test_bad_options_name_the_key() -> None:
    frame, _ = drifting_frame()
    with pytest.raises(ConfigError, match=r"options\.varying.*'x3'"):
        rw.design(frame, rw.Options(varying=["x1", "x3"]))
    with pytest.raises(ConfigError, match=r"options\.rolling_window.*at least 5"):
        rw.FAMILY.build(spec_of(rolling_window=4), frame)
    with pytest.raises(ConfigError, match=r"options\.varying"):
        rw.FAMILY.validate_spec(spec_of(varying=["x1", "x1"]), "exp.toml")
    with pytest.raises(ConfigError, match=r"priors\.coef0"):
        spec = spec_of()
        bad = spec.model_copy(update={"priors": {"coef0": PriorSpec(dist="StudentT", nu=3.0)}})
        rw.FAMILY.validate_spec(bad, "exp.toml")
    with pytest.raises(ConfigError, match=r"priors\.tua"):
        bad = spec_of().model_copy(update={"priors": {"tua": PriorSpec(dist="HalfNormal")}})
        rw.FAMILY.validate_spec(bad, "exp.toml")


def test_constant_terms_have_no_steps() -> None:
    frame, _ = drifting_frame()
    model = rw.FAMILY.build(spec_of(varying=["intercept", "x1"]), frame)
    assert list(model.coords["varying_term"]) == ["intercept", "x1"]
    assert {v.name for v in model.free_RVs} == {"tau", "sigma"}
