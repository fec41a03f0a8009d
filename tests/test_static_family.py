"""Static fair-value family: recovery of known coefficients on simulated data, and its outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimes.config import ModelSpec, SamplerSection
from regimes.dataset import FitFrame
from regimes.families import static
from regimes.families.base import Fit
from regimes.sampling import sample


def simulated_frame(
    rho: float, n: int = 240, n_out: int = 24, seed: int = 3
) -> tuple[FitFrame, dict]:
    """y = 5 + 2·x1 − 1·x2 + u, u an AR(1) with coefficient rho; last n_out months out of sample."""
    rng = np.random.default_rng(seed)
    t = n + n_out
    x = rng.normal(size=(t, 2)).cumsum(axis=0) * 0.3
    u = np.zeros(t)
    for i in range(1, t):
        u[i] = rho * u[i - 1] + rng.normal(scale=0.4)
    truth = {"intercept": 5.0, "beta": np.array([2.0, -1.0]), "rho": rho}
    y = truth["intercept"] + x @ truth["beta"] + u
    index = pd.date_range("2000-01-01", periods=t, freq="MS")
    frame = pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1]}, index=index)
    fit = pd.Series(np.arange(t) < n, index=index)
    return FitFrame(target="y", factors=("x1", "x2"), frame=frame, fit=fit, units="u"), truth


SAMPLER = SamplerSection(draws=400, tune=400, chains=2, seed=11, backend="pymc")
QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


@pytest.mark.parametrize(("errors", "rho"), [("iid", 0.0), ("ar1", 0.8)])
def test_recovers_known_coefficients(errors: str, rho: float) -> None:
    frame, truth = simulated_frame(rho)
    spec = ModelSpec(family="static", options={"transform": "level", "errors": errors}, name="sim")
    tree = sample(static.FAMILY.build(spec, frame), SAMPLER, progress=False)
    derived = static.FAMILY.derive(Fit(tree, frame, spec), QUANTILES)
    scaling = frame.scaling("level")
    beta = scaling.slope(tree["posterior"]["beta"].values.reshape(-1, 2), list(frame.factors))
    mean, sd = beta.mean(axis=0), beta.std(axis=0)
    # the truth lies within 3 posterior sd, and the posterior is informative
    assert np.all(np.abs(mean - truth["beta"]) < 3 * sd), (mean, sd)
    assert np.all(sd < 0.15), sd
    if errors == "iid":
        # with weak priors the posterior mean agrees with OLS (a peer computation)
        fit = frame.fit.to_numpy()
        x = np.column_stack([np.ones(fit.sum()), frame.X.to_numpy()[fit]])
        ols = np.linalg.lstsq(x, frame.y.to_numpy()[fit], rcond=None)[0][1:]
        np.testing.assert_allclose(mean, ols, atol=0.2 * sd.max())
    coef = derived["coef"]
    np.testing.assert_allclose(coef.sel(quantile=0.5).values, np.median(beta, axis=0), rtol=1e-9)
    if errors == "ar1":
        rho_draws = tree["posterior"]["rho"].values.ravel()
        assert np.quantile(rho_draws, 0.05) < rho < np.quantile(rho_draws, 0.95)
    # fair value (in and out of sample) tracks the true regression part, not the noisy price
    true_fv = truth["intercept"] + frame.X.to_numpy() @ truth["beta"]
    fv_med = derived["fair_value"].sel(quantile=0.5).values
    assert np.abs(fv_med - true_fv).mean() < 0.5 * np.abs(frame.y.to_numpy() - true_fv).mean()
    assert set(derived["fair_value"].dims) == {"time", "quantile"}
    assert derived["in_sample"].values.sum() == 240
    assert 0.0 < derived.attrs["r2_bayes"] < 1.0


def test_log_transform_gives_positive_fair_value_and_consistent_deviation() -> None:
    frame, _ = simulated_frame(0.5, n=120, n_out=12)
    frame.frame["y"] = np.exp(frame.frame["y"] / 5.0)
    spec = ModelSpec(family="static", options={"transform": "log", "errors": "ar1"}, name="sim")
    tree = sample(
        static.FAMILY.build(spec, frame),
        SAMPLER.model_copy(update={"draws": 200, "tune": 200}),
        progress=False,
    )
    derived = static.FAMILY.derive(Fit(tree, frame, spec), QUANTILES)
    assert (derived["fair_value"] > 0).all()
    # deviation quantiles are the mirror image of fair-value quantiles: 100·(p/fv − 1)
    price = derived["price"].values
    fv_med = derived["fair_value"].sel(quantile=0.5).values
    dev_med = derived["deviation_pct"].sel(quantile=0.5).values
    # (equal up to interpolation between neighbouring draws at the median)
    np.testing.assert_allclose(dev_med, 100 * (price / fv_med - 1), rtol=1e-3, atol=1e-3)


def test_ols_r2_matches_numpy_fit() -> None:
    frame, _ = simulated_frame(0.0)
    fit = frame.fit.to_numpy()
    y = frame.y.to_numpy()[fit]
    x = np.column_stack([np.ones(fit.sum()), frame.X.to_numpy()[fit]])
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    expected = 1 - (resid**2).sum() / ((y - y.mean()) ** 2).sum()
    assert static.ols_r2(frame, "level") == pytest.approx(expected)
