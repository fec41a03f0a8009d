"""What a fitted chain model says per posterior draw: the forward filter, smoother and sampled
paths (FFBS) over the fit window, the one-step predictive densities jointly and per series, and
the anchors' parameters — computed once per fit from the model's own graphs (`ChainPasses`) and
shared by every output of the Markov-switching and panel families."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from regimes.draws import stack_draws
from regimes.families.chain.model import ComponentFunction
from regimes.families.chain.space import StateSpace

# deferred to the functions that use them: PyTensor (docs/modules.md#imports)

CHUNK = 500  # draws per batch of HMM passes at most (bounds memory at large T and K^(p+1))


def batches(n_draws: int) -> list[tuple[int, int]]:
    """(lo, hi) of equal batches of at most `CHUNK` draws: the compiled graphs run each batch in
    one vmapped call padded to the largest, so equal sizes waste (almost) nothing on padding
    and share one compilation."""
    count = -(-n_draws // CHUNK)
    size = -(-n_draws // count)
    return [(lo, min(lo + size, n_draws)) for lo in range(0, n_draws, size)]


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


@dataclass
class ChainPasses:
    """Per-draw HMM results over the fit window (T months; n = T − c scored months), C chains
    (one shared, or one per series)."""

    regime_prob: np.ndarray  # (D, C, T, K) smoothed; the first c months from the first state
    filtered_prob: np.ndarray  # (D, n, K) filtered p(s_t | y_≤t) of the (reference) chain
    last_filtered: np.ndarray  # (D, C, K) p(s_T | data) at the end of the fit window
    predicted: np.ndarray  # (D, n, J) one-step p(state_t | y_<t) of the (reference) chain
    log_pred: np.ndarray  # (D, n) joint one-step log predictive density of month t
    log_pred_series: np.ndarray  # (D, n, A) each series' one-step log density; NaN unscored
    paths: np.ndarray  # (D, T) one sampled regime path per draw (FFBS) of the (reference) chain
    viterbi_path: np.ndarray  # (T,) most likely (reference) path at the posterior median
    P: np.ndarray  # (D, K, K), (D, N, K, K) covariate-driven (every month), (D, A, K, K)
    alpha: np.ndarray  # (D, A, K) anchors' intercepts, model scale
    beta: np.ndarray  # (D, A, K, P) and loadings
    volatility_prob: np.ndarray | None = None  # (D, n, V) smoothed, with a volatility chain

    @property
    def switch_prob(self) -> np.ndarray:
        """(T,) posterior probability that the (reference) regime changed at t (sampled paths;
        zero in the months conditioned on and the first scored one)."""
        out = np.zeros(self.paths.shape[1])
        c = self.paths.shape[1] - self.predicted.shape[1]
        out[c + 1 :] = (self.paths[:, c + 1 :] != self.paths[:, c:-1]).mean(axis=0)
        return out


def draw_values(post: Any, model: Any) -> list[np.ndarray]:
    """Each free variable's posterior draws (draws stacked first), in `free_RVs` order."""
    return [stack_draws(post, rv.name) for rv in model.free_RVs]


