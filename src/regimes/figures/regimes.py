"""Markov-switching figures: regime ribbon over the target, transition matrix, expected durations."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from regimes.figures import (
    memo_style,
    period_word,
    quantile_band,
    save_figure,
    target_label,
    target_name,
)

_FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def _pretty(name: str) -> str:
    """Regime label for readers: underscores become spaces."""
    return str(name).replace("_", " ")


def _regime_colours(plt, k: int) -> list[str]:
    """One colour per regime from the memo colour cycle (tab-like fallback past its length)."""

    def hex_of(c: str) -> str:
        try:
            return to_hex(c)
        except ValueError:  # style files give hex without '#'
            return to_hex(f"#{c}")

    cycle = [hex_of(str(c)) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    colours = cycle + [c for c in _FALLBACK if c not in cycle]
    return [colours[i % len(colours)] for i in range(k)]


def _edges(time: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Cell edges halfway between observation dates, so shading of period t is centred on t."""
    t = time.values.astype("datetime64[ns]")
    if len(t) == 1:
        half = np.timedelta64(15, "D")
        return pd.DatetimeIndex([t[0] - half, t[0] + half])
    mid = t[:-1] + (t[1:] - t[:-1]) / 2
    return pd.DatetimeIndex(
        np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    )


def _source_line(fig, source: str) -> None:
    """Attribution line below the axes, as in the fair-value figure."""
    if source:
        fig.text(0.01, -0.02, f"Source: {source}", fontsize=7.5, color="0.35", ha="left", va="top")


def plot_regime_ribbon(derived: xr.Dataset, *, log_scale: bool = False, source: str = "") -> Figure:
    """The target and its fair value over a regime-shaded background, with stacked regime
    probabilities below; shows when each regime held."""
    with memo_style() as plt:
        fig, (ax, axp) = plt.subplots(
            2, 1, sharex=True, figsize=(8, 5.6), height_ratios=[3, 1], layout="constrained"
        )
        fig.get_layout_engine().set(hspace=0.01)
        time = pd.DatetimeIndex(derived["time"].values)
        names = [str(r) for r in derived["regime"].values]
        colours = _regime_colours(plt, len(names))
        prob = np.asarray(derived["regime_prob"].transpose("time", "regime").values, dtype=float)
        edges = _edges(time)

        # background: most probable regime per period (argmax of the posterior-mean probability)
        valid = np.isfinite(prob).all(axis=1)
        top = np.where(valid, np.argmax(np.where(valid[:, None], prob, 0.0), axis=1), -1)
        start = 0
        for i in range(1, len(top) + 1):
            if i == len(top) or top[i] != top[start]:
                if top[start] >= 0:
                    ax.axvspan(edges[start], edges[i], color=colours[top[start]], alpha=0.12, lw=0)
                start = i

        long_name = target_name(derived)
        handles = []
        if "fair_value" in derived:
            fv = derived["fair_value"]
            band = quantile_band(
                ax, time, fv, color="0.55", alpha=0.22, label="fair value, 90% band"
            )
            (median,) = ax.plot(
                time, fv.sel(quantile=0.5), color="0.45", lw=1.0, label="fair value, median"
            )
            handles += [median, band]
        (observed,) = ax.plot(time, derived["price"], color="0.1", lw=1.4, label=long_name)
        handles.insert(0, observed)
        handles += [
            Patch(color=c, alpha=0.35, lw=0, label=_pretty(n))
            for n, c in zip(names, colours, strict=True)
        ]
        if log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(target_label(derived))
        title = derived.attrs.get("experiment", "regimes")
        ax.set_title(f"{title}: {long_name} and most probable regime")

        # bottom: stacked probabilities; lighter after the fit window, where they are a forecast
        axp.stackplot(
            time,
            np.where(valid[:, None], prob, np.nan).T,
            colors=colours,
            alpha=0.85,
            lw=0,
            labels=[_pretty(n) for n in names],
        )
        in_sample = np.asarray(derived["in_sample"].values, dtype=bool)
        if in_sample.any() and not in_sample[-1]:
            last_fit = int(np.flatnonzero(in_sample)[-1])
            cut = time[last_fit]
            for a in (ax, axp):
                a.axvline(cut, color="0.3", lw=0.8, ls="--", zorder=3)
            axp.axvspan(cut, time[-1], facecolor="white", alpha=0.55, lw=0, zorder=2)
            axp.axvspan(
                cut, time[-1], facecolor="none", edgecolor="0.4", hatch="///", lw=0, zorder=2
            )
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor="0.4",
                    hatch="///",
                    lw=0,
                    label=f"forecast (after {cut:%Y-%m})",
                )
            )
        ax.legend(handles=handles, loc="best", ncol=2, fontsize=8)
        axp.set_ylim(0, 1)
        axp.set_yticks([0, 0.5, 1])
        axp.set_ylabel("regime probability")
        if len(time) > 1:
            axp.set_xlim(time[0], time[-1])
        axp.set_xlabel(period_word(time))
        axp.grid(False)
        fig.align_ylabels([ax, axp])
        _source_line(fig, source)
    return fig


