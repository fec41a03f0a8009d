"""Memo-ready figures: one function per figure, all in the shipped memo style."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regimes.files import make_dirs, write_bytes_atomic

# deferred to the functions that use them: matplotlib (docs/modules.md#imports)

STYLE = Path(__file__).with_name("memo.mplstyle")
TARGET = "target"  # what a figure calls the modelled series when derived.nc does not name it
QUICK_MARK = "QUICK RUN — not for citation"
NOT_CONVERGED_MARK = "NOT CONVERGED"
_MARK: ContextVar[str] = ContextVar("regimes_figure_mark", default="")


def run_mark(quick: bool, converged: bool) -> str:
    """The mark every figure of a run carries when it is not fit for a memo: a quick run, a run
    that failed the convergence gate, or both ("" for a full, converged run)."""
    return " · ".join(
        text for text, on in ((QUICK_MARK, quick), (NOT_CONVERGED_MARK, not converged)) if on
    )


@contextmanager
def marked(mark: str) -> Iterator[None]:
    """Every figure `save_figure` writes inside the block carries `mark` ("" for none)."""
    token = _MARK.set(mark)
    try:
        yield
    finally:
        _MARK.reset(token)


def stamp(fig, mark: str) -> None:
    """Write `mark` across the figure (a large diagonal watermark) and in its top-right corner,
    so no copy of the figure can be pasted without it."""
    if not mark:
        return
    width = fig.get_size_inches()[0]  # the watermark spans about 70% of it
    fig.text(0.5, 0.5, mark, rotation=20, ha="center", va="center", color="#b03a2e",
             alpha=0.16, fontsize=min(40.0, 84 * width / len(mark)),
             fontweight="bold", zorder=1000)  # fmt: skip
    fig.text(0.995, 0.995, mark, ha="right", va="top", color="#b03a2e", fontsize=8.5,
             fontweight="bold", zorder=1000)  # fmt: skip


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
    series id or name, e.g. "copper" or "HAMILTON_RGNP"), else "target"."""
    name = derived["price"].attrs.get("long_name", "") if "price" in derived else ""
    return str(name) or TARGET


def target_units(derived) -> str:
    """The target's units (`derived["price"].attrs["units"]`), or "" when not recorded."""
    return str(derived["price"].attrs.get("units", "")) if "price" in derived else ""


def target_label(derived) -> str:
    """Axis label for the target: "name (units)", or the name alone when units are missing."""
    units = target_units(derived)
    return f"{target_name(derived)} ({units})" if units else target_name(derived)


@dataclass(frozen=True)
class Vocabulary:
    """How a target's numbers are named: a price has a fair value and a % deviation from it; a
    rate or other percent series has a level and a gap to its fair value in percentage points."""

    rate: bool
    level: str  # its latest observation
    gap: str  # its distance from fair value, with how it is computed
    gap_units: str  # "%" or "pp"

    def gap_of(self, price, fair_value):
        """The distance of `price` from `fair_value` in this vocabulary's units."""
        return price - fair_value if self.rate else 100.0 * (price / fair_value - 1.0)


def vocabulary(units: str) -> Vocabulary:
    """The vocabulary of a target in `units`: percent (a rate, a growth rate) or anything else
    (a price, an index)."""
    if "percent" in units.lower() or "%" in units:
        return Vocabulary(True, "latest level", "gap to fair value (level − fair value)", "pp")
    return Vocabulary(
        False, "latest price", "deviation from fair value (price / fair value − 1)", "%"
    )


def period_word(time) -> str:
    """'quarter' or 'month' from the median spacing of a time axis, for axis labels."""
    t = np.asarray(time, dtype="datetime64[ns]")
    if len(t) < 2:
        return "month"
    step = np.median(np.diff(t).astype("timedelta64[D]").astype(float))
    return "quarter" if step > 45 else "month"


@contextmanager
def memo_style():
    """Apply the memo style for the figures drawn inside the block: with the non-interactive Agg
    backend when no backend was chosen yet (the command line, a server), else with the one the
    user's process has (a notebook's inline backend stays, so its own plots still show)."""
    import matplotlib

    if matplotlib.get_backend(auto_select=False) is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.style.context(str(STYLE)):
        yield plt


def quantile_band(ax, time, q, lo: float = 0.05, hi: float = 0.95, **style):
    """Shade between two quantiles of `q` (a DataArray with a `quantile` dimension) over `time`:
    the one way every figure draws a posterior band (no edge line unless `style` says so)."""
    return ax.fill_between(
        time, q.sel(quantile=lo).values, q.sel(quantile=hi).values, **{"lw": 0, **style}
    )


FORMATS = {  # how a figure is saved: PNG (200 dpi) and SVG, without timestamps
    "png": {"format": "png", "dpi": 200, "metadata": {"Software": None}},
    "svg": {"format": "svg", "metadata": {"Date": None, "Creator": None}},
}


def render_figure(fig, stem: str) -> dict[str, bytes]:
    """The figure's files as bytes by name (`<stem>.png`, `<stem>.svg`), the same run giving
    the same bytes; inside `marked(...)` it carries the mark. Closes the figure."""
    import io

    import matplotlib.pyplot as plt

    stamp(fig, _MARK.get())
    out = {}
    with plt.style.context(str(STYLE)):  # "C0"-style colours resolve when drawn
        for suffix, how in FORMATS.items():
            buffer = io.BytesIO()
            fig.savefig(buffer, **how)
            out[f"{stem}.{suffix}"] = buffer.getvalue()
    plt.close(fig)
    return out


def write_rendered(folder: Path, rendered: dict[str, bytes]) -> list[Path]:
    """Write rendered figure files (`render_figure`) into `folder`, each atomically; return
    their paths."""
    if not rendered:
        return []
    make_dirs(folder)
    return [write_bytes_atomic(folder / name, data) for name, data in rendered.items()]


def save_figure(fig, folder: Path, stem: str) -> list[Path]:
    """Save as PNG (200 dpi) and SVG without timestamps, so the same run gives the same files,
    each written atomically; inside `marked(...)` the figure carries the mark."""
    return write_rendered(folder, render_figure(fig, stem))
