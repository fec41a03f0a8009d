"""Random-walk-coefficient family: recovery of a drifting coefficient, the Kalman filter and
backward sampler against dense Gaussian algebra, the rolling-OLS baseline, unit conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimes.config import ModelSpec, PriorSpec, SamplerSection
from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.families import random_walk as rw
from regimes.sampling import sample

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
    tree = sample(rw.build(spec, frame), SAMPLER, progress=False)
    return frame, truth, spec, tree, rw.derive(tree, frame, spec, QUANTILES)


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
    ll = rw.log_likelihood(tree, frame, spec)["y"]
    assert ll.dims == ("chain", "draw", "time") and ll.sizes["time"] == T_FIT
    assert np.isfinite(ll.values).all()
    jac = rw.log_jacobian(frame, spec)
    np.testing.assert_allclose(jac.values, -np.log(rw.standardisation(frame, "level")["y_sd"]))


@pytest.mark.slow
def test_noncentred_states_agree_with_marginal(fitted) -> None:
    """The two treatments of the walks target the same posterior: their paths agree."""
    frame, _, _, _, derived = fitted
    spec = spec_of(states="noncentred")
    tree = sample(rw.build(spec, frame), SAMPLER, progress=False)
    other = rw.derive(tree, frame, spec, QUANTILES)
    fit = frame.fit.to_numpy()
    a = derived["coef"].sel(quantile=0.5).values[fit]
    b = other["coef"].sel(quantile=0.5).values[fit]
    assert np.abs(a - b).mean() < 0.05
    assert "z" in tree["posterior"] and "y" in tree["log_likelihood"]


# ------------------------------------------------------------------ Kalman filter and smoother


def _dense(y, x, tau, sigma, m0, p0):
    """Joint Gaussian of (b_0..b_{T-1}, y) written out densely: the exact reference."""
    t_len, k = x.shape
    q = np.diag(tau**2)
    cov_b = np.block(
        [[p0 + min(s, t) * q for t in range(t_len)] for s in range(t_len)]
    )  # Cov(b_s, b_t) = P0 + min(s, t)·Q
    h = np.zeros((t_len, t_len * k))
    for t in range(t_len):
        h[t, t * k : (t + 1) * k] = x[t]
    mean_b = np.tile(m0, t_len)
    cov_y = h @ cov_b @ h.T + sigma**2 * np.eye(t_len)
    gain = cov_b @ h.T @ np.linalg.inv(cov_y)
    post_mean = mean_b + gain @ (y - h @ mean_b)
    post_cov = cov_b - gain @ h @ cov_b
    return h @ mean_b, cov_y, post_mean.reshape(t_len, k), post_cov


def test_kalman_filter_matches_dense_gaussian() -> None:
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    t_len = 7
    x = np.column_stack([np.ones(t_len), rng.normal(size=t_len)])
    y = rng.normal(size=t_len)
    tau, sigma = np.array([0.3, 0.0]), 0.5  # second coefficient constant
    m0, p0 = np.array([0.2, -0.1]), np.diag([1.0, 0.5])
    _, _, ll = rw.kalman_filter(y, x, tau[None, :], np.array([sigma]), m0, p0)
    mean_y, cov_y, _, _ = _dense(y, x, tau, sigma, m0, p0)
    assert ll[0].sum() == pytest.approx(multivariate_normal(mean_y, cov_y).logpdf(y), rel=1e-10)
    # the differentiable PyTensor version gives the same pointwise values
    pt_ll = rw.pt_kalman_loglik(y, x, tau, sigma, m0, p0).eval(mode="FAST_COMPILE")
    np.testing.assert_allclose(pt_ll, ll[0], rtol=1e-10)


def test_backward_sampling_draws_the_smoothing_distribution() -> None:
    rng = np.random.default_rng(1)
    t_len, k, s = 6, 2, 40000
    x = np.column_stack([np.ones(t_len), rng.normal(size=t_len)])
    y = rng.normal(size=t_len)
    tau, sigma = np.array([0.4, 0.2]), 0.3
    m0, p0 = np.zeros(k), np.eye(k)
    tau_s = np.broadcast_to(tau, (s, k))
    means, covs, _ = rw.kalman_filter(y, x, tau_s, np.full(s, sigma), m0, p0)
    paths = rw.sample_states(means, covs, tau_s, np.random.default_rng(2))
    _, _, post_mean, post_cov = _dense(y, x, tau, sigma, m0, p0)
    se = np.sqrt(np.diag(post_cov).reshape(t_len, k) / s)
    assert np.all(np.abs(paths.mean(axis=0) - post_mean) < 4.5 * se)
    emp = np.cov(paths.reshape(s, -1), rowvar=False)
    np.testing.assert_allclose(emp, post_cov, atol=0.03)


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
    std = {"y_mean": 10.0, "y_sd": 2.0, "x_mean": np.array([3.0]), "x_sd": np.array([4.0])}
    slopes, intercept = rw.natural_units(np.array([[0.5, 0.8]]), std)
    np.testing.assert_allclose(slopes, [[0.4]])
    np.testing.assert_allclose(intercept, [9.8])


def test_bad_options_name_the_key() -> None:
    frame, _ = drifting_frame()
    with pytest.raises(ConfigError, match=r"options\.varying.*'x3'"):
        rw.design(frame, rw.Options(varying=["x1", "x3"]))
    with pytest.raises(ConfigError, match=r"options\.rolling_window.*at least 5"):
        rw.build(spec_of(rolling_window=4), frame)
    with pytest.raises(ConfigError, match=r"options\.varying"):
        rw.validate_spec(spec_of(varying=["x1", "x1"]), "exp.toml")
    with pytest.raises(ConfigError, match=r"priors\.coef0"):
        spec = spec_of()
        bad = spec.model_copy(update={"priors": {"coef0": PriorSpec(dist="StudentT", nu=3.0)}})
        rw.validate_spec(bad, "exp.toml")
    with pytest.raises(ConfigError, match=r"priors\.tua"):
        bad = spec_of().model_copy(update={"priors": {"tua": PriorSpec(dist="HalfNormal")}})
        rw.validate_spec(bad, "exp.toml")


def test_constant_terms_have_no_steps() -> None:
    frame, _ = drifting_frame()
    model = rw.build(spec_of(varying=["intercept", "x1"]), frame)
    assert list(model.coords["varying_term"]) == ["intercept", "x1"]
    assert {v.name for v in model.free_RVs} == {"tau", "sigma"}
