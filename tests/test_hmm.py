"""Exact tests of the HMM kernels against brute-force enumeration of all K**T regime paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from regimes.families.chain.space import state_space
from regimes.hmm import (
    expected_durations,
    filter_draws,
    forward_filter,
    posterior_passes,
    pt_forward_log_marginal,
    sample_paths,
    smooth,
    smooth_draws,
    stationary_distribution,
    viterbi,
)

RTOL = 1e-10
ATOL = 1e-12

# (K, T, transition layout): "static" (K,K), "tv" (T-1,K,K), "tvT" (T,K,K) with last slice unused
CASES = [
    (2, 4, "static"),
    (2, 6, "static"),
    (3, 5, "static"),
    (2, 5, "tv"),
    (3, 4, "tv"),
    (3, 6, "tv"),
    (2, 5, "tvT"),
    (3, 4, "tvT"),
]


def make_problem(k: int, t_len: int, layout: str, seed: int = 0):
    """Random positive HMM parameters in log space: log_init, log_trans, log_lik, used (T-1,K,K)."""
    rng = np.random.default_rng(seed)
    log_init = np.log(rng.dirichlet(np.ones(k)))
    log_lik = 1.5 * rng.normal(size=(t_len, k))
    if layout == "static":
        log_trans = np.log(rng.dirichlet(np.ones(k), size=k))
        used = np.broadcast_to(log_trans, (t_len - 1, k, k))
    elif layout == "tv":
        log_trans = np.log(rng.dirichlet(np.ones(k), size=(t_len - 1, k)))
        used = log_trans
    else:
        log_trans = np.log(rng.dirichlet(np.ones(k), size=(t_len, k)))
        used = log_trans[: t_len - 1]
    return log_init, log_trans, log_lik, np.asarray(used)


def lse(a: np.ndarray) -> float:
    """Plain log-sum-exp over all entries."""
    m = np.max(a)
    return float(m + np.log(np.sum(np.exp(a - m))))


def prefix_joint(log_init, used, log_lik, n: int):
    """All K**n prefixes s_0..s_{n-1} and log p(s_0..n-1, y_0..n-1) for each."""
    k = log_init.shape[0]
    paths = np.array(list(itertools.product(range(k), repeat=n)), dtype=int)
    lj = log_init[paths[:, 0]] + log_lik[0, paths[:, 0]]
    for t in range(1, n):
        lj = lj + used[t - 1, paths[:, t - 1], paths[:, t]] + log_lik[t, paths[:, t]]
    return paths, lj


def brute_force(log_init, used, log_lik):
    """Every filter/smoother quantity computed by enumerating regime paths."""
    t_len, k = log_lik.shape
    log_z = np.empty(t_len)
    filtered = np.zeros((t_len, k))
    predicted = np.zeros((t_len, k))
    for t in range(t_len):
        paths, lj = prefix_joint(log_init, used, log_lik, t + 1)
        log_z[t] = lse(lj)
        prev_z = log_z[t - 1] if t > 0 else 0.0
        last = paths[:, -1]
        no_last_lik = lj - log_lik[t, last]
        for j in range(k):
            filtered[t, j] = np.exp(lj[last == j] - log_z[t]).sum()
            predicted[t, j] = np.exp(no_last_lik[last == j] - prev_z).sum()
    paths, lj = prefix_joint(log_init, used, log_lik, t_len)
    post = np.exp(lj - log_z[-1])
    smoothed = np.stack([[post[paths[:, t] == j].sum() for j in range(k)] for t in range(t_len)])
    log_pred = np.diff(np.concatenate([[0.0], log_z]))
    return {
        "log_marginal": log_z[-1],
        "log_pred": log_pred,
        "filtered": filtered,
        "predicted": predicted,
        "smoothed": smoothed,
        "viterbi": paths[np.argmax(lj)],
        "paths": paths,
        "path_probs": post,
    }


@pytest.fixture(scope="module", params=CASES, ids=[f"K{k}-T{t}-{lay}" for k, t, lay in CASES])
def problem(request):
    k, t_len, layout = request.param
    log_init, log_trans, log_lik, used = make_problem(k, t_len, layout, seed=10 * k + t_len)
    return log_init, log_trans, log_lik, brute_force(log_init, used, log_lik)


# ----------------------------------------------------------------------------- exact numpy tests


def test_forward_filter_matches_brute_force(problem):
    log_init, log_trans, log_lik, bf = problem
    res = forward_filter(log_init, log_trans, log_lik)
    assert isinstance(res.log_marginal, float)
    np.testing.assert_allclose(res.log_marginal, bf["log_marginal"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.log_pred, bf["log_pred"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.log_pred.sum(), res.log_marginal, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.filtered, bf["filtered"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.predicted, bf["predicted"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.predicted[0], np.exp(log_init), rtol=RTOL, atol=ATOL)


def test_smooth_matches_brute_force(problem):
    log_init, log_trans, log_lik, bf = problem
    sm = smooth(log_init, log_trans, log_lik)
    np.testing.assert_allclose(sm, bf["smoothed"], rtol=RTOL, atol=ATOL)
    # the last smoothed marginal is the last filtered one
    np.testing.assert_allclose(sm[-1], bf["filtered"][-1], rtol=RTOL, atol=ATOL)


def test_viterbi_matches_brute_force(problem):
    log_init, log_trans, log_lik, bf = problem
    path = viterbi(log_init, log_trans, log_lik)
    assert path.dtype.kind == "i"
    np.testing.assert_array_equal(path, bf["viterbi"])


@pytest.mark.parametrize("case", [(2, 5, "static"), (3, 4, "tv")])
def test_ffbs_path_frequencies(case):
    """Empirical path frequencies from 20000 FFBS draws sit within 5 binomial SEs of the truth.

    Each path count is Binomial(n, p); |freq - p| <= 5 sqrt(p(1-p)/n) + 2/n fails with
    probability < 1e-4 for all paths together (the 2/n covers the Poisson regime of tiny p).
    """
    k, t_len, layout = case
    log_init, log_trans, log_lik, used = make_problem(k, t_len, layout, seed=7)
    bf = brute_force(log_init, used, log_lik)
    n = 20_000
    draws = sample_paths(np.random.default_rng(123), log_init, log_trans, log_lik, n=n)
    assert draws.shape == (n, t_len)
    codes = draws @ (k ** np.arange(t_len - 1, -1, -1))  # same order as itertools.product
    freq = np.bincount(codes, minlength=k**t_len) / n
    p = bf["path_probs"]
    bound = 5 * np.sqrt(p * (1 - p) / n) + 2 / n
    assert np.all(np.abs(freq - p) <= bound), np.max(np.abs(freq - p) / bound)
    # and the implied smoothed marginals agree with the exact ones to ~5 SE
    emp = np.stack([(draws == j).mean(axis=0) for j in range(k)], axis=1)
    np.testing.assert_allclose(emp, bf["smoothed"], atol=5 * np.sqrt(0.25 / n))


def test_ffbs_reproducible_and_seed_sensitive():
    log_init, log_trans, log_lik, _ = make_problem(3, 6, "tv")
    a = sample_paths(1, log_init, log_trans, log_lik, n=50)
    b = sample_paths(1, log_init, log_trans, log_lik, n=50)
    c = sample_paths(2, log_init, log_trans, log_lik, n=50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_last_slice_of_T_layout_is_ignored():
    log_init, log_trans, log_lik, _ = make_problem(3, 6, "tvT")
    other = log_trans.copy()
    other[-1] = np.log(np.full((3, 3), 1 / 3))
    for fn in (smooth, viterbi):
        np.testing.assert_array_equal(
            fn(log_init, log_trans, log_lik), fn(log_init, other, log_lik)
        )
    np.testing.assert_array_equal(
        smooth(log_init, log_trans, log_lik), smooth(log_init, log_trans[:-1], log_lik)
    )


def test_single_observation():
    log_init = np.log([0.3, 0.7])
    log_lik = np.array([[-1.0, -2.0]])
    res = forward_filter(log_init, np.log([[0.9, 0.1], [0.2, 0.8]]), log_lik)
    expected = np.log(0.3 * np.exp(-1.0) + 0.7 * np.exp(-2.0))
    np.testing.assert_allclose(res.log_marginal, expected, rtol=RTOL)
    np.testing.assert_allclose(
        smooth(log_init, np.zeros((0, 2, 2)), log_lik), res.filtered, rtol=RTOL
    )


# ----------------------------------------------------------------------------- stability


def test_stability_long_series_extreme_loglik():
    rng = np.random.default_rng(3)
    t_len, k = 5000, 3
    P = np.array([[0.98, 0.02, 0.0], [0.01, 0.98, 0.01], [0.0, 0.03, 0.97]])
    with np.errstate(divide="ignore"):
        log_trans = np.log(P)  # forbidden transitions are -inf
    log_init = np.log(stationary_distribution(P))
    base = 5.0 * rng.normal(size=(t_len, k))
    log_lik = base - 1000.0

    res = forward_filter(log_init, log_trans, log_lik)
    sm = smooth(log_init, log_trans, log_lik)
    assert np.isfinite(res.log_marginal)
    assert np.all(np.isfinite(res.log_pred))
    assert np.all(np.isfinite(res.filtered)) and np.all(np.isfinite(sm))
    np.testing.assert_allclose(res.filtered.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(sm.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.log_pred.sum(), res.log_marginal, rtol=1e-12)
    assert res.log_marginal < -1000.0 * t_len + 5 * np.abs(base).sum()

    # shifting every log-likelihood by c shifts log p(y) by T*c and leaves the posterior alone
    ref = forward_filter(log_init, log_trans, base)
    np.testing.assert_allclose(res.log_marginal, ref.log_marginal - 1000.0 * t_len, rtol=1e-12)
    np.testing.assert_allclose(sm, smooth(log_init, log_trans, base), atol=1e-9)

    # decoded and sampled paths never use a forbidden (probability-zero) transition
    path = viterbi(log_init, log_trans, log_lik)
    draws = sample_paths(0, log_init, log_trans, log_lik, n=20)
    for p in (path, *draws):
        assert np.all(P[p[:-1], p[1:]] > 0)


def test_impossible_state_gets_zero_probability():
    log_init, log_trans, log_lik, _ = make_problem(3, 6, "tv")
    log_lik = log_lik.copy()
    log_lik[2, 1] = -np.inf
    res = forward_filter(log_init, log_trans, log_lik)
    sm = smooth(log_init, log_trans, log_lik)
    assert np.isfinite(res.log_marginal)
    assert res.filtered[2, 1] == 0.0 and sm[2, 1] == 0.0
    assert np.all(np.isfinite(sm))
    assert viterbi(log_init, log_trans, log_lik)[2] != 1
    assert np.all(sample_paths(0, log_init, log_trans, log_lik, n=200)[:, 2] != 1)


# ----------------------------------------------------------------------------- batched helpers


@pytest.mark.parametrize("layout", ["static", "tv", "tvT"])
def test_batched_equals_per_draw(layout):
    d, t_len, k = 6, 40, 3
    probs = [make_problem(k, t_len, layout, seed=s) for s in range(d)]
    li = np.stack([p[0] for p in probs])
    lt = np.stack([p[1] for p in probs])
    ll = np.stack([p[2] for p in probs])
    sm = smooth_draws(li, lt, ll)
    fr = filter_draws(li, lt, ll)
    assert sm.shape == (d, t_len, k)
    for i in range(d):
        np.testing.assert_allclose(sm[i], smooth(li[i], lt[i], ll[i]), rtol=1e-13, atol=1e-15)
        one = forward_filter(li[i], lt[i], ll[i])
        np.testing.assert_allclose(fr.log_marginal[i], one.log_marginal, rtol=1e-13)
        np.testing.assert_allclose(fr.log_pred[i], one.log_pred, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(fr.filtered[i], one.filtered, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(fr.predicted[i], one.predicted, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- chain summaries


def test_stationary_distribution_and_durations():
    P = np.array([[0.9, 0.1, 0.0], [0.05, 0.9, 0.05], [0.2, 0.0, 0.8]])
    pi = stationary_distribution(P)
    np.testing.assert_allclose(pi @ P, pi, atol=1e-13)
    np.testing.assert_allclose(pi.sum(), 1.0, rtol=1e-13)
    np.testing.assert_allclose(pi, np.linalg.matrix_power(P, 2000)[0], atol=1e-12)
    np.testing.assert_allclose(expected_durations(P), [10.0, 10.0, 5.0], rtol=1e-12)
    absorbing = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(stationary_distribution(absorbing), [1.0, 0.0], atol=1e-13)
    assert np.isinf(expected_durations(absorbing)[0])


def test_shape_validation():
    log_init, log_trans, log_lik, _ = make_problem(2, 5, "tv")
    with pytest.raises(ValueError, match="log_trans"):
        smooth(log_init, log_trans[:-1], log_lik)
    with pytest.raises(ValueError, match="log_init"):
        forward_filter(np.zeros(3), log_trans, log_lik)
    with pytest.raises(ValueError, match="log_lik"):
        viterbi(log_init, log_trans, log_lik[0])
    with pytest.raises(ValueError, match="square"):
        stationary_distribution(np.ones((2, 3)))


# ----------------------------------------------------------------------------- PyTensor

PT_K, PT_T = 3, 12


class _Compiled(dict):
    """(log p(y), log_pred, grads) per transition layout and backend, compiled on first use:
    each xdist worker compiles only what its tests call. "default" is PyTensor's default backend
    (numba in PyTensor 2.3x: what PyMC's own NUTS sampler, `backend = "pymc"`, compiles with)."""

    def __missing__(self, key: tuple[str, str]):
        layout, mode = key
        if mode == "default":  # unknown lengths: one function serves (T-1,K,K) and (T,K,K)
            a = pt.vector("li", shape=(PT_K,))
            c = pt.matrix("ll", shape=(None, PT_K))
            shape = (PT_K, PT_K) if layout == "static" else (None, PT_K, PT_K)
            b = pt.tensor("lt", shape=shape, dtype="float64")
        else:  # JAX needs static shapes to trace scan (PyMC's JAX samplers provide them)
            a = pt.vector("li", shape=(PT_K,))
            c = pt.matrix("ll", shape=(PT_T, PT_K))
            shape = (PT_K, PT_K) if layout == "static" else (PT_T - 1, PT_K, PT_K)
            b = pt.tensor("lt", shape=shape, dtype="float64")
        lm, lp = pt_forward_log_marginal(a, b, c)
        grads = pytensor.grad(lm, [a, b, c])
        fn = pytensor.function(
            [a, b, c], [lm, lp, *grads], mode=None if mode == "default" else "JAX"
        )
        self[key] = fn
        return fn


@pytest.fixture(scope="module")
def pt_functions() -> _Compiled:
    """Compile (log p(y), log_pred, grads) once per transition layout and backend."""
    return _Compiled()


def _np_log_marginal(li, lt, ll):
    return forward_filter(li, lt, ll).log_marginal


def _finite_difference(li, lt, ll, eps=1e-6):
    """Central differences of the numpy log marginal w.r.t. every input entry."""
    args = [li.copy(), lt.copy(), ll.copy()]
    out = []
    for arg in args:
        g = np.zeros_like(arg)
        for idx in np.ndindex(arg.shape):
            orig = arg[idx]
            arg[idx] = orig + eps
            up = _np_log_marginal(*args)
            arg[idx] = orig - eps
            down = _np_log_marginal(*args)
            arg[idx] = orig
            g[idx] = (up - down) / (2 * eps)
        out.append(g)
    return out


# the default backend (numba) takes 30 s to compile the forward scan and about three minutes with
# its gradient on a cold cache (as in CI: 125 s there): those cases run with the validation marker.
# JAX, the backend every sampler of the project uses by default, runs in CI for every layout.
DEFAULT_SLOW = pytest.mark.validation


@pytest.mark.parametrize(
    ("layout", "mode"),
    [
        pytest.param("static", "default", marks=DEFAULT_SLOW),
        pytest.param("tv", "default", marks=DEFAULT_SLOW),
        ("static", "JAX"),
        ("tv", "JAX"),
    ],
)
def test_pytensor_matches_numpy_and_finite_differences(pt_functions, layout, mode):
    li, lt, ll, _ = make_problem(PT_K, PT_T, layout, seed=5)
    lm, lp, *grads = pt_functions[layout, mode](li, lt, ll)
    ref = forward_filter(li, lt, ll)
    np.testing.assert_allclose(lm, ref.log_marginal, rtol=0, atol=1e-8)
    np.testing.assert_allclose(lp, ref.log_pred, rtol=0, atol=1e-8)
    fd = _finite_difference(li, lt, ll)
    for g, g_fd in zip(grads, fd, strict=True):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-7)
    # d log p(y) / d log_lik[t, k] is the smoothed probability p(s_t = k | y)
    np.testing.assert_allclose(grads[2], smooth(li, lt, ll), atol=1e-10)


