"""Headline numbers of a run from `derived.nc`: the latest price, fair value, deviation and regime
probabilities, each as a median with its 90% band, as (label, text) rows for report tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

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


def _band(da: xr.DataArray, units: str = "") -> tuple[str, int] | None:
    """Median and 90% band at the latest time with a finite median, as (text, time index)."""
    mid = _q(da, MID)
    if mid is None:
        return None
    i = _last_finite(mid)
    if i is None:
        return None
    lo, hi = _q(da, LOW), _q(da, HIGH)
    text = _num(float(mid.values[i]), units)
    if lo is not None and hi is not None:
        pct = "%" if units == "%" else ""
        text += f" (90%: {_num(float(lo.values[i]), pct)} to {_num(float(hi.values[i]), pct)})"
    return text, i


def headline_rows(derived: xr.Dataset) -> list[tuple[str, str, str]]:
    """(quantity, month, value) rows of the run's latest numbers; absent variables are skipped."""
    from regimes.figures import reference_view

    derived = reference_view(derived)  # a panel: its reference asset's numbers
    rows: list[tuple[str, str, str]] = []
    if "price" in derived and derived["price"].dims == ("time",):
        i = _last_finite(derived["price"])
        if i is not None:
            units = derived["price"].attrs.get("units", "")
            value = _num(float(derived["price"].values[i]), units)
            rows.append(("latest price", _month(derived, i), value))
    for name, label in (
        ("fair_value", "fair value"),
        ("deviation_pct", "deviation from fair value"),
    ):
        if name in derived and set(derived[name].dims) == {"time", "quantile"}:
            units = "%" if name == "deviation_pct" else derived[name].attrs.get("units", "")
            got = _band(derived[name].transpose("time", "quantile"), units)
            if got:
                rows.append((label, _month(derived, got[1]), got[0]))
    return rows + _regime_rows(derived)


def _regime_rows(derived: xr.Dataset) -> list[tuple[str, str, str]]:
    """Latest probability of each regime with its 90% band (switching models only)."""
    if "regime_prob" not in derived or "regime" not in derived.dims:
        return []
    prob = derived["regime_prob"].transpose("time", "regime")
    i = _last_finite(prob.isel(regime=0))
    if i is None:
        return []
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
