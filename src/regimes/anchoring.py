"""Is a model's fair value one? A check every family's derived quantities go through.

A fair value is an *anchor* only if the price returns to it. Two ways it is not:

- the deviation of the price from the fair value does not revert: an error-correction regime
  whose adjustment speed is near zero, or a level regression whose residual is a random walk,
  draws a band the price may leave for decades (spurious regression; Engle & Granger 1987);
- the fair value tracks the price month by month (a random-walk intercept): a fit, not a value.

The check runs on the in-sample log deviation of the price from the posterior-median fair value
d_t: a Dickey–Fuller regression Δd_t = c + (ρ − 1) d_{t−1} + e_t, whose t statistic must fall
below the 5% Engle–Granger critical value for the residual of a relation with as many estimated
slopes as the fair value has (MacKinnon 2010: −2.86 for a level alone, about −3.34 with one
factor, −3.75 with two; `reversion.eg_critical_value`) — deviations revert — with a half-life
ln 0.5 / ln ρ of at most `MAX_HALF_LIFE` months; and the median |d_t| must exceed `MIN_GAP`.
Switching families read each regime's check from their draws (`anchor_reverts_prob`: each draw's
sampled path says which months the regime holds); a one-step fair value (the loadings form) is
not a level and is not checked. The verdict, its numbers and a reason are written to
`derived.nc`'s attributes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.reversion import df_regression, eg_critical_value

REVERTS_PROB = 0.9  # a regime's fair value is an anchor when this share of draws reverts
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
    if derived.attrs.get("fair_value_kind") == "one-step":
        return {
            "anchor_identified": -1,
            "anchor_note": "a one-step fair value (last month moved by this month's drivers) is "
            "not a level the price returns to: not checked",
        }
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
    critical = eg_critical_value(estimated_slopes(derived), dev.size)
    gap = float(np.median(np.abs(dev))) if dev.size else math.nan
    out: dict[str, Any] = {
        "anchor_df_t": round(stats["df_t"], 3),
        "anchor_half_life_months": round(stats["half_life"], 1),
        "anchor_median_gap_pct": round(100 * gap, 3),
        "anchor_critical_value": round(critical, 3),
    }
    if not np.isfinite(stats["df_t"]):
        return {**out, "anchor_identified": -1, "anchor_note": "too few periods to check"}
    if gap < MIN_GAP:
        note = (
            f"the fair value tracks the price (median gap {100 * gap:.2f}%): a fit, not a fair "
            "value"
        )
        return {**out, "anchor_identified": 0, "anchor_note": note}
    if stats["df_t"] >= critical:
        note = (
            f"deviations from the fair value do not revert (Dickey–Fuller t {stats['df_t']:.2f} "
            f"≥ {critical:.2f}, the Engle–Granger 5% value): no identified anchor"
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
    stats = {k: v.item() for k, v in df_regression(dev, pairs).items()}
    if stats["n"] < max(min_pairs, 3):
        return {"df_t": math.nan, "rho": math.nan, "half_life": math.nan, "n": stats["n"]}
    return stats


def estimated_slopes(derived: xr.Dataset, regime: str | None = None) -> int:
    """How many slopes the fair value estimates (of one regime, if named): the factors with a
    coefficient in `coef` (NaN: outside a regime's anchor set, or a transition covariate)."""
    if "coef" not in derived or "term" not in derived["coef"].dims:
        return 0
    coef = derived["coef"]
    if regime is not None and "regime" in coef.dims:
        coef = coef.sel(regime=regime)
    other = [d for d in coef.dims if d != "term"]
    return (
        int(np.isfinite(coef.values).reshape(coef.sizes["term"], -1).any(axis=1).sum())
        if other
        else int(np.isfinite(coef.values).sum())
    )


def regime_anchor_check(derived: xr.Dataset) -> xr.Dataset:
    """Is each regime's own fair value an anchor while that regime holds? From the draws where
    the family gives them (`anchor_reverts_prob`: 1 when at least `REVERTS_PROB` of the draws
    revert, 0 when at most 1 − that, −1 in between or with too few months); else the check of
    `anchor_check` on the log deviation of the price from `fair_value_by_regime` (median), over
    the in-sample month pairs (t−1, t) that both have that regime as the most likely one.
    Returns `anchor_identified_by_regime` and `anchor_half_life_by_regime` (months) along
    `regime` — along (`asset`, `regime`) for a panel, each asset's notes prefixed by its name —
    and empty for a model without regimes or with a one-step fair value."""
    needed = ("fair_value_by_regime", "regime_prob", "price")
    if any(n not in derived for n in needed) or derived.attrs.get("fair_value_kind") == "one-step":
        return xr.Dataset()
    if "asset" in derived["price"].dims:
        return _per_asset(derived)
    if derived["price"].dims != ("time",):
        return xr.Dataset()
    regimes = derived["regime"].values
    per = months_per_period(derived)
    word = "quarter" if per == 3 else "month"
    if "anchor_reverts_prob" in derived:
        flags, half_lives, notes = _from_draws(derived, per)
    else:
        flags, half_lives, notes = _from_likely_months(derived, per, word)
    out = xr.Dataset(
        {
            "anchor_identified_by_regime": ("regime", np.array(flags, dtype=np.int8)),
            "anchor_half_life_by_regime": ("regime", np.array(half_lives, dtype=float)),
        },
        coords={"regime": regimes},
    )
    out["anchor_identified_by_regime"].attrs = {
        "meaning": "1: the price reverts to this regime's fair value in the periods it holds "
        "(Dickey–Fuller over those period pairs against the Engle–Granger 5% value); 0: no "
        "identified anchor; -1: inconclusive or too few periods",
        "notes": "; ".join(notes),
    }
    out["anchor_half_life_by_regime"].attrs = {"units": "months"}
    return out


def _from_draws(derived: xr.Dataset, per: int) -> tuple[list[int], list[float], list[str]]:
    """Flags, median half-lives (months) and notes from the family's per-draw check."""
    flags, half_lives, notes = [], [], []
    q = list(derived["quantile"].values)
    for name in derived["regime"].values:
        p = float(derived["anchor_reverts_prob"].sel(regime=name))
        half = float(derived["anchor_half_life_q"].sel(regime=name).values[q.index(0.5)]) * per
        half_lives.append(half)
        if not np.isfinite(p):
            flags.append(-1)
            notes.append(f"{name}: holds too rarely in the sampled paths to check")
        elif p >= REVERTS_PROB:
            flags.append(1)
            notes.append(f"{name}: deviations revert while it holds in {p:.0%} of draws (median "
                         f"half-life {half:.0f} months)")  # fmt: skip
        elif p <= 1 - REVERTS_PROB:
            flags.append(0)
            notes.append(f"{name}: no identified anchor (deviations revert in {p:.0%} of draws)")
        else:
            flags.append(-1)
            notes.append(f"{name}: inconclusive (deviations revert in {p:.0%} of draws)")
    return flags, half_lives, notes


def _from_likely_months(
    derived: xr.Dataset, per: int, word: str
) -> tuple[list[int], list[float], list[str]]:
    """Flags, half-lives (months) and notes from the months each regime is the most likely."""
    price = derived["price"].values.astype(float)
    prob = derived["regime_prob"].transpose("time", "regime").values
    fv = derived["fair_value_by_regime"].sel(quantile=0.5, method="nearest")
    fv = fv.transpose("time", "regime").values.astype(float)
    inside = fit_months(derived)
    likely = np.where(np.isfinite(prob).all(axis=1), np.nanargmax(np.nan_to_num(prob), axis=1), -1)
    flags, half_lives, notes = [], [], []
    for j, name in enumerate(derived["regime"].values):
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.where((price > 0) & (fv[:, j] > 0), np.log(price / fv[:, j]), np.nan)
        held = (likely == j) & inside
        stats = pairs_reversion(dev, held[:-1] & held[1:])
        stats["half_life"] *= per  # periods -> months
        critical = eg_critical_value(estimated_slopes(derived, str(name)), max(stats["n"], 20))
        if not np.isfinite(stats["df_t"]):
            flags.append(-1)
            notes.append(f"{name}: {stats['n']} {word} pairs in its spells, too few to check")
        elif stats["df_t"] >= critical or stats["half_life"] > MAX_HALF_LIFE:
            flags.append(0)
            notes.append(
                f"{name}: no identified anchor (Dickey–Fuller t {stats['df_t']:.2f} over "
                f"{stats['n']} {word}s, 5% value {critical:.2f}, half-life "
                f"{stats['half_life']:.0f} months)"
            )
        else:
            flags.append(1)
            notes.append(
                f"{name}: deviations revert while it holds (half-life "
                f"{stats['half_life']:.0f} months over {stats['n']} {word}s)"
            )
        half_lives.append(stats["half_life"])
    return flags, half_lives, notes


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