@DEFAULT_SLOW
def test_pytensor_T_layout_and_longer_series(pt_functions):
    """The default-backend function has unknown lengths: a (T,K,K) input and a longer series also match."""
    li, lt, ll, _ = make_problem(PT_K, 200, "tvT", seed=8)
    lm, lp, *_ = pt_functions["tv", "default"](li, lt, ll)
    ref = forward_filter(li, lt, ll)
    np.testing.assert_allclose(lm, ref.log_marginal, rtol=0, atol=1e-8)
    np.testing.assert_allclose(lp, ref.log_pred, rtol=0, atol=1e-8)
    li, lt, ll, _ = make_problem(PT_K, 200, "static", seed=8)
    lm, lp, *_ = pt_functions["static", "default"](li, lt, ll - 1000.0)
    ref = forward_filter(li, lt, ll - 1000.0)
    np.testing.assert_allclose(lm, ref.log_marginal, rtol=1e-14)
    np.testing.assert_allclose(lp, ref.log_pred, rtol=0, atol=1e-8)


def test_pytensor_rejects_bad_ndim():
    with pytest.raises(ValueError, match="log_trans"):
        pt_forward_log_marginal(pt.vector(), pt.vector(), pt.matrix())


def test_pytensor_needs_the_number_of_states_as_a_static_shape():
    """The recursion runs state by state: an unknown state count is refused, naming the shape."""
    with pytest.raises(ValueError, match="static shape of log_lik"):
        pt_forward_log_marginal(pt.vector(), pt.matrix(), pt.matrix())


