"""Hidden-Markov-model inference kernels: filtering, smoothing, FFBS, Viterbi (numpy + PyTensor).

Pure, model-agnostic functions in the style of dynamax: a model supplies three log-space arrays
and gets back posterior regime quantities. Everything is computed in log space (log-sum-exp), so
long series (T in the thousands) and extreme log-likelihoods (e.g. -1000) do not underflow.

Conventions
-----------
K regimes, T observations, time index t = 0..T-1 (0-based).

``log_init`` : (K,)
    log p(s_0 = k).
``log_trans`` : (K, K) static, or (T-1, K, K) / (T, K, K) time-varying
    Rows are the from-state, columns the to-state: ``log_trans[..., i, j] = log p(s_{t+1}=j |
    s_t=i)``. With a time axis, ``log_trans[t]`` is the transition used to go from time t to
    time t+1, so only ``log_trans[0 .. T-2]`` is used; a (T, K, K) array is accepted for
    convenience (e.g. one matrix per observation built from covariates) and its last slice
    ``log_trans[T-1]`` is ignored. Rows are assumed normalised (each row logsumexp's to 0);
    the kernels do not renormalise them. ``-inf`` entries (forbidden transitions) are allowed.
``log_lik`` : (T, K)
    ``log_lik[t, k] = log p(y_t | s_t = k, y_0..t-1)``; ``-inf`` entries are allowed.

Batched ("draws") helpers put a leading draws axis D on every input: ``log_init`` (D, K),
``log_trans`` (D, K, K) or (D, T-1, K, K) or (D, T, K, K), ``log_lik`` (D, T, K). They loop over
time and vectorise over draws and states, for post-processing thousands of posterior draws.
``posterior_passes`` and ``filter_draws`` also take ``lags = p``: the states are then the
K^(p+1) lag-expanded ones of an AR(p) chain (as in ``pt_forward_log_marginal``) and
``log_trans`` stays the K-regime matrices, so a step costs O(J K) instead of O(J²).

``pt_forward_log_marginal`` is the differentiable PyTensor forward pass (``pytensor.scan``) used
inside PyMC models; it follows the same conventions (decided by the static ``ndim`` of
``log_trans``) and returns the log marginal likelihood and the one-step-ahead log predictive
densities (the pointwise log-likelihood for LOO/WAIC). It compiles with the default C backend for
any shapes; with ``mode="JAX"`` the inputs need static shapes (as PyMC's JAX samplers provide),
because JAX cannot trace scan/gradient allocations whose length is only known at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.special import logsumexp as pt_logsumexp

SCALAR_STATES = 8  # the forward pass runs state by state up to this many states, as a vector above

__all__ = [
    "DrawPasses",
    "FilterResult",
    "expected_durations",
    "filter_draws",
    "forward_filter",
    "lagged_regimes",
    "posterior_draws",
    "posterior_passes",
    "pt_forward_log_marginal",
    "sample_paths",
    "smooth",
    "smooth_draws",
    "stationary_distribution",
    "viterbi",
]


@dataclass(frozen=True)
class FilterResult:
    """Forward-filter output; from ``filter_draws`` every field gains a leading draws axis.

    log_marginal: log p(y_0..T-1) (a float, or (D,) from ``filter_draws``).
    log_pred: (T,) one-step-ahead log predictive densities log p(y_t | y_0..t-1); they sum to
        ``log_marginal``.
    filtered: (T, K) p(s_t | y_0..t).
    predicted: (T, K) p(s_t | y_0..t-1) (``predicted[0]`` is the initial distribution).
    """

    log_marginal: float | np.ndarray
    log_pred: np.ndarray
    filtered: np.ndarray
    predicted: np.ndarray


# ----------------------------------------------------------------------------- numpy helpers


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    """Log-sum-exp along ``axis`` by pairwise ``np.logaddexp`` (fast for small K; -inf safe)."""
    a = np.moveaxis(a, axis, 0)
    acc = a[0]
    for i in range(1, a.shape[0]):
        acc = np.logaddexp(acc, a[i])
    return acc


def _lse_from(log_p: np.ndarray, lt: np.ndarray) -> np.ndarray:
    """Batched log of (p @ P): out[d, j] = logsumexp_i(log_p[d, i] + lt[d, i, j])."""
    acc = log_p[:, 0, None] + lt[:, 0]
    for i in range(1, lt.shape[1]):
        acc = np.logaddexp(acc, log_p[:, i, None] + lt[:, i])
    return acc


def _lse_to(lt: np.ndarray, log_v: np.ndarray) -> np.ndarray:
    """Batched log of (P @ v): out[d, i] = logsumexp_j(lt[d, i, j] + log_v[d, j])."""
    acc = lt[:, :, 0] + log_v[:, 0, None]
    for j in range(1, lt.shape[2]):
        acc = np.logaddexp(acc, lt[:, :, j] + log_v[:, j, None])
    return acc


def _canonical(
    log_init: np.ndarray,
    log_trans: np.ndarray,
    log_lik: np.ndarray,
    batched: bool,
    lags: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes; return (D,J) init, (D,T-1,K,K) transitions (maybe a view), (D,T,J) lik;
    J = K without `lags`, else the K^(lags+1) lag-expanded states (`lagged_regimes`)."""
    li = np.asarray(log_init, dtype=float)
    lt = np.asarray(log_trans, dtype=float)
    ll = np.asarray(log_lik, dtype=float)
    if not batched:
        li, lt, ll = li[None], lt[None], ll[None]
    if ll.ndim != 3:
        raise ValueError(f"log_lik must be {'(D, T, K)' if batched else '(T, K)'}; got {ll.shape}")
    d, t_len, j = ll.shape
    if t_len < 1 or j < 1:
        raise ValueError(f"log_lik needs T >= 1 and K >= 1; got shape {ll.shape[1:]}")
    if li.shape != (d, j):
        raise ValueError(f"log_init shape {li.shape[1 - batched :]} does not match K={j}")
    k = lagged_regimes(j, lags)
    if lt.ndim == 3:
        if lt.shape != (d, k, k):
            raise ValueError(f"static log_trans must be (K, K) = ({k}, {k}); got {lt.shape[1:]}")
        lt = np.broadcast_to(lt[:, None], (d, t_len - 1, k, k))
    elif lt.ndim == 4:
        if lt.shape[0] != d or lt.shape[2:] != (k, k) or lt.shape[1] not in (t_len - 1, t_len):
            raise ValueError(
                f"time-varying log_trans must be (T-1, K, K) or (T, K, K) with T={t_len}, K={k};"
                f" got {lt.shape[1 - batched :]}"
            )
        lt = lt[:, : t_len - 1]
    else:
        raise ValueError(
            f"log_trans must be (K, K) or (T-1|T, K, K); got {lt.shape[1 - batched :]}"
        )
    return li, lt, ll


