"""Bridge sampling (`regimes.bridge`) and the mode weights it gives (`modes = "mass"`): against
normalising constants known in closed form and a posterior's mode masses by quadrature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import norm

from regimes.bridge import log_mass, weights_from_log_masses


def test_the_log_mass_of_a_correlated_normal_matches_its_normalising_constant() -> None:
    rng = np.random.default_rng(1)
    d = 4
    a = rng.normal(size=(d, d))
    precision = a @ a.T + d * np.eye(d)
    mean = rng.normal(size=d)
    const = 3.7  # log p(θ) = const − ½ (θ − m)ᵀ A (θ − m): log Z = const + d/2 log 2π − ½ log|A|

    def log_density(x: np.ndarray) -> np.ndarray:
        z = x - mean
        return const - 0.5 * np.einsum("ni,ij,nj->n", z, precision, z)

    draws = rng.multivariate_normal(mean, np.linalg.inv(precision), size=4000)
    est = log_mass(draws, log_density(draws), log_density, rng)
    exact = const + 0.5 * d * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(precision)[1]
    assert est.log_mass == pytest.approx(exact, abs=0.02)
    assert 0 < est.relative_error < 0.02


def test_the_log_mass_of_a_skewed_density_matches_its_normalising_constant() -> None:
    """A gamma density on the log scale, u = log x: p(u) ∝ exp(a u − b eᵘ), Z = Γ(a) / bᵃ.
    Skewed, so the fitted normal is only a proposal, not the density."""
    rng = np.random.default_rng(2)
    shape, rate = 2.5, 3.0

    def log_density(x: np.ndarray) -> np.ndarray:
        u = x[:, 0]
        return shape * u - rate * np.exp(u)

    draws = np.log(rng.gamma(shape, 1 / rate, size=(4000, 1)))
    est = log_mass(draws, log_density(draws), log_density, rng)
    exact = gammaln(shape) - shape * np.log(rate)
    assert est.log_mass == pytest.approx(exact, abs=0.03)


def test_draws_from_the_wrong_density_give_the_wrong_mass() -> None:
    """The estimate reads the draws: posterior draws from a shifted normal (not the density's
    own) move it far from the true constant, so agreement above is not automatic."""
    rng = np.random.default_rng(3)

    def log_density(x: np.ndarray) -> np.ndarray:
        return norm.logpdf(x[:, 0])

    draws = rng.normal(2.0, 1.0, size=(4000, 1))
    est = log_mass(draws, log_density(draws), log_density, rng)
    assert abs(est.log_mass) > 0.5  # exact: 0


def test_weights_from_log_masses_are_shares_of_the_mass() -> None:
    w = weights_from_log_masses({0: np.log(3.0) + 800.0, 2: 800.0})
    assert w == pytest.approx({0: 0.75, 2: 0.25})


def test_mass_mode_weighs_a_pymc_model_s_modes_by_their_mass_and_stacking_does_not() -> None:
    """y ~ N(μ², 0.5) with μ ~ N(1, 1.5): two modes at ±√ȳ that NUTS cannot cross, whose masses
    differ only through the prior, so they predict alike. Chains at both optima with
    `modes = "mass"` give the mode μ > 0 its mass by quadrature; stacking gives it one half."""
    from regimes.config import SamplerSection
    from regimes.fit import posterior_of
    from regimes.modes import chain_modes, mode_weights, stacking_weights
    from regimes.sampling import sample
    from two_modes import squared_mean_model

    y = np.array([1.0, 1.4, 0.8, 1.2, 0.9, 1.1])
    model, exact, log_evidence = squared_mean_model(y)  # exact: about 0.71
    sampler = SamplerSection(draws=1000, tune=500, chains=6, seed=3, modes="mass")
    tree = sample(model, sampler, progress=False, init="multistart", compile_key="test-mass")
    modes = chain_modes(tree)
    assert modes is not None and len(set(modes.tolist())) == 2
    draws = tree["posterior"]["mu"].values
    positive = int(modes[np.flatnonzero(np.median(draws, axis=1) > 0)[0]])
    weights = mode_weights(tree)
    assert weights[positive] == pytest.approx(exact, abs=0.02)
    assert stacking_weights(tree)[positive] == pytest.approx(0.5)  # what "stack" would give
    assert max(tree.attrs["mode_mass_relative_error"]) < 0.05
    assert tree.attrs["log_evidence_bridge"] == pytest.approx(log_evidence, abs=0.05)

    class Run:  # what posterior_of reads of an experiment
        sampler = SamplerSection(seed=1)

    combined, verdict = posterior_of(Run(), tree)  # type: ignore[arg-type]
    share = float((combined["posterior"]["mu"].values > 0).mean())
    assert share == pytest.approx(exact, abs=0.02)
    assert verdict["modes"]["weighted_by"] == "posterior mass"
    assert "weights by posterior mass" in verdict["status"]


def test_mass_mode_gives_a_conjugate_model_s_log_evidence() -> None:
    """One mode (every chain in one basin, the optima merged): bridge sampling over all chains
    gives log p(y) of a normal mean with known σ, in closed form."""
    import pymc as pm
    from scipy.stats import multivariate_normal

    from regimes.config import SamplerSection
    from regimes.modes import chain_modes
    from regimes.sampling import sample

    y = np.array([0.4, 1.3, -0.2, 0.9, 1.6, 0.7])
    with pm.Model() as model:
        obs = pm.Data("obs", y)
        mu = pm.Normal("mu", 0.0, 2.0)
        pm.Normal("y", mu, 0.8, observed=obs)
    n = len(y)
    exact = multivariate_normal(np.zeros(n), 0.8**2 * np.eye(n) + 2.0**2).logpdf(y)
    sampler = SamplerSection(draws=1000, tune=500, chains=4, seed=2, modes="mass")
    tree = sample(model, sampler, progress=False, init="multistart", compile_key="test-mass-1")
    assert chain_modes(tree) is None
    assert tree.attrs["log_evidence_bridge"] == pytest.approx(exact, abs=0.03)
