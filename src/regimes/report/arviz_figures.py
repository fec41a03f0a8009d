"""ArviZ convergence figures for reports: rank, trace and forest plots of the main parameters.

Only scalar and small vector parameters are drawn; latent paths (any variable with a `time` dim)
and large arrays would make unreadable walls of panels, so they are left out.
"""

from __future__ import annotations

import math
from pathlib import Path

import xarray as xr

from regimes.figures import memo_style, save_figure

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


def diagnostic_figures(tree: xr.DataTree, folder: Path) -> list[Path]:
    """Draw rank, trace and forest plots of the main parameters into `folder` (PNG + SVG each);
    return the PNG paths (empty when the posterior has no plottable parameter)."""
    import arviz_plots as azp

    posterior = tree["posterior"].to_dataset()
    names = main_parameters(posterior)
    if not names:
        return []
    n_panels = sum(_elements(posterior[n]) for n in names)
    out: list[Path] = []
    with memo_style() as plt, plt.rc_context(PANEL_STYLE):
        for stem, plot in (("rank", azp.plot_rank), ("trace", azp.plot_trace)):
            pc = plot(tree, var_names=names, backend="matplotlib", col_wrap=COL_WRAP)
            fig = pc.viz["figure"].item()
            _fix_size(fig, n_panels)
            out.append(save_figure(fig, folder, stem)[0])
        pc = azp.plot_forest(
            tree, var_names=names, backend="matplotlib", point_estimate="median", ci_probs=CI_PROBS
        )
        fig = pc.viz["figure"].item()
        fig.set_size_inches(10, 1.2 + 0.25 * n_panels * max(1, posterior.sizes["chain"]))
        out.append(save_figure(fig, folder, "forest")[0])
    return out
