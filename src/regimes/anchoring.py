"""Is a model's fair value one? A check every family's derived quantities go through.

A fair value is an *anchor* only if the price returns to it. Two ways it is not:

- the deviation of the price from the fair value does not revert: an error-correction regime
  whose adjustment speed is near zero, or a level regression whose residual is a random walk,
  draws a band the price may leave for decades (spurious regression; Engle & Granger 1987);
- the fair value tracks the price month by month (a random-walk intercept): a fit, not a value.

The check runs on the in-sample log deviation of the price from the posterior-median fair value
d_t: a Dickey–Fuller regression Δd_t = c + (ρ − 1) d_{t−1} + e_t, whose t statistic must fall
below the 5% critical value with a constant (−2.86; MacKinnon 2010) — deviations revert — with
a half-life ln 0.5 / ln ρ of at most `MAX_HALF_LIFE` months; and the median |d_t| must exceed
`MIN_GAP`. The verdict, its numbers and a reason are written to `derived.nc`'s attributes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

DF_CRITICAL_5PCT = -2.86  # Dickey–Fuller, constant, no trend, large sample (MacKinnon 2010)
MAX_HALF_LIFE = 120.0  # months: deviations that take longer than ten years to halve
MIN_GAP = 0.005  # median |log deviation| below 0.5%: the "fair value" follows the price
MIN_REGIME_PAIRS = 24  # consecutive months both in the regime: fewer and the regime is unchecked


def fit_months(derived: xr.Dataset) -> np.ndarray:
    """The months of `derived` inside the fit window (`in_sample`; all of them without it)."""
    if "in_sample" in derived:
        return derived["in_sample"].values.astype(bool)
    return np.ones(derived.sizes["time"], dtype=bool)


def months_per_period(derived: xr.Dataset) -> int:
    """Months in one period of `derived`'s time axis (3 for a quarterly run): half-lives are
    reported in months whatever the frequency, so `anchor_half_life_months` means what it says."""
    from regimes.figures import period_word

    return 3 if period_word(derived["time"].values) == "quarter" else 1


def deviation_reversion(dev: np.ndarray) -> dict[str, float]:
    """Dickey–Fuller t statistic, ρ and half-life (months) of a deviation series."""
    dev = np.asarray(dev, dtype=float)
    dev = dev[np.isfinite(dev)]
    if dev.size < 24:
        return {"df_t": math.nan, "rho": math.nan, "half_life": math.nan}
    stats = pairs_reversion(dev, np.ones(dev.size - 1, dtype=bool), min_pairs=1)
    return {k: v for k, v in stats.items() if k != "n"}


def anchor_check(derived: xr.Dataset) -> dict[str, Any]:
    """The verdict on `derived`'s fair value: `anchor_identified` (1/0/−1 for "not checked"),
    `anchor_note` and the numbers behind them."""
    if "fair_value" not in derived or "price" not in derived:
        return {"anchor_identified": -1, "anchor_note": "no fair value to check"}
    price = derived["price"]
    if price.dims != ("time",):
        return {"anchor_identified": -1, "anchor_note": f"not checked for dims {price.dims}"}
    fv = derived["fair_value"].sel(quantile=0.5, method="nearest")
    inside = fit_months(derived)
    p, f = price.values.astype(float)[inside], fv.values.astype(float)[inside]
    ok = np.isfinite(p) & np.isfinite(f) & (p > 0) & (f > 0)
    dev = np.log(p[ok] / f[ok]) if ok.any() else np.array([])
    stats = deviation_reversion(dev)
    stats["half_life"] *= months_per_period(derived)  # periods -> months
    gap = float(np.median(np.abs(dev))) if dev.size else math.nan
    out: dict[str, Any] = {
        "anchor_df_t": round(stats["df_t"], 3),
        "anchor_half_life_months": round(stats["half_life"], 1),
        "anchor_median_gap_pct": round(100 * gap, 3),
    }
    if not np.isfinite(stats["df_t"]):
        return {**out, "anchor_identified": -1, "anchor_note": "too few periods to check"}
    if gap < MIN_GAP:
        note = (
            f"the fair value tracks the price (median gap {100 * gap:.2f}%): a fit, not a fair "
            "value"
        )
        return {**out, "anchor_identified": 0, "anchor_note": note}
    if stats["df_t"] >= DF_CRITICAL_5PCT:
        note = (
            f"deviations from the fair value do not revert (Dickey–Fuller t {stats['df_t']:.2f} "
            f"≥ {DF_CRITICAL_5PCT}): no identified anchor"
        )
        return {**out, "anchor_identified": 0, "anchor_note": note}
    if stats["half_life"] > MAX_HALF_LIFE:
        note = (
            f"deviations revert too slowly (half-life {stats['half_life']:.0f} months > "
            f"{MAX_HALF_LIFE:.0f}): no identified anchor"
        )
        return {**out, "anchor_identified": 0, "anchor_note": note}
    note = f"deviations revert (half-life {stats['half_life']:.0f} months)"
    return {**out, "anchor_identified": 1, "anchor_note": note}


def pairs_reversion(
    dev: np.ndarray, pairs: np.ndarray, min_pairs: int = MIN_REGIME_PAIRS
) -> dict[str, float]:
    """The Dickey–Fuller regression Δd_t = c + (ρ − 1) d_{t−1} on the month pairs (t−1, t)
    marked by `pairs` (bool, length len(dev) − 1) only: a regime's spells, never the jump
    between two. Returns the t statistic of ρ − 1, ρ, the half-life and the pairs used."""
    lag, change = dev[:-1][pairs], np.diff(dev)[pairs]
    ok = np.isfinite(lag) & np.isfinite(change)
    lag, change = lag[ok], change[ok]
    if lag.size < max(min_pairs, 3):
        return {"df_t": math.nan, "rho": math.nan, "half_life": math.nan, "n": int(lag.size)}
    x = np.column_stack([np.ones_like(lag), lag])
    coef, *_ = np.linalg.lstsq(x, change, rcond=None)
    resid = change - x @ coef
    s2 = resid @ resid / max(len(change) - 2, 1)
    cov = s2 * np.linalg.inv(x.T @ x)
    slope, se = float(coef[1]), float(math.sqrt(cov[1, 1]))
    rho = 1.0 + slope
    # rho <= 0: the deviation is gone (or overshoots) within a month; rho >= 1: never reverts
    half_life = (
        math.log(0.5) / math.log(rho) if 0.0 < rho < 1.0 else (0.0 if rho <= 0 else math.inf)
    )
    df_t = slope / se if se > 0 else math.nan
    return {"df_t": df_t, "rho": rho, "half_life": half_life, "n": int(lag.size)}


def regime_anchor_check(derived: xr.Dataset) -> xr.Dataset:
    """Is each regime's own fair value an anchor while that regime holds? The check of
    `anchor_check` on the log deviation of the price from `fair_value_by_regime` (median), over
    the in-sample month pairs (t−1, t) that both have that regime as the most likely one.
    Returns `anchor_identified_by_regime` (1/0/−1 for too few months) and
    `anchor_half_life_by_regime` (months) along `regime` — along (`asset`, `regime`) for a
    panel, each asset's notes prefixed by its name — and empty for a model without regimes."""
    needed = ("fair_value_by_regime", "regime_prob", "price")
    if any(n not in derived for n in needed):
        return xr.Dataset()
    if "asset" in derived["price"].dims:
        return _per_asset(derived)
    if derived["price"].dims != ("time",):
        return xr.Dataset()
    regimes = derived["regime"].values
    price = derived["price"].values.astype(float)
    prob = derived["regime_prob"].transpose("time", "regime").values
    fv = derived["fair_value_by_regime"].sel(quantile=0.5, method="nearest")
    fv = fv.transpose("time", "regime").values.astype(float)
    inside = fit_months(derived)
    per = months_per_period(derived)
    word = "quarter" if per == 3 else "month"
    likely = np.where(np.isfinite(prob).all(axis=1), np.nanargmax(np.nan_to_num(prob), axis=1), -1)
    flags, half_lives, notes = [], [], []
    for j, name in enumerate(regimes):
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.where((price > 0) & (fv[:, j] > 0), np.log(price / fv[:, j]), np.nan)
        held = (likely == j) & inside
        stats = pairs_reversion(dev, held[:-1] & held[1:])
        stats["half_life"] *= per  # periods -> months
        if not np.isfinite(stats["df_t"]):
            flags.append(-1)
            notes.append(f"{name}: {stats['n']} {word} pairs in its spells, too few to check")
        elif stats["df_t"] >= DF_CRITICAL_5PCT or stats["half_life"] > MAX_HALF_LIFE:
            flags.append(0)
            notes.append(
                f"{name}: no identified anchor (Dickey–Fuller t {stats['df_t']:.2f} over "
                f"{stats['n']} {word}s, half-life {stats['half_life']:.0f} months)"
            )
        else:
            flags.append(1)
            notes.append(
                f"{name}: deviations revert while it holds (half-life "
                f"{stats['half_life']:.0f} months over {stats['n']} {word}s)"
            )
        half_lives.append(stats["half_life"])
    coords = {"regime": regimes}
    out = xr.Dataset(
        {
            "anchor_identified_by_regime": ("regime", np.array(flags, dtype=np.int8)),
            "anchor_half_life_by_regime": ("regime", np.array(half_lives, dtype=float)),
        },
        coords=coords,
    )
    out["anchor_identified_by_regime"].attrs = {
        "meaning": "1: the price reverts to this regime's fair value in the periods it holds "
        "(Dickey–Fuller over those period pairs); 0: no identified anchor; -1: too few periods",
        "notes": "; ".join(notes),
    }
    out["anchor_half_life_by_regime"].attrs = {"units": "months"}
    return out


def _per_asset(derived: xr.Dataset) -> xr.Dataset:
    """`regime_anchor_check` of every asset of a panel on the shared chain's regimes."""
    assets = [str(a) for a in derived["asset"].values]
    checks = [regime_anchor_check(derived.sel(asset=a, drop=True)) for a in assets]
    out = xr.concat(checks, dim=pd.Index(assets, name="asset"), combine_attrs="drop_conflicts")
    notes = [c["anchor_identified_by_regime"].attrs["notes"] for c in checks]
    out["anchor_identified_by_regime"].attrs = {
        **checks[0]["anchor_identified_by_regime"].attrs,
        "notes": "; ".join(
            f"{a} {n}" for a, joined in zip(assets, notes, strict=True) for n in joined.split("; ")
        ),
    }
    return out
