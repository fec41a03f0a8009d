"""Markov-switching family: recovery of known parameters and regime paths on simulated data.

Data are simulated in natural units with known regimes; the model works on y (and factors)
standardised over the fit window, so posterior draws are mapped back with the Design's
y_mean / y_sd (and x_sd) before they are compared with the truth. Each test checks that the truth
lies within 3 posterior sd, that the posterior is informative (sd well below the prior's), and
that the posterior-mean smoothed regime probabilities from `markov.derive` classify the true path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimes.config import ModelSpec, SamplerSection
from regimes.dataset import FitFrame
from regimes.families import markov
from regimes.families.base import Fit
from regimes.sampling import sample

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
SAMPLER = SamplerSection(draws=400, tune=400, chains=2, seed=7, backend="auto")


def markov_path(rng: np.random.Generator, P: np.ndarray, t: int) -> np.ndarray:
    """A regime path of length t from transition matrix P, started in its stationary law."""
    from regimes.hmm import stationary_distribution

    k = P.shape[0]
    s = np.empty(t, dtype=int)
    s[0] = rng.choice(k, p=stationary_distribution(P))
    for i in range(1, t):
        s[i] = rng.choice(k, p=P[s[i - 1]])
    return s


def make_frame(y: np.ndarray, x: np.ndarray | None = None) -> FitFrame:
    """A monthly FitFrame with every month in the fit window (and factor x if given)."""
    index = pd.date_range("1990-01-01", periods=len(y), freq="MS")
    cols = {"y": y} if x is None else {"y": y, "x": x}
    frame = pd.DataFrame(cols, index=index)
    factors = () if x is None else ("x",)
    return FitFrame("y", factors, frame, pd.Series(True, index=index), units="u")


def draws(tree, name: str) -> np.ndarray:
    """Posterior draws of `name`, chains stacked first: (chains*draws, ...)."""
    values = np.asarray(tree["posterior"][name].values)
    return values.reshape(-1, *values.shape[2:])


def assert_recovered(name: str, d: np.ndarray, truth: np.ndarray, max_sd: float) -> None:
    """Truth within 3 posterior sd of the posterior mean, and posterior sd below max_sd."""
    mean, sd = d.mean(axis=0), d.std(axis=0)
    assert np.all(np.abs(mean - truth) < 3 * sd), f"{name}: mean {mean}, sd {sd}, truth {truth}"
    assert np.all(sd < max_sd), f"{name}: posterior sd {sd} not below {max_sd}"


def assert_converged(tree) -> None:
    """Chains agree: split R-hat below 1.05 for every scalar of every free parameter."""
    import arviz as az

    rhat = az.rhat(tree["posterior"].to_dataset())
    worst = max(float(np.nanmax(rhat[v].values)) for v in rhat.data_vars)
    assert worst < 1.05, f"R-hat {worst:.3f}"


def accuracy(derived, path: np.ndarray) -> float:
    """Share of months where the posterior-mean regime probability's argmax is the true regime."""
    prob = derived["regime_prob"].values  # (time, regime)
    assert np.allclose(prob.sum(axis=1), 1.0)
    return float((prob.argmax(axis=1) == path).mean())


def fit(spec: ModelSpec, frame: FitFrame):
    """Build, sample (multistart init, numpyro when installed) and derive.

    `derive` runs on every 4th draw (200 draws) to keep the test short: that pins the
    posterior-mean regime probabilities down far more finely than the accuracy margin.
    """
    model = markov.FAMILY.build(spec, frame)
    tree = sample(model, SAMPLER, progress=False, init="multistart", n_starts=4)
    assert_converged(tree)
    d = frame.scaling(markov.Options.model_validate(spec.options).transform)
    thinned = tree.isel(draw=slice(None, None, 4))
    return tree, d, markov.FAMILY.derive(Fit(thinned, frame, spec), QUANTILES)


