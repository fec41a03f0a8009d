"""FFBS draws, switching probabilities and the batched posterior pass against brute force.

In the style of dynamax's HMM tests: for small K and T every one of the K**T regime paths is
enumerated, which gives the exact posterior p(s_0..T-1 | y) and from it every quantity the
kernels estimate. Sampled paths are then compared with the exact path probabilities and with
the exact probability that the regime changed at t, P(s_t != s_t-1 | y) — the markov family's
``switch_prob`` output is the fraction of FFBS paths (one per posterior draw, from
``posterior_draws``) that switch at t. Deterministic quantities (log predictive densities,
filtered and smoothed probabilities from ``posterior_draws``) must match to rounding error.

Self-contained on purpose (only ``regimes.hmm`` is imported), so it runs while the model
families are being changed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from regimes.hmm import posterior_draws, sample_paths, sample_paths_draws

RTOL, ATOL = 1e-10, 1e-12
N_PER_PROBLEM = 20_000  # sampled paths per parameter set
N_SE = 5.0  # Monte Carlo bounds: |estimate - exact| <= N_SE standard errors + 2/n
CHI2_MIN_P = 1e-4  # smallest acceptable p-value of the pooled chi-square goodness-of-fit test

# (K, T, transition layout):
#   "static" (K,K); "tv" (T-1,K,K); "tvT" (T,K,K) whose last slice is unused;
#   "forbidden" a static left-to-right (change-point) matrix with -inf entries and s_0 = 0.
CASES = [
    (2, 5, "static"),
    (3, 4, "static"),
    (2, 4, "tv"),
    (3, 5, "tv"),
    (3, 4, "tvT"),
    (3, 5, "forbidden"),
]
IDS = [f"K{k}-T{t}-{lay}" for k, t, lay in CASES]


def make_problem(k: int, t_len: int, layout: str, rng: np.random.Generator):
    """Random HMM inputs in log space: log_init, log_trans (as passed), log_lik and the
    (T-1, K, K) transitions actually used between consecutive times."""
    log_lik = 1.5 * rng.normal(size=(t_len, k))
    with np.errstate(divide="ignore"):
        if layout == "forbidden":
            stay = rng.uniform(0.3, 0.8, size=k)
            P = np.diag(stay) + np.diag(1 - stay[:-1], 1)
            P[-1, -1] = 1.0
            log_init = np.log(np.eye(k)[0])
            log_trans = np.log(P)
            return log_init, log_trans, log_lik, np.broadcast_to(log_trans, (t_len - 1, k, k))
        log_init = np.log(rng.dirichlet(np.ones(k)))
        if layout == "static":
            log_trans = np.log(rng.dirichlet(np.ones(k), size=k))
            return log_init, log_trans, log_lik, np.broadcast_to(log_trans, (t_len - 1, k, k))
        n_slices = t_len - 1 if layout == "tv" else t_len
        log_trans = np.log(rng.dirichlet(np.ones(k), size=(n_slices, k)))
        return log_init, log_trans, log_lik, log_trans[: t_len - 1]


def log_joint(log_init, used, log_lik, paths: np.ndarray) -> np.ndarray:
    """log p(s_0..n-1 = path, y_0..n-1) for each row of ``paths`` (n = paths.shape[1])."""
    lj = log_init[paths[:, 0]] + log_lik[0, paths[:, 0]]
    for t in range(1, paths.shape[1]):
        lj = lj + used[t - 1, paths[:, t - 1], paths[:, t]] + log_lik[t, paths[:, t]]
    return lj


def all_paths(k: int, n: int) -> np.ndarray:
    """All K**n paths in ``itertools.product`` order (path code = base-K number, s_0 first)."""
    return np.array(list(itertools.product(range(k), repeat=n)), dtype=np.int64)


def path_codes(paths: np.ndarray, k: int) -> np.ndarray:
    """Index of each sampled path in ``all_paths`` order."""
    return paths @ (k ** np.arange(paths.shape[1] - 1, -1, -1))


def brute_force(log_init, used, log_lik) -> dict[str, np.ndarray]:
    """Exact posterior quantities by enumerating every regime path (and every prefix)."""
    t_len, k = log_lik.shape
    log_z = np.empty(t_len)  # log p(y_0..t)
    filtered = np.empty((t_len, k))
    for t in range(t_len):
        prefixes = all_paths(k, t + 1)
        lj = log_joint(log_init, used, log_lik, prefixes)
        log_z[t] = np.logaddexp.reduce(lj)
        w = np.exp(lj - log_z[t])
        filtered[t] = np.bincount(prefixes[:, -1], weights=w, minlength=k)
    paths = all_paths(k, t_len)
    probs = np.exp(log_joint(log_init, used, log_lik, paths) - log_z[-1])
    smoothed = np.stack(
        [np.bincount(paths[:, t], weights=probs, minlength=k) for t in range(t_len)]
    )
    switch = np.array(
        [0.0] + [probs[paths[:, t] != paths[:, t - 1]].sum() for t in range(1, t_len)]
    )
    return {
        "paths": paths,
        "path_probs": probs,
        "log_pred": np.diff(log_z, prepend=0.0),
        "filtered": filtered,
        "smoothed": smoothed,
        "switch": switch,  # P(s_t != s_t-1 | y); 0 at t = 0 by convention
    }


def problems(case, n_problems: int, seed: int):
    """``n_problems`` independent parameter sets of one case, each with its brute force."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_problems):
        li, lt, ll, used = make_problem(*case, rng)
        out.append((li, lt, ll, brute_force(li, used, ll)))
    return out


