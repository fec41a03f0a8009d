"""Multimodal posteriors (issue 15, item 5): distinct optima get their own chains, convergence is
judged within each mode, and the modes are combined by stacking (Yao, Vehtari & Gelman 2022)."""

from __future__ import annotations

import numpy as np
import pytest
from arviz_base import from_dict

from regimes.config import SamplerSection
from regimes.diagnostics import diagnose, quick_verdict
from regimes.modes import (
    chain_modes,
    distinct_modes,
    multimodal_summary,
    multimodal_verdict,
    stack,
    stacked_tree,
)
from regimes.sampling import sample


def test_distinct_modes_merge_near_optima_and_drop_far_worse_ones() -> None:
    a, b = np.zeros(3), np.full(3, 4.0)
    optima = [(-10.0, a), (-10.1, a + 0.01), (-12.0, b), (-40.0, -b)]
    modes = distinct_modes(optima, gap=10.0)
    assert [lp for lp, _ in modes] == [-10.0, -12.0]  # a's twin merged, -b too far below
    assert len(distinct_modes(optima, gap=10.0, limit=1)) == 1


def test_stacking_weights_maximise_the_log_score() -> None:
    rng = np.random.default_rng(0)
    n = 200
    better_a = rng.random(n) < 0.7  # A predicts 70% of the points better
    lpd = np.column_stack([np.where(better_a, -1.0, -4.0), np.where(better_a, -4.0, -1.0)])
    w = stack(lpd)
    grid = np.linspace(0.001, 0.999, 999)
    score = [np.log(g * np.exp(lpd[:, 0]) + (1 - g) * np.exp(lpd[:, 1])).sum() for g in grid]
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(grid[int(np.argmax(score))], abs=0.002)
    dominated = stack(np.column_stack([np.full(n, -1.0), np.full(n, -3.0)]))
    assert dominated[0] > 0.99
    alike = stack(np.column_stack([lpd[:, 0], lpd[:, 0] + rng.normal(0, 1e-3, n)]))
    assert list(alike) == [0.5, 0.5]


def two_mode_tree(seed: int = 0):
    """Chains 0 and 2 around 0, chains 1 and 3 around 5: each pair mixes, the pairs do not."""
    rng = np.random.default_rng(seed)
    centre = np.array([0.0, 5.0, 0.0, 5.0])[:, None]
    mu = centre + rng.normal(0, 1, (4, 500))
    ll = -0.5 * (rng.normal(0, 1, (4, 500, 20)) + np.where(centre > 0, 1.0, 0.0)[..., None]) ** 2
    tree = from_dict({"posterior": {"mu": mu}, "log_likelihood": {"y": ll}})
    tree.attrs["chain_mode"] = [0, 1, 0, 1]
    return tree


def test_mixing_is_judged_within_each_mode() -> None:
    tree = two_mode_tree()
    pooled = tree.copy()
    pooled.attrs = {}
    assert not quick_verdict(pooled)["converged"]  # judged across modes, the chains disagree
    assert quick_verdict(tree)["converged"]  # within each mode they mix
    diagnosis = diagnose(tree)
    assert any("mode" in n for n in diagnosis.notes) and diagnosis.chains == 4
    summary = multimodal_summary(tree)
    assert summary is not None and summary["n_modes"] == 2 and summary["converged_within"]
    verdict = multimodal_verdict(quick_verdict(tree), summary)
    assert verdict["converged"] and verdict["status"].startswith("multimodal: 2 modes")


def test_stacked_tree_draws_modes_in_proportion_to_their_weights() -> None:
    tree = two_mode_tree()
    out = stacked_tree(tree, {0: 0.75, 1: 0.25}, seed=1)
    mu = out["posterior"]["mu"].values
    assert mu.shape == (4, 500)
    assert abs((mu < 2.5).mean() - 0.75) < 0.01
    assert chain_modes(out) is not None  # the record of modes stays with the tree


def test_sampler_starts_chains_in_each_mode_and_they_stay() -> None:
    """y = 4 observed with mean mu²: two equally good modes at mu = ±2, 32 nats apart by a
    barrier at 0 that NUTS does not cross."""
    import pymc as pm

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 3.0)
        pm.Normal("y", mu**2, 0.5, observed=np.array([4.0, 4.1, 3.9]))
    sampler = SamplerSection(draws=500, tune=300, chains=4, seed=5, modes="stack")
    tree = sample(model, sampler, progress=False, init="multistart", n_starts=8)
    modes = chain_modes(tree)
    assert modes is not None and sorted(set(modes.tolist())) == [0, 1]
    signs = np.sign(tree["posterior"]["mu"].values.mean(axis=1))
    for m in (0, 1):
        assert len(set(signs[modes == m].tolist())) == 1  # chains of one mode stay in it
    assert set(signs.tolist()) == {-1.0, 1.0}
    summary = multimodal_summary(tree)
    assert summary is not None and summary["converged_within"]
    # mirror-image modes predict alike: prediction cannot weigh them, so the weights are equal
    assert list(summary["weights"].values()) == [0.5, 0.5]


def test_multistart_runs_with_a_single_start() -> None:
    """`n_starts = 1` is allowed by the options: one prior draw, one optimisation (pm.draw drops
    the draws axis for a single draw, which once broke the start's unpacking)."""
    import pymc as pm

    from regimes.compiled import compiled_for
    from regimes.sampling import multistart_compiled

    with pm.Model() as model:
        obs = pm.Data("obs", np.array([0.5, 1.5, 1.0]))
        mu = pm.Normal("mu", 0.0, 10.0)
        pm.Normal("y", mu, 0.5, observed=obs)
    compiled = compiled_for(model, "test-one-start")
    data = compiled.data_of(model)
    found = multistart_compiled(model, compiled, data, 1, seed=3)
    assert len(found["log_densities"]) == 1
    best = compiled.constrained(compiled.unflatten(found["best"]), data)["mu"]
    assert float(best) == pytest.approx(1.0 / (1.0 + 0.25 / 300.0), abs=1e-4)  # posterior mode


def test_optima_whose_chains_mix_are_merged_into_one_mode() -> None:
    """Chains started at two optima of one basin sample the same distribution: one mode (None);
    chains in distributions far apart stay apart; a mode that mixes with another takes its
    label, and the best optimum of each group is kept."""
    from regimes.modes import merge_mixing_modes

    rng = np.random.default_rng(4)
    same = rng.normal(size=(4, 400, 3))
    assert merge_mixing_modes(same, [0, 1, 0, 1], [10.0, 8.0]) == (None, [10.0])
    apart = same + np.array([0.0, 5.0, 0.0, 5.0])[:, None, None]
    assert merge_mixing_modes(apart, [0, 1, 0, 1], [10.0, 8.0]) == ([0, 1, 0, 1], [10.0, 8.0])
    three = rng.normal(size=(6, 400, 2)) + np.array([0, 5, 0, 0, 5, 0])[:, None, None]
    modes, lps = merge_mixing_modes(three, [0, 1, 2, 0, 1, 2], [10.0, 9.0, 8.0])
    assert modes == [0, 1, 0, 0, 1, 0] and lps == [10.0, 9.0]