def _forward(
    li: np.ndarray, lt: np.ndarray, ll: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched log-space forward pass: log filtered, log predicted (D,T,K) and log_pred (D,T).

    Works time-major internally so each step touches contiguous (D, K) blocks.
    """
    d, t_len, k = ll.shape
    ll_tm = np.ascontiguousarray(np.moveaxis(ll, 1, 0))
    log_filt = np.empty((t_len, d, k))
    log_pstate = np.empty((t_len, d, k))
    log_pred = np.empty((t_len, d))
    prev = li
    for t in range(t_len):
        if t > 0:
            prev = _lse_from(log_filt[t - 1], lt[:, t - 1])  # sum over the from-state
        log_pstate[t] = prev
        joint = prev + ll_tm[t]
        c = _lse(joint, axis=-1)
        log_pred[t] = c
        log_filt[t] = joint - c[:, None]
    return np.moveaxis(log_filt, 0, 1), np.moveaxis(log_pstate, 0, 1), log_pred.T


def _smooth_from_filter(log_filt: np.ndarray, lt: np.ndarray, ll: np.ndarray) -> np.ndarray:
    """Batched backward pass with a per-step normalised log beta; returns p(s_t | y) (D,T,K)."""
    d, t_len, k = ll.shape
    ll_tm = np.moveaxis(ll, 1, 0)
    log_sm = np.empty((t_len, d, k))
    log_beta = np.zeros((d, k))
    log_sm[-1] = log_filt[:, -1]
    for t in range(t_len - 2, -1, -1):
        b = _lse_to(lt[:, t], ll_tm[t + 1] + log_beta)  # sum over the to-state
        log_beta = b - _lse(b, axis=-1)[:, None]
        log_sm[t] = log_filt[:, t] + log_beta
    log_sm -= _lse(log_sm, axis=-1)[..., None]
    return np.ascontiguousarray(np.moveaxis(np.exp(log_sm), 0, 1))


def _probabilities(
    lt: np.ndarray, ll: np.ndarray
) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    """Transition probabilities ((D,K,K) if static, else (D,T-1,K,K)) and per-step scaled
    likelihoods exp(ll − max_k ll) with the maxima, for the scaled probability-space passes."""
    static = lt.ndim == 4 and lt.shape[1] > 0 and lt.strides[1] == 0
    trans = np.exp(lt[:, 0] if static else lt) if lt.shape[1] > 0 else np.exp(lt)
    m = ll.max(axis=2, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return trans, static, np.exp(ll - m), m[..., 0]


def lagged_regimes(n_states: int, lags: int) -> int:
    """The number of regimes K of a chain whose J = K^(lags+1) states carry the regime at lags
    0..lags (J itself without lags); a ValueError when J is no such power."""
    k = round(n_states ** (1.0 / (lags + 1)))
    if k ** (lags + 1) != n_states:
        raise ValueError(f"{n_states} states are not the K^{lags + 1} states of {lags} lags")
    return k


class _Moves:
    """A chain's moves in probability space for the scaled passes: (D,K,K) or (D,T-1,K,K)
    matrices on the states themselves, each a dense product per step."""

    def __init__(self, trans: np.ndarray, static: bool) -> None:
        self.trans, self.static = trans, static
        self.rows = np.arange(trans.shape[0])

    def step(self, t: int) -> np.ndarray:
        """The (D, K, K) regime matrices of the move t -> t + 1."""
        return self.trans if self.static else self.trans[:, t]

    def predict(self, filt: np.ndarray, t: int) -> np.ndarray:
        """p(state_t+1 | y_≤t) (D, J) from p(state_t | y_≤t)."""
        return np.matmul(filt[:, None, :], self.step(t))[:, 0]

    def back(self, w: np.ndarray, t: int) -> np.ndarray:
        """Σ_j P(i -> j) w[j] over the next state j (D, J): the backward recursion's step."""
        return np.matmul(self.step(t), w[:, :, None])[:, :, 0]

    def towards(self, filt: np.ndarray, nxt: np.ndarray, t: int) -> np.ndarray:
        """Unnormalised p(state_t | state_t+1 = nxt, y_≤t) (D, J)."""
        return filt * self.step(t)[self.rows, :, nxt]


class _LaggedMoves(_Moves):
    """The moves of the K^(p+1) lag-expanded states (s_t, ..., s_t-p; `pt_forward_log_marginal`'s
    order) from the K-regime matrices: a step drops the oldest lag and moves the newest, O(J K)
    per draw instead of the O(J²) of the dense expanded matrix, which is mostly zeros."""

    def __init__(self, trans: np.ndarray, static: bool, k: int, p: int) -> None:
        super().__init__(trans, static)
        self.k, self.kp = k, k**p
        self.newest = np.arange(self.kp) // k ** (p - 1)  # s_t of each kept block (s_t..s_t-p+1)

    def _kept_moves(self, t: int) -> np.ndarray:
        """(D, K^p, K): P[newest lag of kept block m, next regime]."""
        return self.step(t)[:, self.newest, :]

    def predict(self, filt: np.ndarray, t: int) -> np.ndarray:
        d = filt.shape[0]
        kept = filt.reshape(d, self.kp, self.k).sum(axis=2)  # the oldest lag summed out
        nxt = self._kept_moves(t) * kept[:, :, None]  # (D, block, next regime)
        return nxt.transpose(0, 2, 1).reshape(d, -1)  # next state = (next regime, block)

    def back(self, w: np.ndarray, t: int) -> np.ndarray:
        d = w.shape[0]
        by_next = w.reshape(d, self.k, self.kp).transpose(0, 2, 1)  # (D, block, next regime)
        u = (self._kept_moves(t) * by_next).sum(axis=2)  # (D, block)
        return np.repeat(u, self.k, axis=1)  # the same for every oldest lag of the block

    def towards(self, filt: np.ndarray, nxt: np.ndarray, t: int) -> np.ndarray:
        # the states that move to `nxt` are its block's, any oldest lag, all by the same
        # regime move: the filtered probabilities of those K states, zero elsewhere
        block = (nxt % self.kp)[:, None] * self.k + np.arange(self.k)[None, :]
        out = np.zeros_like(filt)
        np.put_along_axis(out, block, np.take_along_axis(filt, block, axis=1), axis=1)
        return out


def _moves(trans: np.ndarray, static: bool, n_states: int, lags: int) -> _Moves:
    """The scaled passes' moves: dense, or on lag-expanded states from K-regime matrices."""
    if not lags:
        return _Moves(trans, static)
    return _LaggedMoves(trans, static, lagged_regimes(n_states, lags), lags)


def _forward_scaled(
    li: np.ndarray, lt: np.ndarray, ll: np.ndarray, lags: int = 0
) -> tuple[np.ndarray, tuple, np.ndarray, np.ndarray]:
    """Batched forward pass in probability space with per-step normalisation (matrix products
    instead of log-sum-exp loops: the fast path for many draws and large expanded state spaces).
    Returns filtered probabilities (D,T,J), (moves, scaled likelihoods), log_pred (D,T) and the
    predicted p(state_t | y_<t) (D,T,J)."""
    d, t_len, j = ll.shape
    trans, static, lik, m = _probabilities(lt, ll)
    moves = _moves(trans, static, j, lags)
    filt = np.empty((d, t_len, j))
    predicted = np.empty((d, t_len, j))
    log_pred = np.empty((d, t_len))
    pred = np.exp(li)
    for t in range(t_len):
        if t > 0:
            pred = moves.predict(filt[:, t - 1], t - 1)
        predicted[:, t] = pred
        joint = pred * lik[:, t]
        c = joint.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_pred[:, t] = np.log(c) + m[:, t]
            filt[:, t] = joint / c[:, None]
    return filt, (moves, lik), log_pred, predicted


def _smooth_scaled(filt: np.ndarray, parts: tuple) -> np.ndarray:
    """Batched backward pass in probability space; returns p(s_t | y) (D,T,J)."""
    moves, lik = parts
    d, t_len, j = filt.shape
    out = np.empty_like(filt)
    out[:, -1] = filt[:, -1]
    beta = np.ones((d, j))
    for t in range(t_len - 2, -1, -1):
        beta = moves.back(lik[:, t + 1] * beta, t)
        beta /= beta.sum(axis=1, keepdims=True)
        sm = filt[:, t] * beta
        out[:, t] = sm / sm.sum(axis=1, keepdims=True)
    return out


# ----------------------------------------------------------------------------- numpy public API


def forward_filter(
    log_init: np.ndarray, log_trans: np.ndarray, log_lik: np.ndarray
) -> FilterResult:
    """Run the forward (Hamilton) filter: log p(y), one-step predictive terms, filtered probs."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=False)
    log_filt, log_pstate, log_pred = _forward(li, lt, ll)
    return FilterResult(
        log_marginal=float(log_pred[0].sum()),
        log_pred=log_pred[0],
        filtered=np.exp(log_filt[0]),
        predicted=np.exp(log_pstate[0]),
    )


def filter_draws(
    log_init: np.ndarray, log_trans: np.ndarray, log_lik: np.ndarray, lags: int = 0
) -> FilterResult:
    """Forward-filter D posterior draws at once (inputs with a leading D axis; see module doc;
    `lags` as in `posterior_passes`)."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=True, lags=lags)
    filt, _, log_pred, predicted = _forward_scaled(li, lt, ll, lags)
    return FilterResult(
        log_marginal=log_pred.sum(axis=1), log_pred=log_pred, filtered=filt, predicted=predicted
    )


def smooth(log_init: np.ndarray, log_trans: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    """Return smoothed regime probabilities p(s_t | y_0..T-1), shape (T, K), by forward-backward."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=False)
    log_filt, _, _ = _forward(li, lt, ll)
    return _smooth_from_filter(log_filt, lt, ll)[0]


def smooth_draws(log_init: np.ndarray, log_trans: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    """Smooth D posterior draws at once, vectorised over draws: returns (D, T, K) probabilities."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=True)
    filt, parts, _, _ = _forward_scaled(li, lt, ll)
    return _smooth_scaled(filt, parts)


def sample_paths_draws(
    rng: np.random.Generator | int | None,
    log_init: np.ndarray,
    log_trans: np.ndarray,
    log_lik: np.ndarray,
) -> np.ndarray:
    """One FFBS regime path per posterior draw, vectorised over draws: (D, T) ints."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=True)
    filt, parts, _, _ = _forward_scaled(li, lt, ll)
    return _backward_sample(np.random.default_rng(rng), filt, parts)


class DrawPasses(NamedTuple):
    """Per draw, from one forward pass: log_pred (D,T), filtered and predicted (D,T,J),
    smoothed (D,T,J) and one FFBS path (D,T)."""

    log_pred: np.ndarray
    filtered: np.ndarray
    predicted: np.ndarray
    smoothed: np.ndarray
    paths: np.ndarray


def posterior_passes(
    rng: np.random.Generator | int | None,
    log_init: np.ndarray,
    log_trans: np.ndarray,
    log_lik: np.ndarray,
    lags: int = 0,
) -> DrawPasses:
    """Everything per draw from one forward pass. With `lags = p > 0` the states are the
    K^(p+1) lag-expanded ones (`pt_forward_log_marginal`'s order) and `log_trans` stays the
    K-regime matrices (D, K, K) or (D, T-1|T, K, K): each step costs O(J K), not O(J²)."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=True, lags=lags)
    filt, parts, log_pred, predicted = _forward_scaled(li, lt, ll, lags)
    smoothed = _smooth_scaled(filt, parts)
    paths = _backward_sample(np.random.default_rng(rng), filt, parts)
    return DrawPasses(log_pred, filt, predicted, smoothed, paths)


def posterior_draws(
    rng: np.random.Generator | int | None,
    log_init: np.ndarray,
    log_trans: np.ndarray,
    log_lik: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Everything per draw from one forward pass: log_pred (D,T), filtered (D,T,K),
    smoothed (D,T,K) and one FFBS path (D,T)."""
    passes = posterior_passes(rng, log_init, log_trans, log_lik)
    return passes.log_pred, passes.filtered, passes.smoothed, passes.paths


def _backward_sample(rng: np.random.Generator, filt: np.ndarray, parts: tuple) -> np.ndarray:
    """Backward sampling step of FFBS given filtered probabilities, one path per draw."""
    moves, _ = parts
    d, t_len, _ = filt.shape
    paths = np.empty((d, t_len), dtype=np.int64)
    with np.errstate(divide="ignore"):
        paths[:, -1] = _categorical(rng, np.log(filt[:, -1]))
        for t in range(t_len - 2, -1, -1):
            w = moves.towards(filt[:, t], paths[:, t + 1], t)  # p(s_t=i | s_t+1, y_0..t)
            paths[:, t] = _categorical(rng, np.log(w))
    return paths


def _categorical(rng: np.random.Generator, logw: np.ndarray) -> np.ndarray:
    """Draw one index per row of unnormalised log weights (n, K) by inverse CDF."""
    w = np.exp(logw - np.max(logw, axis=-1, keepdims=True))
    cdf = np.cumsum(w, axis=-1)
    u = rng.random(w.shape[0]) * cdf[:, -1]
    idx = np.sum(cdf <= u[:, None], axis=-1)
    return np.minimum(idx, w.shape[-1] - 1)


def sample_paths(
    rng: np.random.Generator | int | None,
    log_init: np.ndarray,
    log_trans: np.ndarray,
    log_lik: np.ndarray,
    n: int = 1,
) -> np.ndarray:
    """Draw n regime paths from p(s_0..T-1 | y) by forward-filtering backward-sampling: (n, T)."""
    rng = np.random.default_rng(rng)
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=False)
    log_filt, _, _ = _forward(li, lt, ll)
    log_filt, lt = log_filt[0], lt[0]
    t_len, k = log_filt.shape
    paths = np.empty((n, t_len), dtype=np.int64)
    paths[:, -1] = _categorical(rng, np.broadcast_to(log_filt[-1], (n, k)))
    for t in range(t_len - 2, -1, -1):
        # p(s_t = i | s_{t+1}, y_0..t) ∝ filtered_t(i) * P_t(i, s_{t+1})
        logw = log_filt[t][None, :] + lt[t][:, paths[:, t + 1]].T
        paths[:, t] = _categorical(rng, logw)
    return paths


def viterbi(log_init: np.ndarray, log_trans: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    """Return the most likely regime path argmax_s p(s | y), shape (T,) int (ties: lowest index)."""
    li, lt, ll = _canonical(log_init, log_trans, log_lik, batched=False)
    li, lt, ll = li[0], lt[0], ll[0]
    t_len, k = ll.shape
    back = np.zeros((t_len, k), dtype=np.int64)
    delta = li + ll[0]
    cols = np.arange(k)
    for t in range(1, t_len):
        scores = delta[:, None] + lt[t - 1]  # (from, to)
        back[t] = np.argmax(scores, axis=0)
        delta = scores[back[t], cols] + ll[t]
    path = np.empty(t_len, dtype=np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def stationary_distribution(P: np.ndarray) -> np.ndarray:
    """Return pi with pi @ P = pi, sum(pi) = 1 for a (K, K) row-stochastic P (least squares)."""
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be a square (K, K) matrix; got {P.shape}")
    k = P.shape[0]
    a = np.vstack([P.T - np.eye(k), np.ones((1, k))])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def expected_durations(P: np.ndarray) -> np.ndarray:
    """Return expected regime durations 1 / (1 - p_kk) in periods (inf for an absorbing regime)."""
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be a square (K, K) matrix; got {P.shape}")
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - np.diag(P))


# ----------------------------------------------------------------------------- PyTensor


def pt_forward_log_marginal(
    log_init: pt.TensorLike,
    log_trans: pt.TensorLike,
    log_lik: pt.TensorLike,
    *,
    lags: int = 0,
    allowed: np.ndarray | None = None,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Build the differentiable forward pass (scan): returns (log p(y) scalar, log_pred (T,)).

    `allowed` (K, K) bool, when given, marks the only moves whose probability can be nonzero
    (those of a left-to-right chain: stay or move one regime on): the state-by-state recursion
    then sums over the allowed from-states only (a change point's K = 3 step: 2 log-add-exps
    instead of 3 three-term log-sum-exps), the same value as summing −inf terms.

    With ``lags = p > 0`` the chain runs on the lag-expanded states (s_t, ..., s_{t-p}) of a
    K-regime chain (J = K^(p+1) states in ``itertools.product`` order, s_t the slowest digit):
    ``log_init`` and ``log_lik`` are over the J states, while ``log_trans`` stays the K-regime
    matrix (K, K) or (T-1|T, K, K). Each step then drops the oldest lag and moves the newest,
    O(J K) instead of the O(J^2) of the equivalent dense (J, J) matrix, which is mostly -inf.

    The log-space recursion is exact for any inputs (states ruled out by thousands of nats,
    forbidden moves at −inf). Up to `SCALAR_STATES` states it runs state by state, one scalar
    per state, unnormalised (one log-sum-exp per state and step, none to normalise): a batch of
    parameter vectors (SMC's particles, vmapped) then runs as J arrays with element-wise
    log-sum-exps between them, not as an array with a J-long minor axis reduced twice at every
    step (about 2.5x faster for 3000 particles of the 2000-2026 change point). Above, it runs on
    one normalised vector (a small graph for many lagged states).
    """
    log_init = pt.as_tensor_variable(log_init)
    log_trans = pt.as_tensor_variable(log_trans)
    log_lik = pt.as_tensor_variable(log_lik)
    if log_init.ndim != 1 or log_lik.ndim != 2:
        raise ValueError(
            f"log_init must be (K,) and log_lik (T, K); got ndim {log_init.ndim}, {log_lik.ndim}"
        )
    if log_trans.ndim not in (2, 3):
        raise ValueError(f"log_trans must be (K, K) or (T-1|T, K, K); got ndim {log_trans.ndim}")

    n_states = log_lik.type.shape[1]
    k = log_trans.type.shape[-1] if lags else n_states
    if n_states is None or k is None:
        raise ValueError(
            "the forward pass needs the number of states as a static shape of log_lik (T, K)"
            + (" and the number of regimes as one of log_trans" if lags else "")
        )
    static = log_trans.ndim == 2
    if not static:  # log_trans[t] moves t -> t+1; a (T, K, K) input has its last slice ignored
        log_trans = log_trans[: log_lik.shape[0] - 1]
    if allowed is not None and (lags or np.shape(allowed) != (k, k)):
        raise ValueError(f"allowed must be ({k}, {k}) and is for chains without lags")
    if n_states <= SCALAR_STATES:
        return _by_state(log_init, log_trans, log_lik, k, lags, static, allowed)
    return _by_vector(log_init, log_trans, log_lik, k, lags, static)


def _pt_lse(terms: list) -> pt.TensorVariable:
    """log(sum(exp(terms))) of a few tensors of one shape, element-wise, −inf where all are."""
    if len(terms) == 1:
        return terms[0]
    if len(terms) == 2:
        return pt.logaddexp(*terms)
    top = terms[0]
    for t in terms[1:]:
        top = pt.maximum(top, t)
    top = pt.switch(pt.isinf(top), 0.0, top)
    return pt.log(pt.add(*(pt.exp(t - top) for t in terms))) + top


def _by_state(log_init, log_trans, log_lik, k: int, lags: int, static: bool, allowed=None):
    """The recursion on one scalar per state (few states), unnormalised: each step carries
    log p(s_t = j, y_0..t), one log-sum-exp per state over its allowed from-states (no
    normalising one), and each month's density is the difference of consecutive totals, taken
    after the scan, vectorised over time. Returns (log p(y), log p(y_t | y_<t) for t = 0..T-1)."""
    n_states = k ** (lags + 1)
    predict = _lagged_scalar_predict(k, lags) if lags else _scalar_predict(k, allowed)
    flat = [log_trans[..., i, j] for i in range(k) for j in range(k)]
    n_trans = k * k
    first = [log_init[j] + log_lik[0, j] for j in range(n_states)]

    def fn(*args):
        ll_t = args[:n_states]
        rest = args[n_states:]
        if static:
            joint_prev, lt_flat = rest[:n_states], rest[n_states:]
        else:
            lt_flat, joint_prev = rest[:n_trans], rest[n_trans:]
        pred = predict(joint_prev, lt_flat)
        return [p + lj for p, lj in zip(pred, ll_t, strict=True)]

    joints = pytensor.scan(
        fn,
        sequences=[*(log_lik[1:, j] for j in range(n_states)), *([] if static else flat)],
        outputs_info=first,
        non_sequences=flat if static else [],
        strict=True,
        return_updates=False,
    )
    joints = joints if isinstance(joints, list | tuple) else [joints]
    totals = _pt_lse([pt.concatenate([f[None], j]) for f, j in zip(first, joints, strict=True)])
    return totals[-1], pt.concatenate([totals[:1], totals[1:] - totals[:-1]])


def _by_vector(log_init, log_trans, log_lik, k: int, lags: int, static: bool):
    """The recursion on the vector of state log-probabilities (many states, e.g. the 32
    lagged states of an MS-AR(4): one scalar each would make a graph that takes seconds to
    build). Returns (log p(y), log p(y_t | y_<t) for t = 0..T-1)."""
    if lags:
        predict = _lagged_predict(k, lags)
    else:

        def predict(log_filt_prev, lt):
            return pt_logsumexp(log_filt_prev[:, None] + lt, axis=0)

    first = log_init + log_lik[0]
    c0 = pt_logsumexp(first)
    filt0 = first - c0

    def step(ll_t, lt_t, log_filt_prev):
        joint = predict(log_filt_prev, lt_t) + ll_t
        c = pt_logsumexp(joint)
        return joint - c, c

    if static:

        def fn(ll_t, log_filt_prev, lt):
            return step(ll_t, lt, log_filt_prev)

    else:

        def fn(ll_t, lt_t, log_filt_prev):
            return step(ll_t, lt_t, log_filt_prev)

    (_, cs) = pytensor.scan(
        fn,
        sequences=[log_lik[1:]] if static else [log_lik[1:], log_trans],
        outputs_info=[filt0, None],
        non_sequences=[log_trans] if static else [],
        strict=True,
        return_updates=False,
    )
    log_pred = pt.concatenate([c0[None], cs])
    return log_pred.sum(), log_pred


def _scalar_predict(k: int, allowed: np.ndarray | None = None):
    """One prediction step, state by state: log pred_j = logsumexp_i(log f_i + log P[i, j]) (P
    flattened row-major) over the from-states i that `allowed[i, j]` (all without it)."""
    ok = np.ones((k, k), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if not ok.any(axis=0).all():
        raise ValueError("every state must be reachable from some state (a column of allowed)")
    sources = [[i for i in range(k) if ok[i, j]] for j in range(k)]

    def predict(filt_prev, lt_flat):
        return [
            _pt_lse([filt_prev[i] + lt_flat[i * k + j] for i in src])
            for j, src in enumerate(sources)
        ]

    return predict


def _lagged_scalar_predict(k: int, p: int):
    """One prediction step on (s_t, ..., s_{t-p}), state by state: drop s_{t-p}, then
    (s_{t+1}, s_t, ..., s_{t-p+1}) <- log P[s_t, s_{t+1}] + the kept block."""
    kp = k**p

    def predict(filt_prev, lt_flat):
        kept = [_pt_lse(list(filt_prev[m * k : (m + 1) * k])) for m in range(kp)]
        newest = [m // k ** (p - 1) for m in range(kp)]
        return [lt_flat[newest[m] * k + j] + kept[m] for j in range(k) for m in range(kp)]

    return predict


def _lagged_predict(k: int | None, p: int):
    """One prediction step on (s_t, ..., s_{t-p}) from a K-regime log matrix: drop s_{t-p}, then
    (s_{t+1}, s_t, ..., s_{t-p+1}) <- log P[s_t, s_{t+1}] + the kept block."""
    if k is None:
        raise ValueError("lags > 0 needs the number of regimes as a static shape of log_trans")
    kp = k**p
    newest = np.arange(kp) // k ** (p - 1)  # s_t of each kept (s_t, ..., s_{t-p+1}) block

    def predict(log_filt_prev, lt):
        kept = pt_logsumexp(log_filt_prev.reshape((kp, k)), axis=1)
        return (lt.T[:, newest] + kept[None, :]).reshape((kp * k,))

    return predict