def interleave(probs, n: int):
    """Batched inputs with draw d using parameter set d % G (G = len(probs)), D = G * n."""
    stack = [np.stack([p[i] for p in probs]) for i in range(3)]
    return [np.tile(a, (n,) + (1,) * (a.ndim - 1)) for a in stack]


def empirical_switch(paths: np.ndarray) -> np.ndarray:
    """Fraction of paths whose regime changed at t (0 at t = 0), as the markov family counts."""
    return np.concatenate([[0.0], (paths[:, 1:] != paths[:, :-1]).mean(axis=0)])


def assert_path_frequencies(paths: np.ndarray, k: int, exact: np.ndarray) -> None:
    """Sampled paths follow the exact path distribution: a pooled chi-square test, a per-path
    binomial bound, and no path of probability zero is ever drawn."""
    n = paths.shape[0]
    counts = np.bincount(path_codes(paths, k), minlength=k ** paths.shape[1])
    assert counts.sum() == n
    assert np.all(counts[exact == 0] == 0), "a path of probability zero was sampled"
    freq = counts / n
    bound = N_SE * np.sqrt(exact * (1 - exact) / n) + 2 / n
    worst = np.max(np.abs(freq - exact) / bound)
    assert worst <= 1, f"a path frequency is {worst:.2f} bounds from its exact probability"
    # Pearson chi-square with cells of expected count < 5 pooled into one cell
    expected = n * exact
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    chi2 = float(np.sum((obs - exp) ** 2 / exp))
    p_value = stats.chi2.sf(chi2, df=len(obs) - 1)
    assert p_value > CHI2_MIN_P, f"chi-square {chi2:.1f} on {len(obs) - 1} df, p = {p_value:.2g}"


def assert_switch(emp: np.ndarray, exact: np.ndarray, n: int) -> None:
    """Empirical switch frequencies within N_SE binomial standard errors (+2/n) of the exact."""
    bound = N_SE * np.sqrt(exact * (1 - exact) / n) + 2 / n
    assert emp[0] == 0.0 and exact[0] == 0.0
    err = np.abs(emp - exact)
    assert np.all(err <= bound), f"switch error / bound: {np.round(err / bound, 2)}"


# ----------------------------------------------------------------------------- brute force itself


