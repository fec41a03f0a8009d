"""Posterior predictive checks: calibrated one-step predictives pass, misspecified ones are flagged."""

from __future__ import annotations

import numpy as np
import pytest

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