def _jax_forward(k: int, t_len: int):
    """(log p(y), log_pred, grad wrt log_lik) of the JAX-compiled forward pass, static shapes."""
    a = pt.vector("li", shape=(k,))
    b = pt.matrix("lt", shape=(k, k))
    c = pt.matrix("ll", shape=(t_len, k))
    lm, lp = pt_forward_log_marginal(a, b, c)
    return pytensor.function([a, b, c], [lm, lp, pytensor.grad(lm, c)], mode="JAX")


def test_pytensor_change_point_with_months_hundreds_of_nats_apart():
    """A change point (regime 1 absorbing: log P[1, 0] = −inf, the initial state certain) with
    months whose states' densities lie up to 600 nats apart: values, and the gradient (the
    smoothed probabilities), as the numpy reference."""
    t_len = 40
    rng = np.random.default_rng(4)
    li = np.array([0.0, -np.inf])
    lt = np.array([[np.log(0.97), np.log(0.03)], [-np.inf, 0.0]])
    ll = rng.normal(size=(t_len, 2)) * 5.0
    ll[:15, 1] -= 600.0  # early months rule regime 1 out, later ones regime 0
    ll[25:, 0] -= 600.0
    lm, lp, g = _jax_forward(2, t_len)(li, lt, ll)
    ref = forward_filter(li, lt, ll)
    np.testing.assert_allclose(lm, ref.log_marginal, rtol=1e-12)
    np.testing.assert_allclose(lp, ref.log_pred, rtol=0, atol=1e-8)
    np.testing.assert_allclose(g, smooth(li, lt, ll), atol=1e-10)