def plot_transition_matrix(derived: xr.Dataset) -> Figure:
    """Heatmap of posterior-median transition probabilities with 90% intervals; shows persistence and where regimes go."""
    with memo_style() as plt:
        tr = derived["transition"].transpose("regime", "regime_to", "quantile")
        names = [str(r) for r in derived["regime"].values]
        names_to = [str(r) for r in derived["regime_to"].values]
        k = len(names)
        med = np.asarray(tr.sel(quantile=0.5).values, dtype=float)
        lo = np.asarray(tr.sel(quantile=0.05).values, dtype=float)
        hi = np.asarray(tr.sel(quantile=0.95).values, dtype=float)
        fig, ax = plt.subplots(figsize=(2.0 + 1.7 * k, 1.4 + 1.25 * k))
        image = ax.imshow(med, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
        digits = 3 if k <= 4 else 2
        size = 9 if k <= 3 else 7.5
        for i in range(k):
            for j in range(len(names_to)):
                ax.text(
                    j,
                    i,
                    f"{med[i, j]:.{digits}f}\n[{lo[i, j]:.{digits}f}–{hi[i, j]:.{digits}f}]",
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if med[i, j] > 0.6 else "0.1",
                )
        ax.set_xticks(range(len(names_to)), [f"to {_pretty(n)}" for n in names_to])
        ax.set_yticks(range(k), [f"from {_pretty(n)}" for n in names])
        ax.tick_params(length=0)
        ax.grid(False)
        for side in ax.spines.values():
            side.set_visible(False)
        bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03)
        bar.set_label("transition probability (posterior median)", fontsize=8.5)
        bar.outline.set_visible(False)
        title = derived.attrs.get("experiment", "regimes")
        ax.set_title(f"{title}: regime transition matrix\nposterior median [5%–95%] per cell")
        fig.tight_layout()
    return fig


def plot_durations(derived: xr.Dataset) -> Figure:
    """Interval plot of expected regime durations (median, 50%, 90%); shows how long each regime lasts."""
    with memo_style() as plt:
        dur = derived["expected_duration"].transpose("regime", "quantile")
        names = [str(r) for r in derived["regime"].values]
        k = len(names)
        colours = _regime_colours(plt, k)
        q = {
            p: np.asarray(dur.sel(quantile=p).values, dtype=float)
            for p in (0.05, 0.25, 0.5, 0.75, 0.95)
        }
        q = {p: np.where(np.isfinite(v), v, np.nan) for p, v in q.items()}
        fig, ax = plt.subplots(figsize=(8, 1.6 + 0.7 * k))
        y = np.arange(k)[::-1]  # first regime on top
        ax.hlines(y, q[0.05], q[0.95], color=colours, lw=1.3)
        ax.hlines(y, q[0.25], q[0.75], color=colours, lw=6, alpha=0.8)
        ax.scatter(q[0.5], y, color=colours, edgecolor="white", s=60, zorder=3)
        for yi, m, a, b in zip(y, q[0.5], q[0.05], q[0.95], strict=True):
            if np.isfinite(m):
                ax.annotate(
                    f"{m:.1f} ({a:.1f}–{b:.1f})",
                    xy=(m, yi),
                    xytext=(0, 9),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="0.2",
                )
        with warnings.catch_warnings():  # every regime's duration undefined: nothing to scale
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(q[0.05]), np.nanmax(q[0.95])
        if np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi > 20 * lo:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(y, [_pretty(n) for n in names])
        ax.set_ylim(-0.7, k - 0.3)
        ax.grid(axis="y", visible=False)
        period = period_word(pd.DatetimeIndex(derived["time"].values))
        ax.set_xlabel("expected duration (periods)")
        title = derived.attrs.get("experiment", "regimes")
        ax.set_title(f"{title}: expected regime durations (1 period = 1 {period})")
        key = [
            Line2D([], [], color="0.4", lw=1.3, label="90% interval"),
            Line2D([], [], color="0.4", lw=6, alpha=0.8, label="50% interval"),
            Line2D([], [], color="0.4", marker="o", ls="", mec="white", ms=8, label="median"),
        ]
        ax.legend(handles=key, loc="lower right", ncol=3, fontsize=8)
        fig.tight_layout()
    return fig


