"""Headline numbers of a run from `derived.nc`: the latest observation, its fair value, its distance
from fair value and the regime probabilities, all of one month, each as a median with its 90%
band, as (label, month, text) rows for report tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimes.figures import reference_view, vocabulary

LOW, MID, HIGH = 0.05, 0.5, 0.95


def _q(da: xr.DataArray, q: float) -> xr.DataArray | None:
    """The slice of `da` at quantile `q`, or None when that quantile is not stored."""
    qs = np.asarray(da["quantile"].values, dtype=float)
    hit = np.flatnonzero(np.isclose(qs, q))
    return da.isel(quantile=int(hit[0])) if hit.size else None


def _last_finite(da: xr.DataArray) -> int | None:
    """Index along `time` of the last finite value of a (time,) array, or None."""
    values = np.asarray(da.values, dtype=float)
    idx = np.flatnonzero(np.isfinite(values))
    return int(idx[-1]) if idx.size else None


def _month(derived: xr.Dataset, i: int) -> str:
    return f"{pd.Timestamp(derived['time'].values[i]):%Y-%m}"


def _num(x: float, units: str = "") -> str:
    """A number for readers: thousands separators, sensible precision, then its units."""
    if not np.isfinite(x):
        return "n/a"
    text = f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.1f}" if abs(x) >= 10 else f"{x:.3g}"
    if not units:
        return text
    return text + units if units == "%" else f"{text} {units}"


def headline_rows(derived: xr.Dataset) -> list[tuple[str, str, str]]:
    """(quantity, month, value) rows of the run's latest numbers, all of one month: the latest
    observation, its fair value (median, 90% band), its distance from fair value in the target's
    vocabulary (computed from the two rows above, so a reader can check it) and the regime
    probabilities; absent variables are skipped."""
    derived = reference_view(derived)  # a panel: its reference asset's numbers
    if "price" not in derived or derived["price"].dims != ("time",):
        return []
    i = _last_finite(derived["price"])
    if i is None:
        return []
    month, units = _month(derived, i), derived["price"].attrs.get("units", "")
    words = vocabulary(units)
    price = float(derived["price"].values[i])
    rows = [(words.level, month, _num(price, units))]
    fv = derived.get("fair_value")
    if fv is not None and set(fv.dims) == {"time", "quantile"}:
        at = fv.isel(time=i)
        mid, lo, hi = (_q(at, q) for q in (MID, LOW, HIGH))
        if mid is not None and np.isfinite(float(mid)):
            m = float(mid)
            text = _num(m, units)
            gap_units = "%" if not words.rate else "pp"
            gap = _num(words.gap_of(price, m), gap_units)
            if lo is not None and hi is not None:
                lo_v, hi_v = float(lo), float(hi)
                text += f" (90%: {_num(lo_v)} to {_num(hi_v)})"
                gap += (
                    f" (90%: {_num(words.gap_of(price, hi_v), gap_units)} to "
                    f"{_num(words.gap_of(price, lo_v), gap_units)})"
                )
            rows += [("fair value", month, text), (words.gap, month, gap)]
    return rows + _regime_rows(derived, i)


def _regime_rows(derived: xr.Dataset, i: int) -> list[tuple[str, str, str]]:
    """Each regime's probability at time index `i` with its 90% band (switching models)."""
    if "regime_prob" not in derived or "regime" not in derived.dims:
        return []
    prob = derived["regime_prob"].transpose("time", "regime")
    pq = None
    if "regime_prob_q" in derived:
        pq = derived["regime_prob_q"].transpose("time", "regime", "quantile")
    rows = []
    for r, name in enumerate(derived["regime"].values):
        text = f"{float(prob.values[i, r]):.2f}"
        lo = _q(pq, LOW) if pq is not None else None
        hi = _q(pq, HIGH) if pq is not None else None
        if lo is not None and hi is not None:
            text += f" (90%: {float(lo.values[i, r]):.2f} to {float(hi.values[i, r]):.2f})"
        rows.append((f"P(regime: {str(name).replace('_', ' ')})", _month(derived, i), text))
    return rows
