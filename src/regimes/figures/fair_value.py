"""The target against its posterior fair-value bands, with the fit window shaded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimes.figures import (
    memo_style,
    period_word,
    quantile_band,
    reference_view,
    target_label,
    target_name,
    target_units,
    vocabulary,
)


def plot_fair_value(derived: xr.Dataset, *, log_scale: bool = False, source: str = ""):
    """Draw the target (named and in units as derived.nc records them) vs fair value (median,
    50% and 90% bands), annotated with the latest observation's distance from fair value in the
    target's vocabulary (% deviation of a price, percentage-point gap of a rate); returns the
    matplotlib Figure."""
    derived = reference_view(derived)  # a panel: its reference asset
    with memo_style() as plt:
        fig, ax = plt.subplots()
        time = pd.DatetimeIndex(derived["time"].values)
        fv = derived["fair_value"]
        name = target_name(derived)
        quantile_band(ax, time, fv, color="C0", alpha=0.15, label="fair value, 90% band")
        quantile_band(ax, time, fv, 0.25, 0.75, color="C0", alpha=0.3, label="50% band")
        ax.plot(time, fv.sel(quantile=0.5), color="C0", label="fair value, median")
        ax.plot(
            time,
            derived["price"],
            color="C1",
            lw=1.5,
            label=name,
        )
        in_sample = np.asarray(derived["in_sample"].values, dtype=bool)
        if in_sample.any():
            ax.axvspan(
                time[in_sample][0],
                time[in_sample][-1],
                color="0.5",
                alpha=0.08,
                lw=0,
                label=f"fit window {time[in_sample][0]:%Y-%m}–{time[in_sample][-1]:%Y-%m}",
            )
        if log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(target_label(derived))
        ax.set_xlabel(period_word(time))
        title = derived.attrs.get("experiment", "fair value")
        ax.set_title(f"{title}: {name} and posterior fair value")
        observed = np.flatnonzero(np.isfinite(derived["price"].values))
        words = vocabulary(target_units(derived))
        i = observed[-1]  # the latest observation: price and fair value of the same period
        price, at = float(derived["price"].values[i]), fv.isel(time=i)
        mid, lo, hi = (words.gap_of(price, float(at.sel(quantile=q))) for q in (0.5, 0.95, 0.05))
        spec, u = ("+.2f", " pp") if words.rate else ("+.0f", "%")
        name = "gap" if words.rate else "deviation"
        ax.annotate(
            f"{time[i]:%Y-%m}: {name} {mid:{spec}}{u} (90%: {lo:{spec}}{u} to {hi:{spec}}{u})",
            xy=(0.01, 0.97),
            xycoords="axes fraction",
            va="top",
            fontsize=8.5,
        )
        ax.legend(loc="lower right")
        if source:
            fig.text(
                0.01, -0.02, f"Source: {source}", fontsize=7.5, color="0.35", ha="left", va="top"
            )
        fig.tight_layout()
    return fig
