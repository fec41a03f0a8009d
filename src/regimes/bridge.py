"""The posterior mass of one mode, by bridge sampling (Meng & Wong 1996; Gronau et al. 2017).

Chains that stay in separate modes cannot say how much posterior mass each mode holds; stacking
(`regimes.modes.stack`) weighs modes by how well they predict, which is not their mass. Bridge
sampling estimates each mode's integral Z_k = ∫_{mode k} p(θ) p(y | θ) dθ from that mode's own
draws and draws of a normal fitted to them: with l(θ) = log p(θ, y) − log g(θ), the fixed point
of Meng & Wong's iteration

    r = mean_j[ e^{l2_j} / (s1 e^{l2_j} + s2 r) ] / mean_i[ 1 / (s1 e^{l1_i} + s2 r) ]

(l1 at the posterior draws, l2 at the normal's draws, s1 + s2 = 1 their shares) is Z_k. The
normal is fitted to one half of the posterior draws and the iteration uses the other half, so
the proposal does not fit the draws it is tested on. The mode weights are then Z_k / Σ Z.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# deferred to the functions that use them: SciPy (docs/modules.md#imports)

TOLERANCE = 1e-10  # on log r between iterations
MAX_ITERATIONS = 1000


@dataclass(frozen=True)
class BridgeEstimate:
    """log Z of one mode, with the relative standard error the estimator's variance gives."""

    log_mass: float
    relative_error: float  # sd(Ẑ)/Z, Frühwirth-Schnatter (2004), draws taken as independent
    iterations: int


def fit_normal(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Cholesky factor of the normal fitted to draws (n, d); a small ridge keeps the
    factor defined where a coordinate barely moves."""
    mean = draws.mean(axis=0)
    cov = np.atleast_2d(np.cov(draws, rowvar=False))
    ridge = 1e-9 * max(float(np.trace(cov)) / len(cov), 1e-12)
    return mean, np.linalg.cholesky(cov + ridge * np.eye(len(cov)))


def normal_logpdf(x: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """log N(x; mean, chol cholᵀ) for rows of x (n, d)."""
    from scipy.linalg import solve_triangular

    z = solve_triangular(chol, (x - mean).T, lower=True)
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    return -0.5 * (np.sum(z**2, axis=0) + log_det + len(mean) * np.log(2 * np.pi))


def log_mass(
    draws: np.ndarray,
    log_density: np.ndarray,
    log_density_fn: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
) -> BridgeEstimate:
    """log ∫ p(θ, y) dθ over the mode the draws (n, d; unconstrained, with their log densities
    `log_density` (n,), Jacobians included) come from. `log_density_fn` evaluates the same log
    density at a batch of points (m, d)."""
    from scipy.special import logsumexp

    draws = np.asarray(draws, dtype=float)
    log_density = np.asarray(log_density, dtype=float)
    order = rng.permutation(len(draws))
    fit_half, test_half = order[: len(order) // 2], order[len(order) // 2 :]
    mean, chol = fit_normal(draws[fit_half])
    proposal = mean + rng.standard_normal((len(test_half), len(mean))) @ chol.T
    l1 = log_density[test_half] - normal_logpdf(draws[test_half], mean, chol)
    lp2 = np.asarray(log_density_fn(proposal), dtype=float)
    l2 = np.where(np.isfinite(lp2), lp2, -np.inf) - normal_logpdf(proposal, mean, chol)
    n1, n2 = len(l1), len(l2)
    s1, s2 = n1 / (n1 + n2), n2 / (n1 + n2)
    shift = float(np.median(l1))  # work with r / e^shift: the exponentials stay in range
    l1s, l2s = l1 - shift, l2 - shift
    log_r, step, iteration = 0.0, np.inf, 0
    while step > TOLERANCE and iteration < MAX_ITERATIONS:
        # log of s1 e^l + s2 r, for both sets
        d1 = np.logaddexp(np.log(s1) + l1s, np.log(s2) + log_r)
        d2 = np.logaddexp(np.log(s1) + l2s, np.log(s2) + log_r)
        new = (logsumexp(l2s - d2) - np.log(n2)) - (logsumexp(-d1) - np.log(n1))
        step, log_r, iteration = abs(new - log_r), float(new), iteration + 1
    # relative mean squared error of the estimate (Frühwirth-Schnatter 2004, eq. 12)
    f2 = np.exp(l2s - np.logaddexp(np.log(s1) + l2s, np.log(s2) + log_r))  # p/(s1 p + s2 r g), g
    g1 = np.exp(-np.logaddexp(np.log(s1) + l1s, np.log(s2) + log_r))  # g/(s1 p + s2 r g), post.
    re2 = np.var(f2) / (n2 * np.mean(f2) ** 2) + np.var(g1) / (n1 * np.mean(g1) ** 2)
    return BridgeEstimate(float(log_r + shift), float(np.sqrt(re2)), iteration)


def weights_from_log_masses(log_masses: dict[int, float]) -> dict[int, float]:
    """Each mode's share of the posterior mass, from log Z per mode."""
    keys = sorted(log_masses)
    values = np.array([log_masses[k] for k in keys])
    w = np.exp(values - values.max())
    w /= w.sum()
    return {k: float(v) for k, v in zip(keys, w, strict=True)}


def laplace_log_mass(log_density: float, hessian: np.ndarray) -> float:
    """log Z of a mode by Laplace's approximation, log p(θ*, y) + (d/2) log 2π − ½ log det(−H):
    what an optimum is worth before any draws (a high peak of little volume is worth little);
    −inf where −H is not positive definite (a ridge or a saddle, not a mode with finite mass)."""
    hessian = np.asarray(hessian, dtype=float)
    if not np.isfinite(log_density) or not np.all(np.isfinite(hessian)):
        return -np.inf
    try:
        chol = np.linalg.cholesky(-0.5 * (hessian + hessian.T))
    except np.linalg.LinAlgError:
        return -np.inf
    d = len(hessian)
    return float(log_density + 0.5 * d * np.log(2 * np.pi) - np.sum(np.log(np.diag(chol))))
