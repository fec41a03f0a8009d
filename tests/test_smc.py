"""Tempered SMC (`regimes.smc`): the tempering step, the resampling, and a posterior with two
modes far apart whose weights and evidence are known in closed form — the case NUTS from one
optimum gets wrong (it returns one mode with weight 1)."""

from __future__ import annotations

import numpy as np
import pytest

from regimes.smc import make_kernels, next_beta, run_smc, systematic_resample

PRIOR_SD = 3.0
WIDTH = 0.2  # each mode's sd: far narrower than their distance
CENTRES = np.array([[1.0, 0.0], [-4.0, 3.0]])
MIX = np.array([0.2, 0.8])


def _kernels():
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    def prior_lik(x, data):
        (centres,) = data
        log_prior = -0.5 * jnp.sum((x / PRIOR_SD) ** 2, axis=1) - 2 * jnp.log(
            PRIOR_SD * jnp.sqrt(2 * jnp.pi)
        )
        d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)  # (n, 2 components)
        comp = -0.5 * d2 / WIDTH**2 - 2 * jnp.log(WIDTH * jnp.sqrt(2 * jnp.pi))
        return log_prior, logsumexp(comp + jnp.log(jnp.asarray(MIX))[None], axis=1)

    return make_kernels(prior_lik)


def _exact():
    """Posterior weight of each mode and log evidence: w_k N(m_k; 0, (s² + τ²) I)."""
    var = PRIOR_SD**2 + WIDTH**2
    dens = MIX * np.exp(-0.5 * (CENTRES**2).sum(axis=1) / var) / (2 * np.pi * var)
    return dens / dens.sum(), float(np.log(dens.sum()))


def test_next_beta_keeps_the_target_ess():
    rng = np.random.default_rng(0)
    ll = rng.normal(0, 30, size=2000)
    beta = next_beta(ll, 0.0, 0.5)
    w = np.exp((beta - 0.0) * (ll - ll.max()))
    assert 0 < beta < 1
    assert w.sum() ** 2 / np.sum(w**2) == pytest.approx(1000, rel=1e-3)
    assert next_beta(np.zeros(100), 0.3) == 1.0  # a flat likelihood is tempered in one step


def test_next_beta_ignores_particles_with_no_likelihood():
    ll = np.array([-np.inf, np.nan, -1.0, -2.0, -1.5, -1.2])
    assert 0.0 < next_beta(ll, 0.0, 0.5) <= 1.0


def test_systematic_resampling_keeps_each_particle_its_share():
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(50))
    counts = np.bincount(systematic_resample(w, rng), minlength=50)
    assert np.all(np.abs(counts - 50 * w) < 1.0)


def test_two_far_apart_modes_get_their_posterior_weights():
    import jax.numpy as jnp

    kernels = _kernels()
    data = [jnp.asarray(CENTRES)]
    weights, log_z = _exact()  # 0.485 / 0.515, far from the likelihood's 0.2 / 0.8 mixing
    n = 2000
    shares, evidences = [], []
    for seed in range(3):
        init = np.random.default_rng(seed).normal(0, PRIOR_SD, size=(n, 2))
        run = run_smc(kernels, init, data, seed)
        assert run.betas[-1] == 1.0
        near = np.linalg.norm(run.particles[:, None, :] - CENTRES[None], axis=-1) < 5 * WIDTH
        assert near.any(axis=1).mean() > 0.99  # every particle ends in one of the modes
        shares.append(near[:, 0].mean())
        evidences.append(run.log_evidence)
    # runs scatter by about 0.02 in share and 0.03 in log evidence (resampled particles are not
    # independent); skipping the reweighting gives 0.57 and -5.05 here, outside both tolerances
    assert np.mean(shares) == pytest.approx(weights[0], abs=0.035)
    assert np.mean(evidences) == pytest.approx(log_z, abs=0.05)


def test_sampler_weighs_a_pymc_model_s_modes_by_their_mass() -> None:
    """`modes = "smc"` through `regimes.sampling.sample`: y observed with mean mu², modes at
    mu = ±2 that NUTS does not cross, unequal in mass through the prior (centred at 1). The share
    of draws with mu > 0 matches the mass by quadrature; the tree is the one NUTS runs give."""
    from regimes.config import SamplerSection
    from regimes.diagnostics import quick_verdict
    from regimes.sampling import sample
    from two_modes import squared_mean_model

    model, exact, _ = squared_mean_model(np.array([4.0, 4.1, 3.9]))  # exact: about 0.86
    sampler = SamplerSection(draws=1500, chains=2, seed=3, modes="smc")
    tree = sample(model, sampler, progress=False, compile_key="test-smc-mu2")
    draws = tree["posterior"]["mu"].values
    assert draws.shape == (2, 1500)
    assert (draws > 0).mean() == pytest.approx(exact, abs=0.04)
    assert set(np.sign(draws.ravel()).tolist()) == {-1.0, 1.0}  # both modes, unlike NUTS
    assert "log_likelihood" in tree.children and tree.attrs["sampling_backend"] == "smc"
    assert len(tree.attrs["smc_log_evidence"]) == 2
    assert quick_verdict(tree)["converged"]  # the two runs agree on the weights


def test_a_run_that_does_not_reach_the_posterior_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cloud stopped short of β = 1 is not a posterior: the run says so instead of returning."""
    import jax.numpy as jnp

    import regimes.smc as smc
    from regimes.errors import RegimesError

    monkeypatch.setattr(smc, "MAX_STAGES", 1)
    init = np.random.default_rng(0).normal(0, PRIOR_SD, size=(200, 2))
    with pytest.raises(RegimesError, match="raise \\[sampler\\] draws"):
        run_smc(_kernels(), init, [jnp.asarray(CENTRES)], 0)


def test_particles_are_evaluated_in_chunks_with_the_same_values() -> None:
    """`CompiledModel.prior_and_likelihood` runs the particles in cache-sized chunks (the last
    one padded): every particle's log prior and log likelihood equal the one-at-a-time values,
    for a count that is not a multiple of the chunk and one smaller than it."""
    import jax
    import jax.numpy as jnp
    import pymc as pm

    from regimes.compiled import PARTICLE_CHUNK, CompiledModel

    with pm.Model() as model:
        obs = pm.Data("obs", np.array([0.3, -1.2, 2.0, 0.7]))
        mu = pm.Normal("mu", 0.0, 2.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", mu, sigma, observed=obs)
    compiled = CompiledModel.from_model(model)
    data = [jnp.asarray(d) for d in compiled.data_of(model)]
    fn = jax.jit(compiled.prior_and_likelihood())
    for n in (2 * PARTICLE_CHUNK + 3, PARTICLE_CHUNK // 2):
        x = np.random.default_rng(n).normal(size=(n, 2))
        lp, ll = fn(jnp.asarray(x), data)
        assert lp.shape == ll.shape == (n,)
        for i in (0, n // 2, n - 1):
            lp_i, ll_i = compiled.split_fn(*compiled.unflatten(jnp.asarray(x[i])), *data)
            assert float(lp[i]) == pytest.approx(float(lp_i), rel=1e-12)
            assert float(ll[i]) == pytest.approx(float(ll_i), rel=1e-12)
