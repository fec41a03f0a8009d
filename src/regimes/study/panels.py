"""Page panels: the study page's own figures (and statements), each drawn by a named function
from what the study produced — its runs' derived quantities, its answer, the data its
application reads.

`study.toml` picks them by name (`[page] panels`, `[answer] panels`); the core's are in `PANELS`,
an application adds its own (`regimes.study.application.Application.panels`). A panel is a
function of a `PageContext` returning a `PanelOutput` (a figure and its caption, or a statement
on its own) or None when there is nothing to draw (no regime model among the runs).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.errors import RegimesError
from regimes.figures import (
    memo_style,
    quantile_band,
    save_figure,
    target_label,
    target_name,
    target_units,
    vocabulary,
)
from regimes.study.quantities import Estimate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from regimes.study.application import Application
    from regimes.study.config import Study


@dataclass(frozen=True)
class PanelOutput:
    """What a panel shows: a figure with its caption, or (no figure) a statement of its own."""

    caption: str
    figure: Figure | None = None


@dataclass
class PageContext:
    """What a panel draws from: the study as configured, its complete runs' derived quantities
    (in the folder's order; a panel run's as its reference asset), each run's log-scale choice,
    the headline answer (once computed) and the data of the study's application."""

    study: Study
    runs: dict[str, xr.Dataset]
    log_scale: dict[str, bool]
    data_dir: Path
    application: Application | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    _data: list[Any] = field(default_factory=list, repr=False)  # the application's, once loaded

    def data(self) -> Any:
        """The data the study's application reads (`Application.load`), loaded once per page; a
        RegimesError when the study names no application or the data cannot be read."""
        if self.application is None:
            raise RegimesError(
                f"{self.study.path}: this needs the study's application's data; name one with "
                "`application = NAME`"
            )
        if not self._data:
            self._data.append(self.application.load(self.data_dir))
        return self._data[0]

    def quantity(self, name: str) -> Estimate:
        """One of the application's quantities read off its data, `KIND:ARGUMENT` (a brief row
        with source = "descriptive")."""
        kind, _, arg = name.partition(":")
        data = self.data()  # names the missing application when there is none
        return self.application.quantities[kind](data, arg)  # type: ignore[union-attr]

    def about_target(self) -> dict[str, xr.Dataset]:
        """The runs of the page's target (`[page] target`, as the experiments name it), or every
        run when the page names none."""
        target = self.study.page.target
        return {e: d for e, d in self.runs.items() if not target or d.attrs.get("target") == target}

    def regime_runs(self) -> dict[str, xr.Dataset]:
        """The runs with more than one regime (their regime probabilities)."""
        return {e: d for e, d in self.runs.items() if "regime_prob" in d and d.sizes["regime"] > 1}


Panel = Callable[[PageContext], PanelOutput | None]


def run_log_scale(run_dir: Path) -> bool:
    """Whether a run draws its target on a log scale (`[outputs] log_scale` of its config.toml)."""
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return bool(config.get("outputs", {}).get("log_scale", False))


def draw_panels(
    names: list[str], panels: dict[str, Panel], ctx: PageContext, folder: Path
) -> list[tuple[str, str]]:
    """Draw the named panels into `folder` (`study_<name>.png` and .svg) and return (file
    relative to the study folder, caption) for each, in order: a statement has no file ("") and
    a panel that cannot be drawn says why in place of its caption."""
    out: list[tuple[str, str]] = []
    for name in names:
        try:
            shown = panels[name](ctx)
        except (RegimesError, KeyError, ValueError, IndexError) as exc:
            out.append(("", f"{name}: not drawn ({type(exc).__name__}: {exc})"))
            continue
        if shown is None:
            continue
        if shown.figure is None:
            out.append(("", shown.caption))
            continue
        save_figure(shown.figure, folder, f"study_{name}")
        out.append((f"{folder.name}/study_{name}.png", shown.caption))
    return out


# ------------------------------------------------------------------ the core's panels


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _shade_fit(ax: Any, d: xr.Dataset) -> None:
    t = pd.DatetimeIndex(d["time"].values)
    fit = np.asarray(d["in_sample"].values, dtype=bool)
    if fit.any() and not fit.all():
        ax.axvspan(t[fit][0], t[fit][-1], color="0.5", alpha=0.07, lw=0)


def _stacked(
    runs: dict[str, xr.Dataset],
    draw: Callable[[Any, str, xr.Dataset], None],
    *,
    height: float,
    xlabel: str = "month",
    top: Callable[[Any], None] | None = None,
) -> Figure:
    """One panel per run, stacked on a shared time axis and titled by experiment;
    `draw(ax, experiment, d)` fills a panel, `top(ax)` an optional first panel above them."""
    with memo_style() as plt:
        n = len(runs) + (top is not None)
        fig, axes = plt.subplots(n, 1, figsize=(9, height * n + 0.8), sharex=True, squeeze=False)
        axes = axes[:, 0]
        if top is not None:
            top(axes[0])
        for ax, (exp, d) in zip(axes[n - len(runs) :], runs.items(), strict=True):
            draw(ax, exp, d)
            ax.set_title(exp, loc="left", fontsize=9)
        axes[-1].set_xlabel(xlabel)
        fig.tight_layout()
    return fig


