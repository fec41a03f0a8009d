"""derived.nc variables every chain family writes the same way: regime probabilities and their
bands, durations, the reported transition matrix, the most likely path, switch probabilities,
and change-point break dates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regimes.draws import quantiles as quantiles_of
from regimes.spells import spell_start_probability, spell_start_quantiles

# deferred to the functions that use them: SciPy, statsmodels (docs/modules.md#imports)


def break_outputs(prob: np.ndarray, names: list[str], time: pd.DatetimeIndex, q: np.ndarray):
    """Change-point outputs from left-to-right regime probabilities (D, N, K).

    Regimes only move forward, so P(break m by t) = P(s_t >= m) and the probability the break
    happened at t is its increase from t-1. Returns break labels, break_prob (N, M) and the
    break-date quantiles (M, Q) read off the posterior-mean cumulative probability."""
    reached = np.cumsum(prob[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # (D, N, M): P(s_t >= m)
    cdf = np.nan_to_num(reached.mean(axis=0))  # (N, M)
    at = np.diff(cdf, axis=0, prepend=0.0)
    dates = np.full((cdf.shape[1], len(q)), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    for m in range(cdf.shape[1]):
        for i, level in enumerate(q):
            hit = np.flatnonzero(cdf[:, m] >= level)
            if hit.size:
                dates[m, i] = time.values[hit[0]]
    labels = [f"{names[m]}->{names[m + 1]}" for m in range(len(names) - 1)]
    return labels, at, dates


def chain_variables(
    prob: np.ndarray,
    P: np.ndarray,
    viterbi_path: np.ndarray,
    switch_prob: np.ndarray,
    fit: np.ndarray,
    names: list[str],
    q: np.ndarray,
    *,
    time_varying: bool,
) -> dict[str, Any]:
    """derived.nc's variables of one regime chain: probabilities (D, N, K) and their quantiles,
    expected durations and the reported transition matrix from P ((D, K, K), or with
    `time_varying` transitions (D, N, K, K): averaged over the fit window), the Viterbi path and
    the switch probability over the fit window."""
    with np.errstate(divide="ignore"):
        durations = 1.0 / (1.0 - np.diagonal(P, axis1=-2, axis2=-1))  # (D, [N,] K)
    P_report = P[:, fit].mean(axis=1) if time_varying else P
    dur_dims = ("time", "regime", "quantile") if time_varying else ("regime", "quantile")
    absorbing = np.isinf(durations).all(axis=0)  # a change point's last regime never ends
    durations = np.where(np.isinf(durations), 0.0, durations)
    path = np.full(len(fit), "", dtype=object)
    path[np.flatnonzero(fit)] = np.asarray(names, dtype=object)[viterbi_path]
    switch = np.full(len(fit), np.nan)
    switch[np.flatnonzero(fit)] = switch_prob
    return {
        "regime_prob": (("time", "regime"), prob.mean(axis=0)),
        "regime_prob_q": (("time", "regime", "quantile"), quantiles_of(prob, q)),
        "expected_duration": (
            dur_dims,
            np.where(absorbing[..., None], np.inf, quantiles_of(durations, q)),
            {"units": "periods"},
        ),
        "transition": (("regime", "regime_to", "quantile"), quantiles_of(P_report, q)),
        "most_likely_regime": ("time", path.astype(str)),
        "switch_prob": ("time", switch),
    }


def spell_variables(
    paths: np.ndarray, fit: np.ndarray, time: pd.DatetimeIndex, names: list[str], q: np.ndarray
) -> dict[str, Any]:
    """derived.nc's answer to "in which regime, since when", from sampled regime paths (D, T)
    over the fit window (`fit` marks its months among `time`): `spell_start_prob` (time,
    regime), the posterior probability that the spell holding the latest fit month is in that
    regime and began in month t, and `spell_start` (regime, quantile), the quantiles of that
    start month given the regime."""
    inside = np.flatnonzero(fit)
    prob_fit = spell_start_probability(paths, len(names))  # (T, K)
    prob = np.zeros((len(fit), len(names)))
    prob[inside] = prob_fit
    fit_time = pd.DatetimeIndex(time[inside])
    first = f"{fit_time[0]:%Y-%m}"
    return {
        "spell_start_prob": (
            ("time", "regime"),
            prob,
            {
                "long_name": "probability that the current spell is in this regime and began in "
                "this month",
                "note": "from one sampled regime path per posterior draw (FFBS); the spell holding "
                f"the latest fit-window month; mass at {first} means at or before it",
            },
        ),
        "spell_start": (
            ("regime", "quantile"),
            spell_start_quantiles(prob_fit, fit_time, q),
            {"long_name": "start month of the current spell, given that it is in this regime"},
        ),
    }


def quantiles_to_infinity(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`np.quantile` (linear interpolation) of values that may be +inf (a half-life without
    reversion): a quantile interpolated towards an infinite value is infinite, where NumPy's
    interpolation gives NaN (inf - inf) and a warning."""
    s = np.sort(np.asarray(values, dtype=float))
    h = (len(s) - 1) * np.asarray(q, dtype=float)
    lo, hi = np.floor(h).astype(int), np.ceil(h).astype(int)
    with np.errstate(invalid="ignore"):
        lerp = s[lo] + (h - lo) * (s[hi] - s[lo])
    return np.where(np.isposinf(s[hi]), np.inf, lerp)


