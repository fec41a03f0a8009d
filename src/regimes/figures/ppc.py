"""Posterior predictive check figure: one-step-ahead bands over the data, and PIT calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from regimes.figures import (
    memo_style,
    quantile_band,
    reference_view,
    target_label,
    target_name,
)


def plot_ppc(derived: xr.Dataset, *, log_scale: bool = False) -> Figure:
    """Observed target inside its one-step-ahead 90% predictive band, and a PIT histogram that is
    flat when the predictive is calibrated; the checks and any flags are printed beside it."""
    derived = reference_view(derived)  # a panel: its reference asset
    with memo_style() as plt:
        fig, (ax, axh) = plt.subplots(
            1, 2, figsize=(10, 3.8), width_ratios=[2.2, 1], layout="constrained"
        )
        scored = np.isfinite(derived["pit"].values)
        time = pd.DatetimeIndex(derived["time"].values)[scored]
        band = derived["predictive_q"].isel(time=scored)
        observed = derived["price"].values[scored]
        quantile_band(ax, time, band, color="C0", alpha=0.3, label="one-step 90% predictive band")
        ax.plot(time, observed, color="0.1", lw=0.8, label=f"observed {target_name(derived)}")
        if log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(target_label(derived))
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("one-step-ahead posterior predictive")

        pit = derived["pit"].values[scored]
        bins = 20
        axh.hist(pit, bins=bins, range=(0, 1), density=True, color="C0", alpha=0.7)
        se = np.sqrt(bins / len(pit))  # sd of a bin's density under uniformity (approx.)
        axh.axhspan(1 - 2 * se, 1 + 2 * se, color="0.85", zorder=0)
        axh.axhline(1.0, color="0.3", lw=1)
        axh.set_xlabel("PIT = P(y_rep ≤ y)")
        ok = bool(derived.attrs.get("ppc_ok", 1))
        axh.set_title("calibrated" if ok else "miscalibrated", color="0.2" if ok else "#b2182b")
        checks = derived.get("ppc_check")  # the checks as derived.nc stores them (regimes.cf)
        text = "\n".join(
            f"{str(name).replace('PIT normal-score ', 'PIT z ')}: "
            f"{float(checks.sel(check=name, statistic='value')):.2f}"
            for name in (checks["check"].values if checks is not None else [])
        )
        axh.annotate(text, xy=(0.02, 0.02), xycoords="axes fraction", fontsize=6.5, va="bottom")
        title = derived.attrs.get("experiment", "regimes")
        fig.suptitle(f"{title}: posterior predictive check")
    return fig