def regime_probabilities(ctx: PageContext) -> PanelOutput | None:
    """The posterior probability of each regime over time, one panel per regime model, under the
    target when they all model one."""
    markov = ctx.regime_runs()
    if not markov:
        return None
    targets = {d.attrs.get("target") for d in markov.values()}
    first_exp, first = next(iter(markov.items()))
    log = ctx.log_scale.get(first_exp, False)

    def price(ax: Any) -> None:
        ax.plot(pd.DatetimeIndex(first["time"].values), first["price"], color="C1", lw=1.2)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(target_label(first))

    def probs(ax: Any, exp: str, d: xr.Dataset) -> None:
        t = pd.DatetimeIndex(d["time"].values)
        p = d["regime_prob"].transpose("regime", "time").values
        ax.stackplot(t, p, labels=[str(r) for r in d["regime"].values], alpha=0.8, lw=0)
        ax.set_ylim(0, 1)
        ax.set_ylabel("prob.")
        ax.legend(loc="upper left", fontsize=7, ncol=3, frameon=False)

    shared = len(targets) == 1
    fig = _stacked(markov, probs, height=1.6, top=price if shared else None)
    what = "the posterior probability of each regime over time, one panel per regime model"
    caption = (
        f"{_capital(target_name(first))}{' (log scale)' if log else ''} and {what} "
        "(posterior means)."
        if shared
        else f"{_capital(what)} (posterior means)."
    )
    return PanelOutput(caption, fig)


def fair_value_by_regime(ctx: PageContext) -> PanelOutput | None:
    """Each regime model's fair value by regime (its anchor if that regime held) and the
    regime-weighted mixture, against the target."""
    markov = ctx.regime_runs()
    if not markov:
        return None

    def draw(ax: Any, exp: str, d: xr.Dataset) -> None:
        t = pd.DatetimeIndex(d["time"].values)
        fv = d["fair_value"]
        quantile_band(ax, t, fv, color="C0", alpha=0.15)
        ax.plot(t, fv.sel(quantile=0.5), color="C0", lw=1, label="mixture")
        for j, r in enumerate(d["regime"].values):
            fr = d["fair_value_by_regime"].sel(regime=r, quantile=0.5)
            label = str(r)
            by_regime = d.get("anchor_identified_by_regime")  # the price does not revert to it
            if by_regime is not None and int(by_regime.sel(regime=r)) == 0:
                label += " (no identified anchor)"
            ax.plot(t, fr, lw=0.9, ls="--", color=f"C{j + 2}", label=label)
        ax.plot(t, d["price"], color="C1", lw=1.2, label=target_name(d))
        if ctx.log_scale.get(exp, False):
            ax.set_yscale("log")
        ax.set_ylabel(target_units(d))
        ax.legend(loc="upper left", fontsize=7, ncol=4, frameon=False)

    log = all(ctx.log_scale.get(e, False) for e in markov)
    names = sorted({target_name(d) for d in markov.values()})
    caption = (
        f"{_capital(' / '.join(names))} (orange) against each regime's fair value (its anchor if "
        "that regime held; medians) and the regime-weighted mixture (blue, 90% band), "
        f"{'log scale, ' if log else ''}one panel per regime model."
    )
    return PanelOutput(caption, _stacked(markov, draw, height=2.2))


def deviation_overview(ctx: PageContext) -> PanelOutput | None:
    """Each run's distance from its fair value over time (median and 90% band): a price's %
    deviation, a rate's gap in its own units; the runs of the page's target."""
    runs = {e: d for e, d in ctx.about_target().items() if "deviation_pct" in d}
    if not runs:
        return None

    def draw(ax: Any, exp: str, d: xr.Dataset) -> None:
        t = pd.DatetimeIndex(d["time"].values)
        rate = vocabulary(target_units(d)).rate
        dev = d["deviation"] if rate and "deviation" in d else d["deviation_pct"]
        quantile_band(ax, t, dev, color="C0", alpha=0.2)
        ax.plot(t, dev.sel(quantile=0.5), color="C0", lw=1)
        ax.axhline(0, color="0.3", lw=0.6)
        _shade_fit(ax, d)
        ax.set_ylabel("pp" if rate else "%")
        if not rate:
            ax.set_yscale("symlog", linthresh=100)

    name = " / ".join(sorted({target_name(d) for d in runs.values()}))
    rates = any(vocabulary(target_units(d)).rate for d in runs.values())
    units = "% (a rate's: its gap in percentage points)" if rates else "%"
    caption = (
        f"Deviation of {name} from each model's fair value, {units} (median and 90% band); "
        "above zero: dearer than the model says."
    )
    fig = _stacked(runs, draw, height=1.5, xlabel="month (shaded: fit window)")
    return PanelOutput(caption, fig)


PANELS: dict[str, Panel] = {
    "regime_probabilities": regime_probabilities,
    "fair_value_by_regime": fair_value_by_regime,
    "deviation_overview": deviation_overview,
}
DEFAULT_PANELS = tuple(PANELS)  # a study.toml without `[page] panels` gets every core panel
