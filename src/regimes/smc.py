"""Tempered sequential Monte Carlo: a posterior whose modes are far apart, weighted by their mass.

NUTS started in one optimum stays there, and stacking (`regimes.modes`) weighs the optima the
multi-start finds by how well they predict, not by their posterior mass, and cannot weigh a region
the multi-start never returns. Tempering moves a cloud of particles from the prior
(β = 0) to the posterior (β = 1) through p(θ) p(y | θ)^β: each step picks the next β so that the
importance weights keep an effective sample size of `TARGET_ESS` × particles, resamples, and
moves every particle with random-walk Metropolis–Hastings steps on the tempered target, steps
alternating the whole cloud's covariance (long moves, between modes) with that of the cloud's
cluster nearest the particle (`Proposal`: a narrow mode is not explored with steps sized for the
distance between modes). A mode keeps the share of particles its mass earns at each
temperature, so its weight in the result is its posterior probability (Del Moral, Doucet &
Jasra 2006; Ching & Chen 2007, the scheme of PyMC's `sample_smc`).

Why not `pm.sample_smc`: it evaluates the log density one particle at a time in Python (about 100
s for one 1000-particle run of the 2000-2026 change point on this machine) and its JAX mode cannot
compile our forward filter; here the particles move together in one jitted, vectorised kernel
with the data as an argument, so refits of the same shapes compile nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regimes.errors import RegimesError

TARGET_ESS = 0.5  # effective sample size kept at each tempering step, as a share of particles
STEPS_PER_CHECK = 6  # Metropolis steps (whole-cloud and local in turn) between checks
MIN_STEPS = 25  # Metropolis steps per stage at least
MAX_STEPS = 100  # Metropolis steps per stage at most
MIN_DECORRELATION = 0.01  # stop moving once the correlation with the stage's start falls slower
CLUSTERS = 4  # proposal covariances: one per cluster of the particle cloud (k-means)
OPTIMAL_ACCEPT = 0.234  # random-walk Metropolis acceptance the proposal scale is tuned towards
MAX_STAGES = 500

# (particles (n, d), data) -> (log prior with Jacobian (n,), log likelihood (n,))
PriorLikelihood = Callable[[Any, list], tuple[Any, Any]]


@dataclass
class SMCRun:
    """One independent SMC run: its final particles and how it got there."""

    particles: np.ndarray  # (n, d), unconstrained
    log_prior: np.ndarray  # (n,)
    log_likelihood: np.ndarray  # (n,)
    log_evidence: float  # log p(y) estimate (up to the prior's normalising constant)
    betas: list[float] = field(default_factory=list)  # temperature after each stage
    acceptance: list[float] = field(default_factory=list)  # Metropolis acceptance per stage
    steps: list[int] = field(default_factory=list)  # Metropolis steps per stage


def next_beta(log_lik: np.ndarray, beta: float, target_ess: float = TARGET_ESS) -> float:
    """The next temperature: the largest β' ≤ 1 whose weights exp((β' − β) ℓ) keep an effective
    sample size of `target_ess` × particles (bisection on the ESS, which falls as β' grows)."""
    ll = np.where(np.isfinite(log_lik), log_lik, -np.inf)
    n = len(ll)

    def ess(b: float) -> float:
        lw = (b - beta) * ll
        lw = lw - np.max(lw)
        w = np.exp(lw)
        return float(w.sum() ** 2 / np.sum(w**2))

    if ess(1.0) >= target_ess * n:
        return 1.0
    lo, hi = beta, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ess(mid) >= target_ess * n:
            lo = mid
        else:
            hi = mid
    return max(lo, beta + 1e-12)


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn by systematic resampling (one uniform shared by all particles)."""
    n = len(weights)
    positions = (rng.random() + np.arange(n)) / n
    cumulative = np.cumsum(weights)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, positions)


@dataclass
class Proposal:
    """A random-walk proposal shaped by the modes of the cloud: the particles are split into
    clusters (k-means on standardised coordinates) and a point proposes with the covariance of
    the cluster whose centre is nearest to it. Because the covariance depends on where the point
    is, the Metropolis ratio carries the Hastings correction q(θ | θ') / q(θ' | θ)."""

    centres: np.ndarray  # (K, d), standardised
    loc: np.ndarray  # (d,) standardisation
    sd: np.ndarray  # (d,)
    chol: np.ndarray  # (K, d, d) Cholesky factors of the clusters' covariances
    inv_chol: np.ndarray  # (K, d, d) their inverses
    log_det: np.ndarray  # (K,) log |L_k|
    whole: np.ndarray  # (d, d) Cholesky factor of the whole cloud's covariance

    def parts(self) -> tuple[np.ndarray, ...]:
        """The arrays `mutate` takes, in its order."""
        return (self.centres, self.loc, self.sd, self.chol, self.inv_chol, self.log_det, self.whole)


def _nearest(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the centre nearest each row of z (squared Euclidean distance)."""
    return np.argmin(((z[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)


def fit_proposal(x: np.ndarray, clusters: int, seed: int, iterations: int = 25) -> Proposal:
    """Cluster the particles x (n, d) and take each cluster's covariance; a cluster with fewer
    than 2d + 2 particles proposes with the whole cloud's covariance."""
    n, d = x.shape
    rng = np.random.default_rng(seed)
    loc, sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
    z = (x - loc) / sd
    centres = z[[rng.integers(n)]]
    for _ in range(1, min(clusters, n)):  # k-means++ seeding
        d2 = np.min(((z[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)
        if d2.sum() <= 0:
            break
        centres = np.vstack([centres, z[rng.choice(n, p=d2 / d2.sum())]])
    for _ in range(iterations):
        label = _nearest(z, centres)
        centres = np.stack(
            [
                z[label == k].mean(axis=0) if np.any(label == k) else centres[k]
                for k in range(len(centres))
            ]
        )
    label = _nearest(z, centres)
    whole = np.atleast_2d(np.cov(x, rowvar=False))
    jitter = 1e-8 * np.diag(whole).clip(1e-12) * np.eye(d)
    covs = np.stack(
        [
            np.atleast_2d(np.cov(x[label == k], rowvar=False))
            if np.sum(label == k) >= 2 * d + 2
            else whole
            for k in range(len(centres))
        ]
    )
    chol = np.linalg.cholesky(covs + jitter[None])
    log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    whole_chol = np.linalg.cholesky(whole + jitter)
    return Proposal(centres, loc, sd, chol, np.linalg.inv(chol), log_det, whole_chol)


def make_kernels(prior_lik: PriorLikelihood) -> dict[str, Callable]:
    """The jitted functions one SMC run calls: `evaluate` (log prior, log likelihood of every
    particle) and `mutate` (`STEPS_PER_CHECK` Metropolis–Hastings steps of every particle on
    p(θ) p(y | θ)^β). Steps alternate two proposals, each leaving the target invariant: the
    whole cloud's covariance (long moves, between modes) and the covariance of the cluster
    nearest θ (moves sized to the particle's own mode, `Proposal`); each step computes only
    its own proposal's terms (the whole cloud's is symmetric, so it has no Hastings term).
    Returns the acceptance of each kind."""
    import jax
    import jax.numpy as jnp

    def evaluate(x, data):
        lp, ll = prior_lik(x, data)
        return lp, jnp.where(jnp.isnan(ll), -jnp.inf, ll)

    def mutate(key, x, lp, ll, beta, scales, proposal_parts, data):
        centres, loc, sd, chol, inv_chol, log_det, whole = proposal_parts

        def tempered(lp_, ll_):
            return lp_ + jnp.where(beta > 0, beta * ll_, 0.0)

        def cluster(x):
            z = (x - loc) / sd
            return jnp.argmin(((z[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)

        def by_cluster(mats, v, c):  # mats[c_n] @ v_n for each particle n: every cluster's
            # product, then each particle's own (no (n, d, d) gather of per-particle matrices)
            every = jnp.einsum("cij,nj->nci", mats, v)
            return jnp.take_along_axis(every, c[:, None, None], axis=1)[:, 0]

        def log_q(to, frm, c):  # log N(to; frm, s² L_c L_cᵀ) up to a constant
            u = by_cluster(inv_chol, to - frm, c)
            return -0.5 * jnp.sum(u**2, axis=1) / scales[1] ** 2 - log_det[c]

        def accept(key, state, proposal, log_hastings):
            x, lp, ll = state
            lp_new, ll_new = evaluate(proposal, data)
            log_ratio = tempered(lp_new, ll_new) - tempered(lp, ll) + log_hastings
            log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
            ok = jnp.log(jax.random.uniform(key, lp.shape)) < log_ratio
            x = jnp.where(ok[:, None], proposal, x)
            return (x, jnp.where(ok, lp_new, lp), jnp.where(ok, ll_new, ll)), ok.mean()

        def whole_cloud(state, key):  # symmetric: no Hastings term
            k_move, k_accept = jax.random.split(key)
            noise = jax.random.normal(k_move, state[0].shape)
            proposal = state[0] + scales[0] * noise @ whole.T
            return accept(k_accept, state, proposal, 0.0)

        def local(state, key):  # the nearest cluster's covariance, with its Hastings term
            k_move, k_accept = jax.random.split(key)
            x = state[0]
            here = cluster(x)
            noise = jax.random.normal(k_move, x.shape)
            proposal = x + scales[1] * by_cluster(chol, noise, here)
            hastings = log_q(x, proposal, cluster(proposal)) - log_q(proposal, x, here)
            return accept(k_accept, state, proposal, hastings)

        def pair(state, key):
            k_whole, k_local = jax.random.split(key)
            state, a_whole = whole_cloud(state, k_whole)
            state, a_local = local(state, k_local)
            return state, jnp.stack([a_whole, a_local])

        keys = jax.random.split(key, STEPS_PER_CHECK // 2)
        (x, lp, ll), rates = jax.lax.scan(pair, (x, lp, ll), keys)
        return x, lp, ll, rates.mean(axis=0)

    return {"evaluate": jax.jit(evaluate), "mutate": jax.jit(mutate)}


def compile_kernels(kernels: dict[str, Callable], init: np.ndarray, data: list) -> None:
    """Compile `kernels` for particles shaped like `init` by calling each once, so runs started
    side by side share one compilation instead of each compiling it."""
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(init, dtype=float)
    lp, ll = kernels["evaluate"](x, data)
    parts = tuple(jnp.asarray(a) for a in fit_proposal(np.asarray(init), CLUSTERS, 0).parts())
    scales = jnp.ones(2)
    key = jax.random.PRNGKey(0)  # the argument types `run_smc` passes
    jax.block_until_ready(kernels["mutate"](key, x, lp, ll, np.float64(0), scales, parts, data))


def _mean_abs_correlation(start: np.ndarray, now: np.ndarray) -> float:
    """Mean over dimensions of |corr(start_j, now_j)| across particles."""
    a = start - start.mean(axis=0)
    b = now - now.mean(axis=0)
    den = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(den > 0, (a * b).sum(axis=0) / den, 0.0)
    return float(np.mean(np.abs(corr)))


def run_smc(
    kernels: dict[str, Callable],
    init: np.ndarray,
    data: list,
    seed: int,
    *,
    target_ess: float = TARGET_ESS,
    max_steps: int = MAX_STEPS,
    clusters: int = CLUSTERS,
    on_stage: Callable[[int, float, float, int], None] | None = None,
) -> SMCRun:
    """Temper the particles `init` (n, d; draws from the prior, unconstrained) to the posterior.

    After each reweighting and resampling, particles take Metropolis steps in blocks of
    `STEPS_PER_CHECK` until their correlation with where the stage began stops falling by
    `MIN_DECORRELATION` per block (at least `MIN_STEPS`, at most `max_steps`); each proposal's
    scale follows its acceptance towards `OPTIMAL_ACCEPT`. `on_stage(stage, beta, acceptance,
    steps)` reports progress."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    x = np.asarray(init, dtype=float)
    d = x.shape[1]
    lp, ll = (np.asarray(v, dtype=float) for v in kernels["evaluate"](jnp.asarray(x), data))
    beta, log_evidence = 0.0, 0.0
    scales = np.full(2, 2.38 / np.sqrt(d))  # the whole cloud's proposal, the clusters'
    betas: list[float] = []
    acceptance: list[float] = []
    steps_taken: list[int] = []
    for stage in range(MAX_STAGES):
        if beta >= 1.0:
            break
        new_beta = next_beta(ll, beta, target_ess)
        lw = (new_beta - beta) * ll  # `evaluate` has mapped an undefined likelihood to −inf
        top = np.max(lw)
        if not np.isfinite(top):
            raise RegimesError(
                "SMC: no particle has a finite likelihood; check the priors and the data"
            )
        w = np.exp(lw - top)
        log_evidence += top + np.log(w.mean())
        # the proposal's clusters from the cloud before resampling (its copies would shrink the
        # clusters' covariances)
        prop = fit_proposal(x, clusters, seed + stage)
        parts = tuple(jnp.asarray(a) for a in prop.parts())
        idx = systematic_resample(w / w.sum(), rng)
        x, lp, ll, beta = x[idx], lp[idx], ll[idx], new_beta
        start, xs, lps, lls = x, jnp.asarray(x), jnp.asarray(lp), jnp.asarray(ll)
        corr, accepted, steps = 1.0, [], 0
        while steps < max_steps:
            key, sub = jax.random.split(key)
            xs, lps, lls, acc = kernels["mutate"](
                sub, xs, lps, lls, np.float64(beta), jnp.asarray(scales), parts, data
            )
            steps += STEPS_PER_CHECK
            accepted.append(np.asarray(acc))
            now = _mean_abs_correlation(start, np.asarray(xs))
            if steps >= MIN_STEPS and corr - now < MIN_DECORRELATION:
                break
            corr = now
        x, lp, ll = (np.asarray(v, dtype=float) for v in (xs, lps, lls))
        rates = np.mean(accepted, axis=0)  # (whole cloud's, clusters')
        scales *= np.exp(2.0 * (rates - OPTIMAL_ACCEPT))
        acc = float(rates.mean())
        betas.append(beta)
        acceptance.append(acc)
        steps_taken.append(steps)
        if on_stage is not None:
            on_stage(stage, beta, acc, steps)
    if beta < 1.0:  # never a silently tempered, not posterior, cloud
        raise RegimesError(
            f"SMC: the temperature reached only {beta:.3g} after {MAX_STAGES} stages; the "
            "likelihood is too sharp for this many particles: raise [sampler] draws"
        )
    return SMCRun(x, lp, ll, float(log_evidence), betas, acceptance, steps_taken)
