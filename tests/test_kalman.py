"""Exact tests of the Kalman kernels against dense Gaussian algebra: the joint normal law of all
states and observations written out as one (T·K + T)-dimensional Gaussian and conditioned."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.stats import multivariate_normal

from regimes.kalman import kalman_filter, mvn_rows, pt_kalman_loglik, sample_states

RTOL = 1e-10

# (T, K, tau, sigma, P0 layout): zeros in tau hold a coefficient constant; "full" P0 correlates
# the first month's coefficients
CASES = [
    (1, 1, [0.4], 0.5, "diag"),
    (6, 1, [0.3], 0.2, "diag"),
    (7, 2, [0.3, 0.0], 0.5, "diag"),
    (5, 3, [0.0, 0.2, 0.0], 0.4, "full"),
    (6, 3, [0.5, 0.1, 0.25], 0.3, "full"),
    (4, 2, [0.0, 0.0], 0.6, "diag"),  # no drift at all: a static Bayesian regression
]
IDS = [f"T{t}-K{k}-tau{'_'.join(map(str, tau))}-{p0}" for t, k, tau, _, p0 in CASES]


def make_problem(t_len: int, k: int, tau, sigma: float, p0_layout: str, seed: int = 0):
    """Random regressors (intercept first), prior moments and data y drawn from the model."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(t_len), rng.normal(size=(t_len, k - 1))])
    m0 = rng.normal(scale=0.5, size=k)
    if p0_layout == "full":
        a = rng.normal(size=(k, k))
        p0 = a @ a.T / k + 0.2 * np.eye(k)
    else:
        p0 = np.diag(rng.uniform(0.3, 1.5, size=k))
    tau = np.asarray(tau, dtype=float)
    steps = rng.normal(size=(t_len, k)) * tau
    steps[0] = rng.multivariate_normal(m0, p0)
    b = np.cumsum(steps, axis=0)
    y = (x * b).sum(axis=1) + sigma * rng.normal(size=t_len)
    return y, x, tau, float(sigma), m0, p0


def dense(y, x, tau, sigma, m0, p0):
    """The exact reference: mean and covariance of y, and the posterior mean (T, K) and covariance
    (T·K, T·K) of the stacked states b_1..b_T given y, by conditioning the joint Gaussian."""
    t_len, k = x.shape
    q = np.diag(tau**2)
    # Cov(b_s, b_t) = P0 + min(s, t)·Q (0-based s, t): the walks share their first steps
    cov_b = np.block([[p0 + min(s, t) * q for t in range(t_len)] for s in range(t_len)])
    mean_b = np.tile(m0, t_len)
    h = np.zeros((t_len, t_len * k))  # y = H b + noise
    for t in range(t_len):
        h[t, t * k : (t + 1) * k] = x[t]
    mean_y = h @ mean_b
    cov_y = h @ cov_b @ h.T + sigma**2 * np.eye(t_len)
    gain = np.linalg.solve(cov_y, h @ cov_b).T
    post_mean = mean_b + gain @ (y - mean_y)
    post_cov = cov_b - gain @ h @ cov_b
    return mean_y, cov_y, post_mean.reshape(t_len, k), 0.5 * (post_cov + post_cov.T)


def dense_log_density(y, mean_y, cov_y, n: int) -> float:
    """log p(y_1..n) from the dense law (0 for n = 0)."""
    if n == 0:
        return 0.0
    return float(multivariate_normal(mean_y[:n], cov_y[:n, :n]).logpdf(y[:n]))


def filter_one(y, x, tau, sigma, m0, p0):
    """`kalman_filter` on a single parameter set: means (T, K), covs (T, K, K), ll (T,)."""
    means, covs, ll = kalman_filter(y, x, tau[None, :], np.array([sigma]), m0, p0)
    return means[0], covs[0], ll[0]


@pytest.fixture(params=CASES, ids=IDS)
def problem(request):
    return make_problem(*request.param, seed=len(request.param[2]) + request.param[0])


# ----------------------------------------------------------------------------- numpy filter


def test_filter_log_likelihood_is_the_exact_gaussian_density(problem):
    """Σ_t log p(y_t | y_<t) equals log N(y; E y, Cov y) of the dense T-variate law."""
    y, x, tau, sigma, m0, p0 = problem
    _, _, ll = filter_one(y, x, tau, sigma, m0, p0)
    mean_y, cov_y, _, _ = dense(y, x, tau, sigma, m0, p0)
    exact = multivariate_normal(mean_y, cov_y).logpdf(y)
    assert ll.shape == (len(y),)
    assert ll.sum() == pytest.approx(exact, rel=RTOL)