def test_pytensor_is_exact_where_a_ruled_out_state_returns():
    """A state ruled out by 2400 nats under an absorbing regime (its filtered probability far
    below the smallest double), then favoured by 900 nats in one month: the log-space recursion
    keeps the exact value (a probability-space one reads −inf there, and a multi-start from such
    a prior draw then fails to climb)."""
    t_len = 12
    li = np.array([0.0, np.log(1e-300)])
    lt = np.array([[np.log(0.5), np.log(0.5)], [-np.inf, 0.0]])
    ll = np.zeros((t_len, 2))
    ll[1:4, 0] = -800.0  # regime 0 ruled out, and regime 1 absorbing
    ll[6, 1] = -900.0  # then one month favours regime 0 by 900 nats
    lm, lp, g = _jax_forward(2, t_len)(li, lt, ll)
    exact = forward_filter(li, lt, ll)
    np.testing.assert_allclose(lm, exact.log_marginal, rtol=1e-12)
    np.testing.assert_allclose(lp, exact.log_pred, rtol=0, atol=1e-8)
    assert np.all(np.isfinite(g))


def _expand(log_trans: np.ndarray, k: int, p: int) -> np.ndarray:
    """The dense (…, J, J) matrix of the lag-expanded chain (s_t..s_{t-p}) on the markov family's
    state space, -inf where a move is inconsistent: the reference for ``lags=p``."""
    space = state_space(k, p)
    moved = log_trans[..., space.lags[:, 1], space.lags[:, 0]]  # (..., J) log P[s_t, s_{t+1}]
    return np.where(space.allowed, moved[..., None, :], -np.inf)


