"""Panel figures: every asset's price and fair-value bands under the shared regime ribbon, and a
forest plot of each asset's regime sensitivities against the pooled (population) ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from regimes.figures import memo_style, quantile_band, save_figure


def _colours(plt, k: int) -> list[str]:
    """One colour per regime from the memo style's colour cycle."""
    cycle = [str(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    cycle = [c if c.startswith("#") or not all(ch in "0123456789abcdefABCDEF" for ch in c)
             else f"#{c}" for c in cycle]  # fmt: skip
    return [cycle[i % len(cycle)] for i in range(k)]


def _regime_background(ax, time: pd.DatetimeIndex, prob: np.ndarray, colours: list[str]) -> None:
    """Shade each month by its most probable regime (posterior-mean probability)."""
    valid = np.isfinite(prob).all(axis=1)
    top = np.where(valid, np.argmax(np.where(valid[:, None], prob, 0.0), axis=1), -1)
    t = time.values.astype("datetime64[ns]")
    half = np.timedelta64(15, "D")
    start = 0
    for i in range(1, len(top) + 1):
        if i == len(top) or top[i] != top[start]:
            if top[start] >= 0:
                ax.axvspan(t[start] - half, t[i - 1] + half, color=colours[top[start]],
                           alpha=0.12, lw=0)  # fmt: skip
            start = i


def plot_panel_fair_values(
    derived: xr.Dataset, *, log_scale: bool = False, source: str = ""
) -> Figure:
    """One small panel per asset: price against its fair-value median and 90% band, shaded by
    the shared chain's most probable regime; the regime probabilities at the bottom."""
    assets = [str(a) for a in derived["asset"].values]
    names = [str(r) for r in derived["regime"].values]
    time = pd.DatetimeIndex(derived["time"].values)
    prob = np.asarray(derived["regime_prob"].transpose("time", "regime").values, dtype=float)
    with memo_style() as plt:
        colours = _colours(plt, len(names))
        fig, axes = plt.subplots(
            len(assets) + 1,
            1,
            sharex=True,
            figsize=(8, 1.7 * len(assets) + 1.6),
            height_ratios=[2] * len(assets) + [1],
            layout="constrained",
        )
        for ax, asset in zip(axes[:-1], assets, strict=True):
            _regime_background(ax, time, prob, colours)
            fv = derived["fair_value"].sel(asset=asset)
            quantile_band(ax, time, fv, color="0.55", alpha=0.3)
            ax.plot(time, fv.sel(quantile=0.5), color="0.4", lw=0.9)
            ax.plot(time, derived["price"].sel(asset=asset), color="0.1", lw=1.1)
            if log_scale:
                ax.set_yscale("log")
            ax.set_title(asset, loc="left", fontsize=9)
        axes[-1].stackplot(time, np.nan_to_num(prob).T, colors=colours, alpha=0.85, lw=0)
        axes[-1].set_ylim(0, 1)
        axes[-1].set_ylabel("P(regime)")
        handles = [Patch(color=c, alpha=0.5, lw=0, label=n.replace("_", " "))
                   for n, c in zip(names, colours, strict=True)]  # fmt: skip
        axes[-1].legend(handles=handles, loc="upper left", fontsize=7, ncol=len(names))
        title = derived.attrs.get("experiment", "panel")
        fig.suptitle(f"{title}: price (black) and fair value (grey, 90% band), one shared chain")
        if source:
            fig.text(0.01, -0.01, f"Source: {source}", fontsize=7.5, color="0.35", va="top")
    return fig


def plot_panel_forest(derived: xr.Dataset, *, source: str = "") -> Figure:
    """Per-asset sensitivities (standardised: asset sd per factor sd) with 90% intervals beside
    the pooled population mean, one column per anchor term and one colour per regime."""
    coef = derived["coef_std"] if "coef_std" in derived else derived["coef"]
    pop = derived["coef_pop"]
    terms = [str(t) for t in coef["term"].values if np.isfinite(pop.sel(term=t).values).any()]
    assets = [str(a) for a in coef["asset"].values]
    names = [str(r) for r in coef["regime"].values]
    rows = [*assets, "population"]
    with memo_style() as plt:
        colours = _colours(plt, len(names))
        fig, axes = plt.subplots(
            1, max(len(terms), 1), figsize=(3.2 * max(len(terms), 1) + 1, 0.45 * len(rows) + 1.4),
            sharey=True, squeeze=False, layout="constrained",
        )  # fmt: skip
        for ax, term in zip(axes[0], terms, strict=False):
            for j, regime in enumerate(names):
                offset = (j - (len(names) - 1) / 2) * 0.22
                for i, row in enumerate(rows):
                    da = (pop if row == "population" else coef.sel(asset=row)).sel(
                        term=term, regime=regime
                    )
                    lo, mid, hi = (float(da.sel(quantile=x)) for x in (0.05, 0.5, 0.95))
                    y = i + offset
                    marker = "D" if row == "population" else "o"
                    ax.plot([lo, hi], [y, y], color=colours[j], lw=1.4)
                    ax.plot(mid, y, marker, color=colours[j], ms=4,
                            label=regime.replace("_", " ") if i == 0 else None)  # fmt: skip
            ax.axvline(0, color="0.4", lw=0.6)
            ax.axhline(len(assets) - 0.5, color="0.7", lw=0.6)
            ax.set_title(term, fontsize=9)
            ax.set_xlabel("sd of asset per sd of factor")
        axes[0][0].set_yticks(range(len(rows)), rows)
        axes[0][0].invert_yaxis()
        axes[0][0].legend(loc="best", fontsize=7)
        title = derived.attrs.get("experiment", "panel")
        fig.suptitle(f"{title}: per-asset vs pooled sensitivities (median, 90% interval)")
        if source:
            fig.text(0.01, -0.01, f"Source: {source}", fontsize=7.5, color="0.35", va="top")
    return fig


def panel_figures(derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str) -> list[Path]:
    """The panel family's own figures, saved into `folder`; returns the paths written."""
    paths = save_figure(
        plot_panel_fair_values(derived, log_scale=log_scale, source=source), folder, "panel_assets"
    )
    if derived.sizes.get("term", 0):
        paths += save_figure(plot_panel_forest(derived, source=source), folder, "panel_forest")
    return paths
