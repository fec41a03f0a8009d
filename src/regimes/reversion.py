"""Does a deviation revert? The Dickey–Fuller regression Δd_t = c + (ρ − 1) d_{t−1} + e_t on
chosen month pairs, vectorised over leading axes (posterior draws), and the critical value its t
statistic must fall below when d is the residual of an *estimated* relation: Engle–Granger's,
from MacKinnon's (2010) response surfaces, which grow with the number of estimated regressors
(−2.86 for a fixed level, about −3.34 with one regressor, −3.75 with two, at 5%)."""

from __future__ import annotations

import math

import numpy as np
from statsmodels.tsa.adfvalues import mackinnoncrit


def eg_critical_value(n_regressors: int, nobs: int, level: float = 0.05) -> float:
    """The 5% (or 1% / 10%) critical value of the Engle–Granger test with a constant for a
    residual of a relation with `n_regressors` estimated slopes, on `nobs` observations
    (MacKinnon 2010; n_regressors = 0 is the Dickey–Fuller test of a deviation from a level)."""
    column = {0.01: 0, 0.05: 1, 0.10: 2}[level]
    n = max(int(nobs), 20)
    return float(mackinnoncrit(1 + n_regressors, "c", n)[column])


def df_regression(dev: np.ndarray, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """Dickey–Fuller regression of `dev` (..., T) on the month pairs (t−1, t) marked by `pairs`
    (..., T − 1) only (a regime's spells, never the jump between two); every leading axis is a
    separate regression. Returns arrays of the t statistic of ρ − 1, ρ, the half-life ln 0.5 /
    ln ρ (0 when ρ ≤ 0, inf when ρ ≥ 1) and the number of pairs used; NaN where fewer than 3."""
    dev = np.asarray(dev, dtype=float)
    lag, change = dev[..., :-1], np.diff(dev, axis=-1)
    w = (np.asarray(pairs, bool) & np.isfinite(lag) & np.isfinite(change)).astype(float)
    lag, change = np.where(w > 0, lag, 0.0), np.where(w > 0, change, 0.0)
    n = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = (w * lag).sum(-1) / n, (w * change).sum(-1) / n
        sxx = (w * (lag - mx[..., None]) ** 2).sum(-1)
        sxy = (w * (lag - mx[..., None]) * (change - my[..., None])).sum(-1)
        slope = sxy / sxx
        resid = change - my[..., None] - slope[..., None] * (lag - mx[..., None])
        s2 = (w * resid**2).sum(-1) / np.maximum(n - 2, 1)
        t = slope / np.sqrt(s2 / sxx)
        rho = 1.0 + slope
        half = np.where(
            (rho > 0) & (rho < 1), np.log(0.5) / np.log(np.clip(rho, 1e-300, 1 - 1e-16)), np.nan
        )
    half = np.where(rho <= 0, 0.0, np.where(rho >= 1, math.inf, half))
    few = n < 3
    return {
        "df_t": np.where(few, np.nan, t),
        "rho": np.where(few, np.nan, rho),
        "half_life": np.where(few, np.nan, half),
        "n": n.astype(int),
    }
