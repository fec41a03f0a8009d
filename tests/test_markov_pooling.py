"""Partial pooling of a single-asset model's switching slopes across its regimes
(`pool_regimes`): the likelihood is the unpooled model's at b = mu + tau z, and on simulated
data with similar slopes the pooled posterior recovers them with tighter intervals."""

from __future__ import annotations

import numpy as np
import pytest

from regimes.config import ModelSpec
from regimes.families import markov
from regimes.graphs import compile_function
from regimes.sampling import sample
from test_markov_recovery import SAMPLER, draws, make_frame, markov_path

OPTIONS = {"k_regimes": 3, "switching": ["intercept", "x"], "order_by": "intercept"}


def simulate(seed: int, t: int = 300, slopes=(1.0, 1.15, 0.9)):
    """Three regimes told apart by their intercept, with similar slopes on one factor; the
    third regime is rare."""
    rng = np.random.default_rng(seed)
    P = np.array([[0.95, 0.04, 0.01], [0.04, 0.95, 0.01], [0.08, 0.07, 0.85]])
    path = markov_path(rng, P, t)
    x = rng.normal(size=t)
    intercept = np.array([-2.0, 0.0, 2.0])
    y = intercept[path] + np.asarray(slopes)[path] * x + rng.normal(0, 0.5, t)
    return make_frame(y, x), path


def test_pooled_likelihood_is_the_unpooled_one_at_mu_plus_tau_z() -> None:
    frame, _ = simulate(1, t=60)
    pooled = markov.FAMILY.build(
        ModelSpec(name="p", family="markov", options={**OPTIONS, "pool_regimes": True}), frame
    )
    plain = markov.FAMILY.build(ModelSpec(name="u", family="markov", options=OPTIONS), frame)
    assert {"beta_pop_x", "beta_tau_x", "beta_z_x"} <= {rv.name for rv in pooled.free_RVs}
    assert "beta_x" in {rv.name for rv in plain.free_RVs}
    rng = np.random.default_rng(2)
    shared = {
        "intercept": np.array([-1.0, 0.0, 1.5]),
        "sigma": 0.7,
        "P": rng.dirichlet(np.ones(3), size=3),
    }
    pop, tau, z = 0.8, 0.3, rng.normal(size=3)
    at_pooled = {**shared, "beta_pop_x": pop, "beta_tau_x": tau, "beta_z_x": z}
    at_plain = {**shared, "beta_x": pop + tau * z}
    f_pooled = compile_function(pooled.free_RVs, pooled["hmm_loglik"])
    f_plain = compile_function(plain.free_RVs, plain["hmm_loglik"])
    value = f_pooled(*[at_pooled[rv.name] for rv in pooled.free_RVs])
    np.testing.assert_allclose(value, f_plain(*[at_plain[rv.name] for rv in plain.free_RVs]))
    at_plain["beta_x"] = at_plain["beta_x"] + 0.1  # (and another slope gives another value)
    assert abs(value - f_plain(*[at_plain[rv.name] for rv in plain.free_RVs])) > 1e-6


def test_pooling_with_anchor_sets_is_refused() -> None:
    with pytest.raises(ValueError, match="pool_regimes"):
        markov.Options.model_validate(
            {
                "k_regimes": 2,
                "switching": ["intercept"],
                "regime_names": ["a", "b"],
                "pool_regimes": True,
                "anchors": {"a": ["x"], "b": []},
            }
        )


@pytest.mark.slow
def test_pooling_recovers_similar_slopes_with_tighter_intervals() -> None:
    slopes = np.array([1.0, 1.15, 0.9])
    frame, path = simulate(5, slopes=slopes)
    fits = {}
    # the researcher's belief that the slopes are similar: a spread of about 0.1 standardised
    # units (with three regimes the data alone hardly pin the spread down)
    tight = {"beta_tau": {"dist": "HalfNormal", "sigma": 0.1}}
    for pool in (False, True):
        spec = ModelSpec(
            name="s",
            family="markov",
            options={**OPTIONS, "pool_regimes": pool},
            priors=tight if pool else {},
        )
        model = markov.FAMILY.build(spec, frame)
        init, n_starts = markov.FAMILY.sampling_init(spec)
        fits[pool] = sample(model, SAMPLER, progress=False, init=init, n_starts=min(n_starts, 4))
    scale = float(frame.scaling("level").slope(1.0, ["x"])[0])  # standardised -> natural units
    rare = int(np.argmin(np.bincount(path, minlength=3)))
    sd = {}
    for pool, tree in fits.items():
        b = draws(tree, "beta_switch")[:, :, 0] * scale  # (S, regime) natural units
        mean, sd[pool] = b.mean(axis=0), b.std(axis=0)
        assert np.all(np.abs(mean - slopes) < 3 * sd[pool]), (pool, mean, sd[pool])
    assert sd[True][rare] < sd[False][rare], (sd, rare)  # the rare regime borrows strength
    pop = draws(fits[True], "beta_pop_x") * scale
    assert abs(pop.mean() - slopes.mean()) < 3 * pop.std(), (pop.mean(), pop.std())