def regime_reversion(
    fv_k: np.ndarray,
    price: np.ndarray,
    paths: np.ndarray,
    fit: np.ndarray,
    n_terms: np.ndarray,
    q: np.ndarray,
    min_pairs: int = 24,
) -> dict[str, Any]:
    """Is each regime's fair value an anchor while that regime holds, read from the draws: in
    each draw, the Dickey–Fuller regression of the log deviation of the price from that draw's
    fair value of the regime over the month pairs its sampled path spends in the regime, against
    the Engle–Granger critical value for the regime's `n_terms` estimated slopes. Returns
    `anchor_reverts_prob` (regime: the share of draws that reject "no reversion" at 5%; NaN
    where fewer than `min_pairs` pairs) and `anchor_half_life_q` (regime, quantile; periods).
    `fv_k` (D, N, K) and `price` (N,) in natural units; `paths` (D, T) over the fit window."""
    # deferred: statsmodels and scipy, kept off regimes.config's path (the family loads)
    from regimes.reversion import df_regression, eg_critical_value

    inside = np.flatnonzero(fit)
    p = np.asarray(price, dtype=float)[inside]
    fv = fv_k[:, inside]  # (D, T, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.where((p[None, :, None] > 0) & (fv > 0), np.log(p[None, :, None] / fv), np.nan)
    k = fv_k.shape[-1]
    prob, half_q, critical = np.full(k, np.nan), np.full((k, len(q)), np.nan), np.full(k, np.nan)
    for j in range(k):
        held = paths == j
        stats = df_regression(dev[..., j], held[:, :-1] & held[:, 1:])
        enough = stats["n"] >= min_pairs
        if enough.mean() < 0.5:  # the regime holds too rarely to check in most draws
            continue
        critical[j] = eg_critical_value(int(n_terms[j]), int(np.median(stats["n"][enough])))
        prob[j] = float(np.mean(stats["df_t"][enough] < critical[j]))
        half_q[j] = quantiles_to_infinity(stats["half_life"][enough], q)
    return {
        "anchor_reverts_prob": (
            ("regime",),
            prob,
            {
                "long_name": "share of draws in which the price reverts to the regime's fair value "
                "while the regime holds",
                "note": "per draw: Dickey-Fuller t of the log deviation over the months its sampled "
                "path spends in the regime, against the Engle-Granger 5% critical value for the "
                "regime's estimated slopes (MacKinnon 2010)",
                "critical_values": critical.tolist(),
            },
        ),
        "anchor_half_life_q": (
            ("regime", "quantile"),
            half_q,
            {"long_name": "half-life of deviations while the regime holds", "units": "periods"},
        ),
    }