def test_brute_force_reference_by_hand():
    """The reference itself on a case small enough to do by hand, then its internal agreement.

    K=2, T=2, p(s_0) = (0.5, 0.5), P = [[0.9, 0.1], [0.2, 0.8]] and uninformative data (equal
    likelihoods): the posterior is the prior, p(s_0=i, s_1=j) = 0.5 P[i, j], so P(switch at 1)
    = 0.5 * 0.1 + 0.5 * 0.2 = 0.15 and p(s_1) = (0.5 * 0.9 + 0.5 * 0.2, 0.5 * 0.1 + 0.5 * 0.8).
    """
    P = np.array([[0.9, 0.1], [0.2, 0.8]])
    bf = brute_force(np.log([0.5, 0.5]), np.log(P)[None], np.zeros((2, 2)))
    np.testing.assert_allclose(bf["path_probs"], [0.45, 0.05, 0.1, 0.4], rtol=1e-12)
    np.testing.assert_allclose(bf["switch"], [0.0, 0.15], rtol=1e-12)
    np.testing.assert_allclose(bf["smoothed"], [[0.5, 0.5], [0.55, 0.45]], rtol=1e-12)
    np.testing.assert_allclose(bf["filtered"], bf["smoothed"], rtol=1e-12)
    np.testing.assert_allclose(bf["log_pred"], [0.0, 0.0], atol=1e-15)
    for *_, bf in problems((3, 4, "tv"), 2, seed=1):
        np.testing.assert_allclose(bf["path_probs"].sum(), 1.0, rtol=1e-12)
        np.testing.assert_allclose(bf["smoothed"].sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(bf["filtered"].sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(bf["smoothed"][-1], bf["filtered"][-1], rtol=1e-12)


# ----------------------------------------------------------------------------- exact: posterior_draws


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_posterior_draws_exact_against_brute_force(case):
    """log_pred, filtered and smoothed from the batched pass equal the enumeration, per draw
    (each draw with its own parameters, so a mix-up between draws is caught)."""
    probs = problems(case, 4, seed=100 + 10 * case[0] + case[1])
    li, lt, ll = interleave(probs, 2)  # D = 8: parameter sets 0,1,2,3,0,1,2,3
    log_pred, filt, smoothed, paths = posterior_draws(0, li, lt, ll)
    k, t_len, _ = case
    assert log_pred.shape == (8, t_len)
    assert filt.shape == smoothed.shape == (8, t_len, k)
    assert paths.shape == (8, t_len) and paths.dtype.kind == "i"
    for d in range(8):
        bf = probs[d % 4][3]
        np.testing.assert_allclose(log_pred[d], bf["log_pred"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(filt[d], bf["filtered"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(smoothed[d], bf["smoothed"], rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- FFBS path frequencies


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_batched_ffbs_path_frequencies(case):
    """sample_paths_draws and posterior_draws: per parameter set, the paths drawn for its draws
    follow the exact posterior over all K**T paths; both helpers give the same paths for one
    seed (they share the backward sampler)."""
    k = case[0]
    probs = problems(case, 3, seed=200 + 10 * case[0] + case[1])
    li, lt, ll = interleave(probs, N_PER_PROBLEM)
    paths = sample_paths_draws(np.random.default_rng(7), li, lt, ll)
    assert paths.shape == (3 * N_PER_PROBLEM, case[1])
    for g, (*_, bf) in enumerate(probs):
        assert_path_frequencies(paths[g::3], k, bf["path_probs"])
    *_, paths_pd = posterior_draws(np.random.default_rng(7), li, lt, ll)
    np.testing.assert_array_equal(paths_pd, paths)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sample_paths_frequencies(case):
    """The single-parameter sampler (log-space pass) against the enumeration."""
    li, lt, ll, bf = problems(case, 1, seed=300 + 10 * case[0] + case[1])[0]
    paths = sample_paths(np.random.default_rng(11), li, lt, ll, n=N_PER_PROBLEM)
    assert paths.shape == (N_PER_PROBLEM, case[1])
    assert_path_frequencies(paths, case[0], bf["path_probs"])


# ----------------------------------------------------------------------------- switch probabilities


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_switch_probability_from_sampled_paths(case):
    """P(s_t != s_t-1 | y) estimated from FFBS paths agrees with the enumeration, for the
    single sampler and, per parameter set, for the batched one."""
    probs = problems(case, 3, seed=400 + 10 * case[0] + case[1])
    li, lt, ll, bf = probs[0]
    paths = sample_paths(np.random.default_rng(3), li, lt, ll, n=N_PER_PROBLEM)
    assert_switch(empirical_switch(paths), bf["switch"], N_PER_PROBLEM)
    li, lt, ll = interleave(probs, N_PER_PROBLEM)
    *_, paths = posterior_draws(np.random.default_rng(4), li, lt, ll)
    for g, (*_, bf) in enumerate(probs):
        assert_switch(empirical_switch(paths[g::3]), bf["switch"], N_PER_PROBLEM)


@pytest.mark.parametrize("case", [(2, 5, "static"), (3, 5, "tv")], ids=["K2-T5", "K3-T5-tv"])
def test_switch_prob_over_posterior_draws_like_markov_family(case):
    """The markov family's ``switch_prob``: one FFBS path per posterior draw, each draw with its
    own parameters, switches counted and divided by the number of draws. That estimates the
    posterior mean of P(s_t != s_t-1 | y, θ) over the draws; check it against the average of
    the per-draw exact values, with the standard error of a sum of independent Bernoullis."""
    n_draws = 40_000
    probs = problems(case, 50, seed=500 + case[0])
    rng = np.random.default_rng(5)
    which = rng.integers(0, len(probs), size=n_draws)  # an unbalanced mixture of θ's
    li, lt, ll = (np.stack([probs[g][i] for g in which]) for i in range(3))
    *_, paths = posterior_draws(rng, li, lt, ll)
    switches = np.zeros(case[1])
    switches[1:] += (paths[:, 1:] != paths[:, :-1]).sum(axis=0)
    switch_prob = switches / n_draws
    exact = np.stack([probs[g][3]["switch"] for g in which])  # (D, T)
    target = exact.mean(axis=0)
    se = np.sqrt((exact * (1 - exact)).sum(axis=0)) / n_draws
    assert np.all(np.abs(switch_prob - target) <= N_SE * se + 2 / n_draws), (
        switch_prob,
        target,
    )
    # the mixture matters: the per-draw values differ, so using one θ for all would not pass
    assert np.ptp(exact[:, 1:], axis=0).min() > 0.1
