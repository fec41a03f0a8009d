"""Memo-ready figures: one function per figure, all in the shipped memo style."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

STYLE = Path(__file__).with_name("memo.mplstyle")
TARGET = "target"  # what a figure calls the modelled series when derived.nc does not name it


def reference_view(derived):
    """A panel's derived.nc (one with an `asset` dimension) as its reference asset's
    single-series dataset (attribute `reference_asset`, the experiment's target), so every
    single-series figure and page reads it unchanged; any other dataset as it is."""
    if "asset" not in getattr(derived, "dims", {}):
        return derived
    return derived.sel(asset=reference_asset(derived), drop=True)


def reference_asset(derived) -> str:
    """A panel's reference asset (attribute `reference_asset`, else its first asset); "" for a
    dataset of one target."""
    if "asset" not in getattr(derived, "dims", {}):
        return ""
    return str(derived.attrs.get("reference_asset", derived["asset"].values[0]))


def target_name(derived) -> str:
    """The modelled series in its own terms: `derived["price"].attrs["long_name"]` (the target's
    series id or name, e.g. "gold" or "HAMILTON_RGNP"), else "target"."""
    name = derived["price"].attrs.get("long_name", "") if "price" in derived else ""
    return str(name) or TARGET


def target_units(derived) -> str:
    """The target's units (`derived["price"].attrs["units"]`), or "" when not recorded."""
    return str(derived["price"].attrs.get("units", "")) if "price" in derived else ""


def target_label(derived) -> str:
    """Axis label for the target: "name (units)", or the name alone when units are missing."""
    units = target_units(derived)
    return f"{target_name(derived)} ({units})" if units else target_name(derived)


def period_word(time) -> str:
    """'quarter' or 'month' from the median spacing of a time axis, for axis labels."""
    t = np.asarray(time, dtype="datetime64[ns]")
    if len(t) < 2:
        return "month"
    step = np.median(np.diff(t).astype("timedelta64[D]").astype(float))
    return "quarter" if step > 45 else "month"


@contextmanager
def memo_style():
    """Apply the memo style (non-interactive backend) for the figures drawn inside the block."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.style.context(str(STYLE)):
        yield plt


def quantile_band(ax, time, q, lo: float = 0.05, hi: float = 0.95, **style):
    """Shade between two quantiles of `q` (a DataArray with a `quantile` dimension) over `time`:
    the one way every figure draws a posterior band (no edge line unless `style` says so)."""
    return ax.fill_between(
        time, q.sel(quantile=lo).values, q.sel(quantile=hi).values, **{"lw": 0, **style}
    )


def save_figure(fig, folder: Path, stem: str) -> list[Path]:
    """Save as PNG (200 dpi) and SVG without timestamps, so the same run gives the same files."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.svg"]
    with plt.style.context(str(STYLE)):  # "C0"-style colours resolve when drawn
        fig.savefig(paths[0], dpi=200, metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths
