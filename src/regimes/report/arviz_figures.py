"""ArviZ convergence figures for reports: rank, trace and forest plots of the main parameters.

Only scalar and small vector parameters are drawn; latent paths (any variable with a `time` dim)
and large arrays would make unreadable walls of panels, so they are left out.
"""

from __future__ import annotations

import math
from pathlib import Path

import xarray as xr

from regimes.figures import marked, memo_style, render_figure, write_rendered

# deferred to the functions that use them: ArviZ (docs/modules.md#imports)

ARVIZ_STEMS = ("rank", "trace", "forest")
MAX_ELEMENTS_PER_VAR = 12  # larger arrays are latent vectors, not headline parameters
MAX_PANELS = 16  # rank and trace: at most this many panels (4 rows of 4)
COL_WRAP = 4
CI_PROBS = (0.5, 0.9)  # forest intervals, as the report's bands
PANEL_STYLE = {"axes.titlesize": 8.5, "axes.labelsize": 8, "xtick.labelsize": 7.5}


def _elements(da: xr.DataArray) -> int:
    """Number of scalar elements per draw."""
    return math.prod(n for d, n in da.sizes.items() if d not in ("chain", "draw"))


def main_parameters(posterior: xr.Dataset, max_panels: int = MAX_PANELS) -> list[str]:
    """Names of the posterior variables worth plotting, in posterior order, within a panel budget."""
    chosen, panels = [], 0
    for name, da in posterior.data_vars.items():
        n = _elements(da)
        if "time" in da.dims or n > MAX_ELEMENTS_PER_VAR or da.dtype.kind not in "fiu":
            continue
        if panels + n > max_panels:
            break
        chosen.append(str(name))
        panels += n
    return chosen


def _fix_size(fig, n_panels: int) -> None:
    """A readable size for a wrapped grid of panels, with room for two-line titles."""
    rows = max(1, math.ceil(n_panels / COL_WRAP))
    fig.set_size_inches(12, 0.6 + 2.4 * rows)
    fig.set_layout_engine("constrained")


def diagnostic_renders(tree: xr.DataTree) -> dict[str, bytes]:
    """Rank, trace and forest plots of the main parameters rendered as files by name
    (`render_figure`: PNG + SVG each); empty when the posterior has no plottable parameter."""
    import arviz_plots as azp

    posterior = tree["posterior"].to_dataset()
    names = main_parameters(posterior)
    if not names:
        return {}
    n_panels = sum(_elements(posterior[n]) for n in names)
    out: dict[str, bytes] = {}
    with memo_style() as plt, plt.rc_context(PANEL_STYLE):
        for stem, plot in (("rank", azp.plot_rank), ("trace", azp.plot_trace)):
            pc = plot(tree, var_names=names, backend="matplotlib", col_wrap=COL_WRAP)
            fig = pc.viz["figure"].item()
            _fix_size(fig, n_panels)
            out |= render_figure(fig, stem)
        pc = azp.plot_forest(
            tree, var_names=names, backend="matplotlib", point_estimate="median", ci_probs=CI_PROBS
        )
        fig = pc.viz["figure"].item()
        fig.set_size_inches(10, 1.2 + 0.25 * n_panels * max(1, posterior.sizes["chain"]))
        out |= render_figure(fig, "forest")
    return out


def report_inputs(tree: xr.DataTree) -> xr.DataTree | None:
    """What `diagnostic_renders` reads of a run's tree, and no more (the main parameters'
    draws and the sampler statistics): small enough to hand to the figure helper process.
    None when there is nothing to draw."""
    if "posterior" not in tree.children:
        return None
    posterior = tree["posterior"].to_dataset()
    groups = {"posterior": posterior[main_parameters(posterior)]}
    if "sample_stats" in tree.children:
        groups["sample_stats"] = tree["sample_stats"].to_dataset()
    out = xr.DataTree.from_dict(groups)
    out.attrs = dict(tree.attrs)
    return out


def report_renders(tree: xr.DataTree | None, mark: str) -> dict[str, bytes]:
    """The report's ArviZ figures, each carrying the run's `mark`, rendered as files by name:
    what the figure helper process draws while the run goes on (`regimes.figures.background`),
    or this one."""
    if tree is None or "posterior" not in tree.children:
        return {}
    with marked(mark):
        return diagnostic_renders(tree)


def report_figures(tree: xr.DataTree | None, folder: Path, mark: str) -> list[Path]:
    """Draw the report's ArviZ figures, each carrying the run's `mark`, into `folder`; return
    their paths (PNG, SVG)."""
    return write_rendered(folder, report_renders(tree, mark))
