"""Posterior predictive checks: calibrated one-step predictives pass, misspecified ones are flagged."""

from __future__ import annotations

import numpy as np
import pytest

from regimes.families.base import Fit
from regimes.ppc import check, pit_values


def ar1(rng: np.random.Generator, t: int, rho: float, sigma: float) -> np.ndarray:
    y = np.zeros(t)
    for i in range(1, t):
        y[i] = rho * y[i - 1] + sigma * rng.normal()
    return y


def test_pit_counts_replicates_below_and_splits_ties() -> None:
    y = np.array([0.0, 1.0])
    rep = np.array([[-1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [-2.0, 0.0]])
    np.testing.assert_allclose(pit_values(y, rep), [0.5 + 0.5 * 0.25, 0.25 + 0.5 * 0.5])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_correct_one_step_predictive_passes(seed: int) -> None:
    """Replicates from the true AR(1) one-step predictive are calibrated."""
    rng = np.random.default_rng(seed)
    y = ar1(rng, 400, 0.95, 1.0)
    mean = np.concatenate([[0.0], 0.95 * y[:-1]])
    rep = mean[None, :] + rng.normal(size=(1000, len(y)))
    result = check(y, rep)
    assert result.ok, result.reasons


def test_ignoring_persistence_is_flagged() -> None:
    """An iid predictive for an AR(1) series (the static iid model's mistake) gives autocorrelated
    PITs even when its marginal spread is right."""
    rng = np.random.default_rng(5)
    y = ar1(rng, 400, 0.95, 1.0)
    rep = rng.normal(0.0, y.std(), size=(1000, len(y)))
    result = check(y, rep)
    assert not result.ok
    assert any("autocorrelation" in r for r in result.reasons)


def test_overconfident_bands_are_flagged() -> None:
    """Right mean, half the spread: coverage falls and the normal-score sd exceeds 1."""
    rng = np.random.default_rng(6)
    y = rng.normal(size=500)
    rep = rng.normal(0.0, 0.5, size=(1000, len(y)))
    result = check(y, rep)
    assert not result.ok
    assert result.checks["PIT normal-score sd"]["value"] > 1.5
    assert result.checks["coverage of 90% one-step intervals"]["value"] < 0.75


@pytest.mark.parametrize(("errors", "flagged"), [("iid", True), ("ar1", False)])
def test_fitted_static_model_on_persistent_errors(errors: str, flagged: bool) -> None:
    """End to end through a family: a level regression with AR(1) errors (ρ = 0.9) fitted with
    iid errors is flagged by its posterior predictive check; fitted with AR(1) errors it passes."""
    import pandas as pd

    from regimes.config import ModelSpec, SamplerSection
    from regimes.dataset import FitFrame
    from regimes.families import static
    from regimes.ppc import run_checks
    from regimes.sampling import sample

    rng = np.random.default_rng(8)
    t = 300
    x = rng.normal(size=t)
    y = 10.0 + 2.0 * x + ar1(rng, t, 0.9, 1.0)
    index = pd.date_range("1990-01-01", periods=t, freq="MS")
    frame = FitFrame(
        "y", ("x",), pd.DataFrame({"y": y, "x": x}, index=index), pd.Series(True, index=index)
    )
    spec = ModelSpec(
        name="t", family="static", options={"transform": "level", "errors": errors}, priors={}
    )
    tree = sample(
        static.FAMILY.build(spec, frame),
        SamplerSection(draws=300, tune=300, chains=2, seed=3),
        progress=False,
    )
    _, additions, result = run_checks(
        static.FAMILY, Fit(tree, frame, spec), [0.05, 0.5, 0.95], seed=1
    )
    assert (not result.ok) is flagged, result.reasons
    assert additions["pit"].dims == ("time",)