def chain_passes(
    fn: ComponentFunction,
    values: list[np.ndarray],
    space: StateSpace,
    *,
    n_conditioning: int,
    per_series: bool,
    scored: np.ndarray,
    seed: int = 0,
) -> ChainPasses:
    """Forward filter, smoother and one FFBS path per draw, from the compiled graphs `fn` at
    each draw's parameter `values` (evaluated for `CHUNK` draws at a time in one vmapped call);
    `scored` (n, A) marks the months each series is scored."""
    from regimes import hmm  # deferred: PyTensor, kept off regimes.config's path (the family loads)

    n_draws = values[0].shape[0]
    c, k = n_conditioning, space.k
    rng = np.random.default_rng(seed)
    spans = batches(n_draws)
    size = spans[0][1]  # every batch padded to the first's size: one compilation
    first = fn.batched(*[v[:size] for v in values], size=size)  # the first batch
    first_draw = [f[0] for f in first]
    n, n_series, _ = first_draw[2].shape
    t_fit = n + c
    chains = n_series if per_series else 1
    to_regime = space.to_regime()  # (J, K)
    to_vol = space.to_volatility()
    out: dict[str, Any] = {
        "regime_prob": np.empty((n_draws, chains, t_fit, k)),
        "last_filtered": np.empty((n_draws, chains, k)),
        "predicted": np.empty((n_draws, n, first_draw[2].shape[2] if not per_series else k)),
        "filtered_prob": np.empty((n_draws, n, k)),
        "log_pred": np.zeros((n_draws, n)),
        "log_pred_series": np.empty((n_draws, n, n_series)),
        "paths": np.empty((n_draws, t_fit), dtype=np.int8),
        "P": np.empty((n_draws, *np.shape(first_draw[3]))),
        "alpha": np.empty((n_draws, *np.shape(first_draw[6]))),
        "beta": np.empty((n_draws, *np.shape(first_draw[7]))),
    }
    vol = np.empty((n_draws, n, space.n_volatility)) if to_vol is not None else None
    for lo, hi in spans:
        parts = first if lo == 0 else fn.batched(*[v[lo:hi] for v in values], size=size)
        li, lt, ll, p_all, _, _, alpha, beta, joint = parts
        out["P"][lo:hi], out["alpha"][lo:hi], out["beta"][lo:hi] = p_all, alpha, beta
        for ch in range(chains):
            if per_series:
                li_c, lt_c, own = li[:, ch], lt[:, ch], ll[:, :, ch : ch + 1]
                lags, regime_of = np.arange(k)[:, None], np.eye(k)
                ll_c = own[:, :, 0]  # (m, n, K)
            else:
                li_c, lt_c, own = li, lt, ll
                lags, regime_of = space.lags, to_regime
                ll_c = joint  # (m, n, J): every series' month jointly
            log_pred, filt, pred, smoothed, paths = hmm.posterior_passes(
                rng, li_c, lt_c, ll_c, lags=0 if per_series else space.p
            )  # pred: (m, n, J) one-step p(state_t | y_<t)
            out["regime_prob"][lo:hi, ch, c:] = smoothed @ regime_of
            for t in range(c):  # months conditioned on: the regime at that lag of the first state
                lag = min(c - t, lags.shape[1] - 1)
                out["regime_prob"][lo:hi, ch, t] = smoothed[:, 0] @ np.eye(k)[lags[:, lag]]
            out["last_filtered"][lo:hi, ch] = filt[:, -1] @ regime_of
            out["log_pred"][lo:hi] += log_pred
            with np.errstate(divide="ignore"):
                per = _lse(np.log(pred)[:, :, None, :] + own, axis=-1)  # (m, n, A|1)
            if per_series:
                out["log_pred_series"][lo:hi, :, ch] = per[..., 0]
            else:
                out["log_pred_series"][lo:hi] = per
            if ch == 0:
                out["predicted"][lo:hi] = pred
                out["filtered_prob"][lo:hi] = filt @ regime_of
                out["paths"][lo:hi, c:] = lags[paths, 0]
                for t in range(c):
                    out["paths"][lo:hi, t] = lags[paths[:, 0], min(c - t, lags.shape[1] - 1)]
                if vol is not None:
                    vol[lo:hi] = smoothed @ to_vol
    out["log_pred_series"][:, scored == 0] = np.nan
    med = fn(*[np.median(v, axis=0) for v in values])
    if per_series:
        path = hmm.viterbi(med[0][0], med[1][0], med[2][:, 0])
    else:
        path = space.regime[hmm.viterbi(med[0], space.dense_log_trans(med[1]), med[8])]
    path = np.concatenate([np.full(c, path[0]), path])
    return ChainPasses(viterbi_path=np.asarray(path), volatility_prob=vol, **out)
