"""Forecast fans: the target's recent values and fair value, then each scenario's fair value (median, 90% band)
and, for switching models, the probability of the last regime per scenario."""

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
)


def plot_forecast(
    derived: xr.Dataset,
    forecast: xr.Dataset,
    *,
    years: int = 10,
    log_scale: bool = False,
    regime: str | None = None,
):
    """Draw the forecast figure (returns the matplotlib Figure).

    `regime`: whose probability the lower panel shows (default: the last regime)."""
    derived = reference_view(derived)  # a panel: its reference asset
    time = pd.DatetimeIndex(derived["time"].values)
    start = time[-1] - pd.DateOffset(years=years)
    keep = time >= start
    hist = derived.isel(time=np.flatnonzero(keep))
    ht = time[keep]
    ft = pd.DatetimeIndex(forecast["time"].values)
    switching = "regime_prob" in forecast and "regime_prob" in derived
    regime = regime or (str(forecast["regime"].values[-1]) if switching else None)
    with memo_style() as plt:
        if switching:
            fig, (ax, axp) = plt.subplots(
                2, 1, sharex=True, figsize=(8, 6), gridspec_kw={"height_ratios": [2.2, 1]}
            )
        else:
            fig, ax = plt.subplots(figsize=(8, 4.5))
            axp = None
        fv = hist["fair_value"]
        quantile_band(ax, ht, fv, color="0.6", alpha=0.25)
        ax.plot(ht, fv.sel(quantile=0.5), color="0.4", lw=1.2, label="fair value (history)")
        ax.plot(
            ht,
            hist["price"],
            color="black",
            lw=1.4,
            label=target_name(derived),
        )
        for i, name in enumerate(forecast["scenario"].values):
            f = forecast["fair_value"].sel(scenario=name)
            colour = f"C{i}"
            quantile_band(ax, ft, f, color=colour, alpha=0.15)
            ax.plot(ft, f.sel(quantile=0.5), color=colour, lw=1.6, label=f"{name} (90% band)")
            if axp is not None:
                p = forecast["regime_prob"].sel(scenario=name, regime=regime)
                pq = forecast["regime_prob_q"].sel(scenario=name, regime=regime)
                quantile_band(axp, ft, pq, color=colour, alpha=0.12)
                axp.plot(ft, p, color=colour, lw=1.4, label=str(name))
        for a in (ax, axp):
            if a is not None:
                a.axvline(ft[0], color="0.5", lw=0.8, ls=":")
        if log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(target_label(derived))
        title = forecast.attrs.get("experiment", "") or derived.attrs.get("experiment", "")
        ax.set_title(f"{title}: fair value forecast by scenario")
        ax.legend(loc="upper left", fontsize=8)
        if axp is not None:
            axp.plot(
                ht, hist["regime_prob"].sel(regime=regime), color="0.4", lw=1.0, label="history"
            )
            axp.set_ylim(0, 1)
            axp.set_ylabel(f"P({regime})")
            axp.set_xlabel(period_word(time))
        else:
            ax.set_xlabel(period_word(time))
        fig.tight_layout()
    return fig
