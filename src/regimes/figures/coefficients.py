"""Time-varying coefficient paths: posterior bands per factor against the rolling-OLS baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from regimes.figures import memo_style, period_word, quantile_band


def plot_coefficients(derived: xr.Dataset, *, source: str = "") -> Figure:
    """One panel per factor: posterior median and 50/90% bands of `coef` over time, the rolling
    OLS coefficient dashed, a zero line and the fit window shaded; shows when a sign changed."""
    coef = derived["coef"].transpose("time", "term", "quantile")
    terms = [str(t) for t in coef["term"].values]
    if not terms:
        raise ValueError("derived['coef'] has no terms to plot")
    time = pd.DatetimeIndex(derived["time"].values)
    in_sample = np.asarray(derived["in_sample"].values, dtype=bool)
    rolling = derived.get("rolling_coef")
    window = derived.attrs.get("rolling_window", "")
    with memo_style() as plt:
        fig, axes = plt.subplots(
            len(terms), 1, sharex=True, figsize=(8, 1.0 + 2.4 * len(terms)), squeeze=False
        )
        for ax, term in zip(axes[:, 0], terms, strict=True):
            c = coef.sel(term=term)
            quantile_band(ax, time, c, color="C0", alpha=0.15, label="90% band")
            quantile_band(ax, time, c, 0.25, 0.75, color="C0", alpha=0.3, label="50% band")
            ax.plot(time, c.sel(quantile=0.5), color="C0", label="posterior median")
            if rolling is not None:
                ax.plot(
                    time,
                    rolling.sel(term=term),
                    color="C2",
                    ls="--",
                    lw=1.1,
                    label=f"rolling OLS ({window} periods)" if window else "rolling OLS",
                )
            ax.axhline(0.0, color="0.3", lw=0.8, zorder=1)
            if in_sample.any():
                ax.axvspan(
                    time[in_sample][0],
                    time[in_sample][-1],
                    color="0.5",
                    alpha=0.08,
                    lw=0,
                    label=f"fit window {time[in_sample][0]:%Y-%m}–{time[in_sample][-1]:%Y-%m}",
                )
            ax.set_ylabel(f"{term.replace('_', ' ')}\ncoefficient")
        axes[0, 0].legend(loc="upper left", ncol=3, fontsize=7.5)
        axes[-1, 0].set_xlabel(period_word(time))
        title = derived.attrs.get("experiment", "coefficients")
        axes[0, 0].set_title(f"{title}: time-varying coefficients")
        fig.tight_layout()
        units = coef.attrs.get("units", "")
        notes = [f"Units: {units}." if units else "", f"Source: {source}" if source else ""]
        fig.text(
            0.01, -0.01, "\n".join(n for n in notes if n), fontsize=7.5, color="0.35", va="top"
        )
    return fig
