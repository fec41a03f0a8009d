"""derived.nc variables every chain family writes the same way: regime probabilities and their
bands, durations, the reported transition matrix, the most likely path, switch probabilities,
and change-point break dates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regimes.draws import quantiles as quantiles_of


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
