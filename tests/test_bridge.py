"""Bridge sampling (`regimes.bridge`) and the mode weights it gives (`modes = "mass"`): against
normalising constants known in closed form and a posterior's mode masses by quadrature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import norm

from regimes.bridge import laplace_log_mass, log_mass, weights_from_log_masses


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


def test_laplace_log_mass_is_exact_for_a_normal_and_refuses_a_ridge() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 3))
    precision = a @ a.T + 3 * np.eye(3)
    exact = 1.2 + 1.5 * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(precision)[1]
    assert laplace_log_mass(1.2, -precision) == pytest.approx(exact, abs=1e-10)
    saddle = np.diag([-2.0, 0.5, -1.0])  # not a maximum: no finite mass to approximate
    assert laplace_log_mass(1.2, saddle) == -np.inf
    assert laplace_log_mass(np.nan, -precision) == -np.inf


def test_mass_mode_samples_the_mode_that_holds_the_mass_not_the_highest_spike() -> None:
    """x ~ N(0, 5) times 0.15 N(2, 0.1²) + 0.85 N(−2, 1): the narrow mode at 2 is the highest
    optimum (0.57 above the broad one) and holds 15% of the mass (1.73 below). With a 1-unit mode
    gap, `modes = "mass"` ranks the optima by Laplace mass and samples only the broad mode;
    ranked by height, the narrow one would come first and get chains."""
    import pymc as pm

    from regimes.config import SamplerSection
    from regimes.sampling import sample

    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 5.0)
        parts = [
            np.log(0.15) + pm.logp(pm.Normal.dist(2.0, 0.1), x),
            np.log(0.85) + pm.logp(pm.Normal.dist(-2.0, 1.0), x),
        ]
        pm.Potential("mixture", pm.math.logsumexp(pm.math.stack(parts)))
    sampler = SamplerSection(draws=300, tune=300, chains=2, seed=1, modes="mass", mode_gap=1.0)
    tree = sample(model, sampler, progress=False, init="multistart", n_starts=16)
    draws = tree["posterior"]["x"].values
    assert np.abs(draws - 2.0).min() > 0.5  # no chain in the narrow mode
    assert abs(float(np.median(draws)) + 2.0) < 0.3
    heights = tree.attrs["multistart_log_densities"]
    masses = tree.attrs["multistart_laplace_log_masses"]  # the distinct optima by height
    prior = norm.logpdf(2.0, 0.0, 5.0)
    assert heights[0] == pytest.approx(prior + norm.logpdf(0.0, 0.0, 0.1) + np.log(0.15), abs=0.01)
    assert masses[0] == pytest.approx(prior + np.log(0.15), abs=0.01)  # the narrow mode's 15%
    assert masses[1] == pytest.approx(prior + np.log(0.85), abs=0.05)  # the broad one's 85%


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