def plot_duration_paths(derived: xr.Dataset) -> Figure:
    """Expected duration of each regime month by month (median, 90% band) when transitions move
    with covariates; shows when regimes became more or less persistent."""
    with memo_style() as plt:
        dur = derived["expected_duration"].transpose("time", "regime", "quantile")
        time = pd.DatetimeIndex(derived["time"].values)
        names = [str(r) for r in derived["regime"].values]
        colours = _regime_colours(plt, len(names))
        fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
        for k, (name, colour) in enumerate(zip(names, colours, strict=True)):
            lo, mid, hi = (
                np.asarray(dur.isel(regime=k).sel(quantile=p).values, dtype=float)
                for p in (0.05, 0.5, 0.95)
            )
            ax.fill_between(time, lo, hi, color=colour, alpha=0.2, lw=0)
            ax.plot(time, mid, color=colour, lw=1.4, label=f"{_pretty(name)} (median, 90% band)")
        ax.set_yscale("log")
        if "in_sample" in derived:
            fit = derived["in_sample"].values.astype(bool)
            if (~fit).any() and fit.any():
                ax.axvspan(time[fit][-1], time[-1], color="0.9", lw=0, zorder=0)
        period = period_word(time)
        ax.set_ylabel(f"expected duration ({period}s)")
        title = derived.attrs.get("experiment", "regimes")
        ax.set_title(f"{title}: expected regime duration at each {period}'s covariates")
        ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_break_dates(derived: xr.Dataset) -> Figure:
    """Posterior probability of each change point month by month, with the median date and 90%
    interval marked: "when did the anchor shift" as a distribution, not a date."""
    with memo_style() as plt:
        prob = derived["break_prob"].transpose("time", "break")
        breaks = [str(b) for b in derived["break"].values]
        time = pd.DatetimeIndex(derived["time"].values)
        period = period_word(time)
        colours = _regime_colours(plt, len(breaks) + 1)[1:]
        fig, axes = plt.subplots(
            len(breaks),
            1,
            figsize=(8, 1.2 + 2.2 * len(breaks)),
            sharex=True,
            squeeze=False,
            layout="constrained",
        )
        for m, (ax, label, colour) in enumerate(zip(axes[:, 0], breaks, colours, strict=True)):
            p = np.asarray(prob.isel(**{"break": m}).values, dtype=float)
            ax.fill_between(time, 0, p, step="mid", color=colour, alpha=0.6, lw=0)
            dates = pd.DatetimeIndex(derived["break_date"].isel(**{"break": m}).values)
            qs = [float(v) for v in derived["quantile"].values]
            if 0.05 in qs and 0.95 in qs and 0.5 in qs:
                lo, mid, hi = (dates[qs.index(v)] for v in (0.05, 0.5, 0.95))
                if not (pd.isna(lo) or pd.isna(hi)):
                    ax.axvspan(lo, hi, color=colour, alpha=0.12, lw=0)
                if not pd.isna(mid):

                    def month(x: pd.Timestamp) -> str:  # NaT: the quantile lies past the window
                        return "no break in the window" if pd.isna(x) else f"{x:%Y-%m}"

                    ax.axvline(mid, color="0.2", lw=1, ls="--")
                    ax.annotate(
                        f"median {month(mid)}, 90%: {month(lo)} to {month(hi)}; "
                        f"P(break in the window) {float(p.sum()):.2f}",
                        xy=(0.01, 0.92),
                        xycoords="axes fraction",
                        va="top",
                        fontsize=8.5,
                    )
            ax.set_ylabel(f"P(break in {period})")
            ax.set_title(_pretty(label).replace("->", "→"), fontsize=9.5, loc="left")
        title = derived.attrs.get("experiment", "regimes")
        fig.suptitle(f"{title}: posterior of the break date")
    return fig


def regime_figures(
    derived: xr.Dataset, folder: Path, *, log_scale: bool = False, source: str = ""
) -> list[Path]:
    """Draw and save the ribbon, transition-matrix and duration figures (PNG + SVG) for a Markov run."""
    folder = Path(folder)
    paths: list[Path] = []
    paths += save_figure(
        plot_regime_ribbon(derived, log_scale=log_scale, source=source), folder, "regime_ribbon"
    )
    paths += save_figure(plot_transition_matrix(derived), folder, "transition_matrix")
    if "time" in derived["expected_duration"].dims:
        paths += save_figure(plot_duration_paths(derived), folder, "durations")
    else:
        paths += save_figure(plot_durations(derived), folder, "durations")
    if "break_prob" in derived:
        paths += save_figure(plot_break_dates(derived), folder, "break_dates")
    return paths