def test_one_step_predictive_densities_are_the_dense_conditionals(problem):
    """Each log p(y_t | y_<t) is log p(y_1..t) − log p(y_1..t−1) of the dense law, so they sum
    to the joint density; the filtered moments are those of b_t given y_1..t."""
    y, x, tau, sigma, m0, p0 = problem
    means, covs, ll = filter_one(y, x, tau, sigma, m0, p0)
    t_len, k = x.shape
    mean_y, cov_y, _, _ = dense(y, x, tau, sigma, m0, p0)
    prefix = np.array([dense_log_density(y, mean_y, cov_y, n) for n in range(t_len + 1)])
    np.testing.assert_allclose(ll, np.diff(prefix), rtol=RTOL, atol=1e-12)
    assert ll.sum() == pytest.approx(prefix[-1], rel=RTOL)
    for t in range(t_len):  # filtering = smoothing of the series cut after month t
        _, _, post_mean, post_cov = dense(y[: t + 1], x[: t + 1], tau, sigma, m0, p0)
        np.testing.assert_allclose(means[t], post_mean[t], rtol=1e-9, atol=1e-12)
        block = post_cov[t * k : (t + 1) * k, t * k : (t + 1) * k]
        np.testing.assert_allclose(covs[t], block, rtol=1e-9, atol=1e-12)


def test_filter_vectorises_over_draws():
    """S parameter sets filtered at once equal each one filtered alone."""
    y, x, _, _, m0, p0 = make_problem(9, 3, [0.1, 0.2, 0.3], 0.4, "full", seed=4)
    rng = np.random.default_rng(5)
    taus = rng.uniform(0.0, 0.5, size=(5, 3))
    taus[1, 2] = 0.0
    sigmas = rng.uniform(0.1, 1.0, size=5)
    means, covs, ll = kalman_filter(y, x, taus, sigmas, m0, p0)
    assert means.shape == (5, 9, 3) and covs.shape == (5, 9, 3, 3) and ll.shape == (5, 9)
    for s in range(5):
        one = filter_one(y, x, taus[s], sigmas[s], m0, p0)
        for got, ref in zip((means[s], covs[s], ll[s]), one, strict=True):
            np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-15)
        mean_y, cov_y, _, _ = dense(y, x, taus[s], sigmas[s], m0, p0)
        exact = multivariate_normal(mean_y, cov_y).logpdf(y)
        assert ll[s].sum() == pytest.approx(exact, rel=RTOL)


# ----------------------------------------------------------------------------- PyTensor

# JAX compiles this scan and its gradient in ~2 s; numba can take ~30 s on a cold cache
PT_MODE = next(
    (mode for mode, pkg in (("JAX", "jax"), ("NUMBA", "numba")) if importlib.util.find_spec(pkg)),
    None,
)
PT_CASES = [CASES[2], CASES[3], CASES[4]]


def _np_total(y, x, tau, sigma, m0, p0) -> float:
    return float(filter_one(y, x, tau, sigma, m0, p0)[2].sum())


@pytest.mark.parametrize("case", PT_CASES, ids=[IDS[CASES.index(c)] for c in PT_CASES])
def test_pytensor_loglik_matches_numpy_and_finite_differences(case):
    y, x, tau, sigma, m0, p0 = make_problem(*case, seed=3)
    k = x.shape[1]
    tau_v = pt.vector("tau", shape=(k,))  # static shapes: JAX traces scan only with them
    sigma_v = pt.scalar("sigma")
    ll = pt_kalman_loglik(y, x, tau_v, sigma_v, m0, p0)
    grads = pytensor.grad(ll.sum(), [tau_v, sigma_v])
    fn = pytensor.function([tau_v, sigma_v], [ll, *grads], mode=PT_MODE)
    # evaluate away from zero steps too: d/dτ of a τ² term is 0 at τ = 0 whatever the data
    for tau_at in (tau, tau + 0.15):
        got_ll, g_tau, g_sigma = fn(tau_at, sigma)
        _, _, ref = filter_one(y, x, tau_at, sigma, m0, p0)
        np.testing.assert_allclose(got_ll, ref, rtol=RTOL, atol=1e-12)
        eps = 1e-6
        fd_tau = np.zeros(k)
        for j in range(k):
            up, down = tau_at.copy(), tau_at.copy()
            up[j] += eps
            down[j] -= eps
            fd_tau[j] = (
                _np_total(y, x, up, sigma, m0, p0) - _np_total(y, x, down, sigma, m0, p0)
            ) / (2 * eps)
        fd_sigma = (
            _np_total(y, x, tau_at, sigma + eps, m0, p0)
            - _np_total(y, x, tau_at, sigma - eps, m0, p0)
        ) / (2 * eps)
        assert np.all(np.isfinite(g_tau))
        np.testing.assert_allclose(g_tau, fd_tau, rtol=1e-6, atol=1e-7)
        assert g_sigma == pytest.approx(fd_sigma, rel=1e-6, abs=1e-7)


