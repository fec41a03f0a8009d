"""Spells of a probability path: the month a regime's current spell began, and whole months
between two dates (shared by the study's anchor answer and the real-time sweep)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def months_between(start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Whole months from `start` to `end`."""
    return (end.year - start.year) * 12 + end.month - start.month


def spell_start(prob: np.ndarray, time: pd.DatetimeIndex, level: float = 0.5) -> pd.Timestamp:
    """First month of the run of months with `prob` >= level that reaches the last observed month
    (the month after the last spell below); NaT when the last month is below `level`."""
    observed = ~np.isnan(prob)
    prob, time = prob[observed], time[observed]
    above = prob >= level
    if not len(above) or not above[-1]:  # not in that regime at the end: no shift into it
        return pd.NaT
    below = np.flatnonzero(~above)
    return time[int(below[-1]) + 1 if len(below) else 0]


def current_spell_starts(paths: np.ndarray) -> np.ndarray:
    """For each sampled regime path (D, T), the index of the first month of the spell that
    holds the last month: the month after the path's last change (0: no change in the path)."""
    paths = np.asarray(paths)
    changes = paths[:, 1:] != paths[:, :-1]  # changes[:, j]: a new spell starts at j + 1
    from_end = np.argmax(changes[:, ::-1], axis=1)  # the last change, counted from the end
    return np.where(changes.any(axis=1), paths.shape[1] - 1 - from_end, 0)


def spell_start_probability(paths: np.ndarray, k: int) -> np.ndarray:
    """(T, K): the share of sampled paths (D, T) whose last month is in regime k and whose
    current spell began in month t — the posterior of "in which regime, since when" when the
    paths are posterior draws (FFBS). Sums to one over months and regimes."""
    paths = np.asarray(paths)
    starts = current_spell_starts(paths)
    out = np.zeros((paths.shape[1], k))
    np.add.at(out, (starts, paths[:, -1]), 1.0)
    return out / len(paths)


def spell_start_quantiles(prob: np.ndarray, time: pd.DatetimeIndex, q: np.ndarray) -> np.ndarray:
    """(K, Q) dates: quantiles of the start month of the current spell given that it is in
    regime k (NaT where no path ends in k), from `spell_start_probability` (T, K)."""
    out = np.full((prob.shape[1], len(q)), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    for j in range(prob.shape[1]):
        total = prob[:, j].sum()
        if total <= 0:
            continue
        cdf = np.cumsum(prob[:, j]) / total
        for i, level in enumerate(q):
            out[j, i] = time.values[int(np.searchsorted(cdf, level - 1e-12))]
    return out
