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
