"""Figures of sweeps. The "what we knew when" figure of a real-time sweep: the real-time regime
probability at each origin beside the final smoothed one, the shift date and the detection
origins; below, the deviation from fair value as known then beside the final estimate. SBC: rank histograms and
ECDF differences with simultaneous bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimes.figures import memo_style, save_figure
from regimes.sweep.spec import HI, LO

# deferred to the functions that use them: PyMC, PyTensor, matplotlib, SciPy (docs/modules.md#imports)


def plot_realtime(rt: xr.Dataset, folder: Path) -> list[Path]:
    """Draw the figure from a `realtime_dataset` and save it as figures/realtime.png / .svg."""
    import matplotlib.pyplot as plt

    has_regimes = "realtime_prob" in rt
    with memo_style():
        fig, axes = plt.subplots(
            2 if has_regimes else 1,
            1,
            figsize=(9, 6.5 if has_regimes else 3.5),
            sharex=True,
            squeeze=False,
        )
        origins = pd.DatetimeIndex(rt["origin"].values)
        first = origins[0] - pd.DateOffset(years=3)
        if rt.attrs.get("shift_date"):  # the shift and a year before it in view
            first = min(first, pd.Timestamp(rt.attrs["shift_date"]) - pd.DateOffset(years=1))
        shown = rt["time"].values >= np.datetime64(first)
        t = pd.DatetimeIndex(rt["time"].values[shown])
        if has_regimes:
            ax = axes[0, 0]
            regime = rt.attrs["regime"]
            fq = rt["final_prob_q"].sel(regime=regime).isel(time=shown)
            ax.fill_between(
                t, fq.sel(quantile=LO), fq.sel(quantile=HI), color="C0", alpha=0.2, lw=0
            )
            ax.plot(
                t,
                rt["final_prob"].sel(regime=regime).isel(time=shown),
                color="C0",
                label=f"final smoothed (origin {rt.attrs['final_origin']})",
            )
            q = rt["realtime_prob_q"].sel(regime=regime)
            ax.fill_between(
                origins, q.sel(quantile=LO), q.sel(quantile=HI), color="C1", alpha=0.25, lw=0
            )
            ax.plot(
                origins,
                rt["realtime_prob"].sel(regime=regime),
                color="C1",
                marker=".",
                label="real time (filtered, at each origin)",
            )
            if rt.attrs.get("shift_date"):
                ax.axvline(
                    pd.Timestamp(rt.attrs["shift_date"]),
                    color="k",
                    ls="--",
                    lw=1,
                    label=f"shift (final estimate) {rt.attrs['shift_date']}",
                )
            for thr, style in zip(rt["threshold"].values, (":", "-."), strict=False):
                origin = rt["detection_origin"].sel(threshold=thr).values
                if not pd.isna(origin):
                    delay = float(rt["detection_delay"].sel(threshold=thr))
                    ax.axvline(
                        pd.Timestamp(origin),
                        color="C3",
                        ls=style,
                        lw=1,
                        label=f"real-time p ≥ {thr:g}: {pd.Timestamp(origin):%Y-%m} (+{delay:.0f} mo)",
                    )
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel(f"P({regime})")
            ax.set_title("What we knew when: real-time vs final regime probability (90% bands)")
            ax.legend(loc="upper left", fontsize=7)
        ax = axes[-1, 0]
        fd = rt["final_deviation_pct"].isel(time=shown)
        ax.fill_between(t, fd.sel(quantile=LO), fd.sel(quantile=HI), color="C0", alpha=0.2, lw=0)
        ax.plot(t, fd.sel(quantile=0.5), color="C0", label="final estimate")
        rd = rt["realtime_deviation_pct"]
        ax.fill_between(
            origins, rd.sel(quantile=LO), rd.sel(quantile=HI), color="C1", alpha=0.25, lw=0
        )
        ax.plot(origins, rd.sel(quantile=0.5), color="C1", marker=".", label="known at the time")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("% above fair value")
        ax.legend(loc="upper left", fontsize=7)
        fig.tight_layout()
    return save_figure(fig, Path(folder), "realtime")


def plot_sbc(ds: xr.Dataset, folder: Path) -> list[Path]:
    """SBC figures from an `sbc.nc` dataset: rank histograms (grey: the 95% range of a bin's
    count under uniform ranks) as figures/sbc_ranks.png / .svg, and ECDF differences (ECDF of
    the ranks minus the uniform CDF) with the simultaneous band as figures/sbc_ecdf.png / .svg."""
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    from regimes.sweep.sbc import n_bins

    params = [str(p) for p in ds["param"].values]
    keep, n = int(ds.attrs["keep"]), ds.sizes["sim"]
    bins = n_bins(keep, n)
    cols = min(3, len(params))
    rows = -(-len(params) // cols)
    paths = []
    with memo_style():
        fig, axes = plt.subplots(
            rows, cols, figsize=(3.4 * cols, 2.6 * rows), sharey=True, squeeze=False
        )
        lo, hi = binom.ppf([0.025, 0.975], n, 1 / bins)
        for ax in axes.ravel()[len(params) :]:
            ax.set_visible(False)
        for ax, p in zip(axes.ravel(), params, strict=False):
            ax.axhspan(lo, hi, color="0.85", lw=0)
            ax.axhline(n / bins, color="0.5", lw=0.8)
            ax.hist(
                ds["rank"].sel(param=p).values,
                bins=np.linspace(0, keep + 1, bins + 1),
                color="C0" if int(ds["uniform"].sel(param=p)) else "C3",
                ec="w",
            )
            ax.set_title(p if int(ds["uniform"].sel(param=p)) else f"{p} (flagged)")
            ax.set_xlabel(f"rank among {keep} draws")
        fig.suptitle(f"SBC rank histograms, N={n} (grey: 95% range of a uniform bin)")
        fig.tight_layout()
    paths += save_figure(fig, Path(folder), "sbc_ranks")
    band = float(ds.attrs.get("band", 0.95))
    with memo_style():
        fig, axes = plt.subplots(
            rows, cols, figsize=(3.4 * cols, 2.6 * rows), sharey=True, squeeze=False
        )
        z = ds["z"].values
        for ax in axes.ravel()[len(params) :]:
            ax.set_visible(False)
        for ax, p in zip(axes.ravel(), params, strict=False):
            flagged = not int(ds["uniform"].sel(param=p))
            ax.fill_between(
                z,
                ds["ecdf_lower"].sel(param=p) - z,
                ds["ecdf_upper"].sel(param=p) - z,
                color="0.85",
                lw=0,
            )
            ax.plot(z, ds["ecdf"].sel(param=p) - z, color="C3" if flagged else "C0")
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set_title(f"{p} (flagged)" if flagged else p)
            ax.set_xlabel("fractional rank")
        axes[0, 0].set_ylabel("ECDF − uniform")
        fig.suptitle(f"SBC ECDF differences, N={n} (grey: simultaneous {band:.0%} band)")
        fig.tight_layout()
    paths += save_figure(fig, Path(folder), "sbc_ecdf")
    return paths
