"""Kalman filter kernels for Gaussian random-walk coefficients (numpy + PyTensor).

Pure, model-agnostic functions beside `regimes.hmm`: the linear-Gaussian state-space model of a
regression whose K coefficients drift as independent random walks,

    b_1 ~ N(m0, P0),
    b_{t+1} = b_t + N(0, diag(tau^2)),
    y_t = x_t'b_t + N(0, sigma^2),          t = 1..T,

with state b_t (K,), regressors x_t (K,), per-term step sds tau (K,; zero holds a term constant)
and observation noise sd sigma. The filter integrates the states out exactly.

Public names
------------
``kalman_filter``
    Filter many parameter draws at once (numpy): filtered means and covariances of b_t given
    y_1..t and the one-step-ahead log predictive densities log p(y_t | y_<t).
``pt_kalman_loglik``
    The same log predictive densities as a differentiable PyTensor graph (``pytensor.scan``), for
    use inside PyMC models; their sum is the marginal log-likelihood log p(y | tau, sigma).
``sample_states``
    Backward sampling (Carter-Kohn; forward-filter backward-sample with ``kalman_filter``): one
    state path per draw from p(b_1..T | y).
``mvn_rows``
    One draw per row from N(mean, cov), robust to (near-)singular covariances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# deferred to the functions that use them: PyTensor (docs/modules.md#imports)

if TYPE_CHECKING:
    from pytensor.tensor import TensorLike, TensorVariable

__all__ = ["kalman_filter", "mvn_rows", "pt_kalman_loglik", "sample_states"]


def _step_covariances(tau_full: np.ndarray) -> np.ndarray:
    """Per-draw state-innovation covariances diag(tau^2), (S, K, K) from tau_full (S, K)."""
    k = tau_full.shape[1]
    return tau_full[:, :, None] * np.eye(k)[None] * tau_full[:, None, :]


def pt_kalman_loglik(
    y: TensorLike,
    x: TensorLike,
    tau_full: TensorLike,
    sigma: TensorLike,
    m0: np.ndarray,
    p0: np.ndarray,
) -> TensorVariable:
    """One-step-ahead log predictive densities log p(y_t | y_<t) (T,), differentiable (scan)."""
    import pytensor
    import pytensor.tensor as pt

    q = pt.diag(pt.as_tensor(tau_full) ** 2)

    def step(y_t, x_t, m, p, q, sigma):
        px = pt.dot(p, x_t)
        f = pt.dot(x_t, px) + sigma**2
        v = y_t - pt.dot(x_t, m)
        gain = px / f
        p_next = p - pt.outer(gain, px) + q
        ll = -0.5 * (pt.log(2.0 * np.pi * f) + v**2 / f)
        return m + gain * v, 0.5 * (p_next + p_next.T), ll

    _, _, ll = pytensor.scan(
        step,
        sequences=[pt.as_tensor(y), pt.as_tensor(x)],
        outputs_info=[pt.as_tensor(m0), pt.as_tensor(p0), None],
        non_sequences=[q, sigma],
        strict=True,
        return_updates=False,
    )
    return ll


def kalman_filter(
    y: np.ndarray,
    x: np.ndarray,
    tau_full: np.ndarray,
    sigma: np.ndarray,
    m0: np.ndarray,
    p0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filter S draws at once: means (S, T, K), covariances (S, T, K, K), log p(y_t|y_<t) (S, T)."""
    s, (t_len, k) = len(sigma), x.shape
    q = _step_covariances(tau_full)
    m = np.broadcast_to(np.asarray(m0, dtype=float), (s, k)).copy()
    p = np.broadcast_to(np.asarray(p0, dtype=float), (s, k, k)).copy()
    means, covs, ll = np.empty((s, t_len, k)), np.empty((s, t_len, k, k)), np.empty((s, t_len))
    for t in range(t_len):
        px = p @ x[t]
        f = px @ x[t] + sigma**2
        v = y[t] - m @ x[t]
        gain = px / f[:, None]
        m = m + gain * v[:, None]
        p = p - gain[:, :, None] * px[:, None, :]
        p = 0.5 * (p + np.swapaxes(p, 1, 2))
        means[:, t], covs[:, t] = m, p
        ll[:, t] = -0.5 * (np.log(2.0 * np.pi * f) + v**2 / f)
        p = p + q
    return means, covs, ll


def mvn_rows(mean: np.ndarray, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row from N(mean, cov), (S, K), robust to (near-)singular covariances."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, 1, 2)))
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))[:, None, :]
    return mean + (root @ rng.standard_normal(mean.shape)[:, :, None])[:, :, 0]


def sample_states(
    means: np.ndarray, covs: np.ndarray, tau_full: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Backward sampling (Carter-Kohn) from `kalman_filter`'s output: one path per draw (S, T, K)."""
    t_len = means.shape[1]
    q = _step_covariances(tau_full)
    paths = np.empty_like(means)
    paths[:, -1] = mvn_rows(means[:, -1], covs[:, -1], rng)
    for t in range(t_len - 2, -1, -1):
        p = covs[:, t]
        gain = np.swapaxes(np.linalg.solve(p + q, p), 1, 2)  # P (P + Q)^-1, all symmetric
        mean = means[:, t] + (gain @ (paths[:, t + 1] - means[:, t])[:, :, None])[:, :, 0]
        paths[:, t] = mvn_rows(mean, p - gain @ p, rng)
    return paths