@pytest.mark.slow
def test_two_regimes_switching_mean_and_variance() -> None:
    rng = np.random.default_rng(2024)
    P = np.array([[0.95, 0.05], [0.10, 0.90]])
    a, sigma = np.array([2.0, 4.0]), np.array([0.4, 0.8])
    path = markov_path(rng, P, 350)
    y = a[path] + sigma[path] * rng.normal(size=path.size)
    frame = make_frame(y)
    spec = ModelSpec(
        family="markov",
        options={"k_regimes": 2, "switching": ["intercept"], "switching_variance": True},
        name="sim",
    )
    tree, d, derived = fit(spec, frame)
    assert_recovered("intercept", d.transformed(draws(tree, "intercept")), a, 0.15)
    assert_recovered("sigma", d.y_sd_of() * draws(tree, "sigma"), sigma, 0.1)
    # the prior on each diagonal entry is Uniform(0, 1) (sd 0.29)
    assert_recovered("P diag", np.diagonal(draws(tree, "P"), axis1=1, axis2=2), np.diag(P), 0.06)
    assert accuracy(derived, path) > 0.9
    # expected durations 1/(1-p_kk) = 20 and 10 months lie inside the reported 5-95% band
    dur = derived["expected_duration"]
    assert np.all(dur.sel(quantile=0.05).values < [20.0, 10.0])
    assert np.all(dur.sel(quantile=0.95).values > [20.0, 10.0])


@pytest.mark.slow
def test_three_regimes_switching_mean_shared_variance() -> None:
    rng = np.random.default_rng(11)
    P = np.full((3, 3), 0.025) + np.eye(3) * 0.925  # stay 0.95, move 0.025 to each other
    a, sigma = np.array([-3.0, 0.0, 3.0]), 0.7
    path = markov_path(rng, P, 400)
    y = 10.0 + a[path] + sigma * rng.normal(size=path.size)
    frame = make_frame(y)
    spec = ModelSpec(family="markov", options={"k_regimes": 3}, name="sim")
    tree, d, derived = fit(spec, frame)
    assert draws(tree, "sigma").ndim == 1  # one shared sigma
    assert_recovered("intercept", d.transformed(draws(tree, "intercept")), 10.0 + a, 0.15)
    assert_recovered("sigma", d.y_sd_of() * draws(tree, "sigma"), np.array(sigma), 0.05)
    # the prior on each diagonal entry is Beta(1, 2) (sd 0.24)
    assert_recovered("P diag", np.diagonal(draws(tree, "P"), axis1=1, axis2=2), np.diag(P), 0.06)
    assert accuracy(derived, path) > 0.9


@pytest.mark.slow
def test_switching_slope_with_ar1_errors_ordered_by_slope() -> None:
    rng = np.random.default_rng(5)
    t = 350
    P = np.array([[0.95, 0.05], [0.05, 0.95]])
    a, b, phi, sigma = np.array([6.0, 4.0]), np.array([-1.5, 1.5]), 0.6, 0.3
    path = markov_path(rng, P, t)
    x = rng.normal(size=t) + 2.0
    u = np.zeros(t)
    for i in range(1, t):
        u[i] = phi * u[i - 1] + sigma * rng.normal()
    y = a[path] + b[path] * x + u
    frame = make_frame(y, x)
    spec = ModelSpec(
        family="markov",
        options={
            "k_regimes": 2,
            "switching": ["intercept", "x"],
            "order_by": "x",
            "ar_order": 1,
        },
        name="sim",
    )
    tree, d, derived = fit(spec, frame)
    beta_std = draws(tree, "beta_x")  # (D, K), standardised y and x
    assert np.all(np.diff(beta_std, axis=1) > 0)  # ordered by the slope in every draw
    # natural units: y = y_mean + y_sd·(a_k + b_k·(x − x_mean)/x_sd)
    slope = d.slope(beta_std, ["x"])
    assert_recovered("beta_x", slope, b, 0.1)
    a_nat = d.transformed(draws(tree, "intercept")) - slope * d.x_mean["x"]
    assert_recovered("intercept", a_nat, a, 0.3)
    assert_recovered("phi", draws(tree, "phi")[:, 0], np.array(phi), 0.1)
    assert_recovered("sigma", d.y_sd_of() * draws(tree, "sigma"), np.array(sigma), 0.05)
    assert accuracy(derived, path) > 0.9