# JAX (the sampler's backend) for every layout; the slow-compiling default backend (numba) for
# one, in the validation runs
LAGGED_CASES = [
    pytest.param(2, 2, "static", "default", marks=DEFAULT_SLOW),
    *[(*case, "JAX") for case in [(2, 2, "static"), (3, 1, "tv"), (2, 3, "tvT")]],
]


@pytest.mark.parametrize(("k", "p", "layout", "mode"), LAGGED_CASES)
def test_lagged_forward_matches_dense_expansion(k, p, layout, mode):
    """``lags=p`` on the K-regime matrix equals the dense K^(p+1)-state forward pass, values and
    gradients (the MS-AR likelihood uses the structured form, post-processing the dense one)."""
    t_len, j = 9, k ** (p + 1)
    rng = np.random.default_rng(11)
    _, lt, _, _ = make_problem(k, t_len, layout, seed=3)
    li = np.log(rng.dirichlet(np.ones(j)))
    ll = 1.5 * rng.normal(size=(t_len, j))
    a = pt.vector("li", shape=(j,))
    b = pt.tensor("lt", shape=lt.shape, dtype="float64")
    c = pt.matrix("ll", shape=(t_len, j))
    lm, lp = pt_forward_log_marginal(a, b, c, lags=p)
    fn = pytensor.function(
        [a, b, c], [lm, lp, *pytensor.grad(lm, [b, c])], mode=None if mode == "default" else "JAX"
    )
    got_lm, got_lp, g_lt, g_ll = fn(li, lt, ll)
    ref = forward_filter(li, _expand(lt, k, p), ll)
    np.testing.assert_allclose(got_lm, ref.log_marginal, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got_lp, ref.log_pred, rtol=0, atol=1e-10)
    np.testing.assert_allclose(g_ll, smooth(li, _expand(lt, k, p), ll), atol=1e-10)
    eps, g_fd = 1e-6, np.zeros_like(lt)
    for idx in np.ndindex(lt.shape):
        up, down = lt.copy(), lt.copy()
        up[idx] += eps
        down[idx] -= eps
        diff = _np_log_marginal(li, _expand(up, k, p), ll) - _np_log_marginal(
            li, _expand(down, k, p), ll
        )
        g_fd[idx] = diff / (2 * eps)
    np.testing.assert_allclose(g_lt, g_fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("layout", ["static", "tv"])
def test_pytensor_vector_recursion_matches_numpy(monkeypatch, layout):
    """Above `SCALAR_STATES` states the recursion runs on one vector (the lagged states of an
    MS-AR(p)); forced here for K = 3: values and gradients as the numpy reference."""
    import regimes.hmm as hmm_module

    monkeypatch.setattr(hmm_module, "SCALAR_STATES", 0)
    li, lt, ll, _ = make_problem(PT_K, PT_T, layout, seed=6)
    a = pt.vector("li", shape=(PT_K,))
    b = pt.tensor("lt", shape=lt.shape, dtype="float64")
    c = pt.matrix("ll", shape=(PT_T, PT_K))
    lm, lp = pt_forward_log_marginal(a, b, c)
    fn = pytensor.function([a, b, c], [lm, lp, pytensor.grad(lm, c)], mode="JAX")
    got_lm, got_lp, g_ll = fn(li, lt, ll)
    ref = forward_filter(li, lt, ll)
    np.testing.assert_allclose(got_lm, ref.log_marginal, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got_lp, ref.log_pred, rtol=0, atol=1e-8)
    np.testing.assert_allclose(g_ll, smooth(li, lt, ll), atol=1e-10)


@pytest.mark.parametrize(("k", "p", "static"), [(2, 2, False), (3, 1, False), (2, 3, True)])
def test_lagged_passes_match_the_dense_expanded_chain(k: int, p: int, static: bool) -> None:
    """The passes on lag-expanded states from the K-regime matrices (O(J K) a step) give what
    the dense (J, J) expansion of the same chain gives: filtered, predicted and smoothed
    probabilities, one-step densities and the FFBS paths of the same seed."""
    rng = np.random.default_rng(k * 10 + p)
    d, t_len = 5, 40
    space = state_space(k, p)
    j = space.n_states
    shape = (d, k) if static else (d, t_len - 1, k)
    log_p = np.log(rng.dirichlet(np.ones(k) * 0.7, size=shape))  # (..., K, K) rows
    log_init = np.log(rng.dirichlet(np.ones(j), size=d))
    log_lik = rng.normal(scale=2.0, size=(d, t_len, j))
    dense = posterior_passes(3, log_init, space.dense_log_trans(log_p), log_lik)
    lagged = posterior_passes(3, log_init, log_p, log_lik, lags=p)
    for name in ("log_pred", "filtered", "predicted", "smoothed"):
        np.testing.assert_allclose(getattr(lagged, name), getattr(dense, name), rtol=1e-10)
    np.testing.assert_array_equal(lagged.paths, dense.paths)
    assert np.all(space.allowed[lagged.paths[:, :-1], lagged.paths[:, 1:]])  # consistent lags
    with pytest.raises(ValueError, match="not the K"):
        posterior_passes(3, log_init[:, :-1], log_p, log_lik[..., :-1], lags=p)


@pytest.mark.parametrize("k", [2, 3])
def test_a_left_to_right_filter_sums_over_the_allowed_moves_only(k: int) -> None:
    """With `allowed`, the state-by-state recursion skips the moves a left-to-right chain
    cannot make: the same log p(y), log_pred and gradient as summing their −inf terms; a mask
    that drops a possible move changes the answer (the mask is what the recursion reads)."""
    from regimes.families.chain.transitions import forward_moves

    rng = np.random.default_rng(k)
    t_len = 12
    stay = rng.uniform(0.6, 0.95, size=(t_len - 1, k))
    log_trans = np.full((t_len - 1, k, k), -np.inf)
    for i in range(k):
        log_trans[:, i, i] = np.log(stay[:, i]) if i < k - 1 else 0.0
        if i < k - 1:
            log_trans[:, i, i + 1] = np.log1p(-stay[:, i])
    log_init = np.log(np.r_[1.0 - 1e-12 * (k - 1), np.full(k - 1, 1e-12)])
    log_lik = rng.normal(size=(t_len, k))
    a, b = pt.vector("li", shape=(k,)), pt.tensor3("lt", shape=(t_len - 1, k, k))
    c = pt.matrix("ll", shape=(t_len, k))

    def compiled(allowed):
        lm, lp = pt_forward_log_marginal(a, b, c, allowed=allowed)
        outputs = [lm, lp, pytensor.grad(lm, c)]
        return pytensor.function([a, b, c], outputs, mode="FAST_COMPILE")  # no C compilation

    every = compiled(None)(log_init, log_trans, log_lik)
    masked = compiled(forward_moves(k))(log_init, log_trans, log_lik)
    for x, y in zip(every, masked, strict=True):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(every[0], forward_filter(log_init, log_trans, log_lik).log_marginal)
    no_stay = forward_moves(k) & ~np.eye(k, dtype=bool)
    no_stay[0, 0] = True  # the first regime stays reachable
    dropped = compiled(no_stay)(log_init, log_trans, log_lik)
    assert not np.isclose(dropped[0], every[0])
    with pytest.raises(ValueError, match="allowed must be"):
        pt_forward_log_marginal(a, b, c, allowed=np.ones((k + 1, k + 1), dtype=bool))