# ----------------------------------------------------------------------------- backward sampling

FFBS_CASES = [
    (6, 2, [0.4, 0.2], 0.3, "diag"),
    (5, 3, [0.3, 0.0, 0.15], 0.4, "full"),
]


@pytest.mark.parametrize("case", FFBS_CASES, ids=["T6-K2", "T5-K3-one-constant"])
def test_backward_sampling_draws_the_smoothing_distribution(case):
    """Mean and covariance of 40000 sampled paths sit within 5 Monte Carlo standard errors of
    the exact smoothing law: se(mean_i) = √(Σ_ii/S), se(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²)/S)
    for Gaussian draws; over ~100 entries a 5-SE miss has probability < 1e-4."""
    y, x, tau, sigma, m0, p0 = make_problem(*case, seed=1)
    t_len, k = x.shape
    s = 40_000
    tau_s = np.broadcast_to(tau, (s, k))
    means, covs, _ = kalman_filter(y, x, tau_s, np.full(s, sigma), m0, p0)
    paths = sample_states(means, covs, tau_s, np.random.default_rng(2))
    assert paths.shape == (s, t_len, k)
    _, _, post_mean, post_cov = dense(y, x, tau, sigma, m0, p0)
    var = np.diag(post_cov)
    mean_err = paths.mean(axis=0).ravel() - post_mean.ravel()
    assert np.all(np.abs(mean_err) < 5 * np.sqrt(var / s)), np.max(np.abs(mean_err))
    emp = np.cov(paths.reshape(s, -1), rowvar=False)
    se_cov = np.sqrt((np.outer(var, var) + post_cov**2) / s)
    assert np.all(np.abs(emp - post_cov) < 5 * se_cov), np.max(np.abs(emp - post_cov) / se_cov)
    # jointly: whitened by the exact law (on its range; τ = 0 makes it singular), the paths'
    # squared norms average the rank d with sd √(2d/S), far finer than entry by entry
    vals, vecs = np.linalg.eigh(post_cov)
    keep = vals > 1e-9 * vals.max()
    z = (paths.reshape(s, -1) - post_mean.ravel()) @ vecs[:, keep] / np.sqrt(vals[keep])
    d = int(keep.sum())
    chi2 = (z**2).sum(axis=1).mean()
    assert abs(chi2 - d) < 5 * np.sqrt(2 * d / s), (chi2, d)
    # a term with τ = 0 is one constant per path
    for j in np.flatnonzero(tau == 0):
        np.testing.assert_allclose(paths[:, :, j], paths[:, :1, j].repeat(t_len, 1), atol=1e-8)


def test_backward_sampling_is_reproducible_and_seed_sensitive():
    y, x, tau, sigma, m0, p0 = make_problem(6, 2, [0.4, 0.2], 0.3, "diag", seed=1)
    tau_s = np.broadcast_to(tau, (20, 2))
    means, covs, _ = kalman_filter(y, x, tau_s, np.full(20, sigma), m0, p0)
    a, b, c = (sample_states(means, covs, tau_s, np.random.default_rng(seed)) for seed in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mvn_rows_handles_singular_covariances():
    """Rows with a rank-deficient covariance are drawn inside its range, with the right moments."""
    s = 40_000
    cov = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 0.0]])  # rank 1
    mean = np.array([1.0, -1.0, 3.0])
    draws = mvn_rows(
        np.tile(mean, (s, 1)), np.broadcast_to(cov, (s, 3, 3)), np.random.default_rng(0)
    )
    np.testing.assert_allclose(draws[:, 1] - mean[1], 2.0 * (draws[:, 0] - mean[0]), atol=1e-9)
    np.testing.assert_allclose(draws[:, 2], 3.0, atol=1e-12)
    assert abs(draws[:, 0].mean() - 1.0) < 5 / np.sqrt(s)
    assert abs(draws[:, 0].var() - 1.0) < 5 * np.sqrt(2.0 / s)
