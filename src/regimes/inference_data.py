"""A fit's DataTree as ArviZ users expect it: `observed_data` beside `posterior_predictive` and
`log_likelihood` (same names, `time` dimension and natural units), so `az.plot_ppc_dist`,
`az.loo`, `az.plot_loo_pit` and `az.compare` work on any family's run unchanged; the parameters'
natural-units view (`posterior_natural`); and the scale of every group stated in its attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimes.dataset import FitFrame
from regimes.families.base import NATURAL_SCALE, Family, Fit

NATURAL_GROUP = "posterior_natural"
MODEL_SCALE = (
    "the model's standardised scale: the target (log-transformed where the spec says so) and "
    "each factor centred and divided by their fit-window sd; `posterior_natural` has the "
    "parameters in natural units"
)


def observed_data(frame: FitFrame, time: np.ndarray, assets: list[str] | None) -> xr.Dataset:
    """The observed target `y` over `time` (the scored months) in natural units and, for a
    panel scored per asset (`y_asset` in the log-likelihood), every asset's."""
    t = pd.DatetimeIndex(time)
    attrs = {"units": frame.units, "long_name": f"observed {frame.target}"}
    out = {"y": xr.DataArray(frame.y.reindex(t).to_numpy(float), dims="time", attrs=attrs)}
    if assets:
        values = frame.Y[assets].reindex(t).to_numpy(float)
        out["y_asset"] = xr.DataArray(
            values, dims=("time", "asset"), attrs={"long_name": "observed value of each asset"}
        )
    coords: dict = {"time": t.values, **({"asset": assets} if assets else {})}
    ds = xr.Dataset(out, coords=coords)
    ds.attrs["scale"] = NATURAL_SCALE
    return ds


def arviz_groups(tree: xr.DataTree, family: Family, fit: Fit) -> None:
    """Make `tree` (with its `posterior_predictive` and natural-units `log_likelihood`) the
    schema ArviZ reads: observed data on the replicates' scale and months, the natural-units
    parameters, and each group's scale stated. The model-scale copy of the target stays in
    `constant_data`."""
    pp = tree["posterior_predictive"].to_dataset()
    pp["y"].attrs.update(
        {"units": fit.frame.units, "long_name": f"one-step-ahead replicate of {fit.frame.target}"}
    )
    pp.attrs["scale"] = NATURAL_SCALE
    tree["posterior_predictive"] = xr.DataTree(pp)
    assets = None
    if "log_likelihood" in tree.children and "asset" in tree["log_likelihood"].dims:
        assets = [str(a) for a in tree["log_likelihood"]["asset"].values]
    tree["observed_data"] = xr.DataTree(observed_data(fit.frame, pp["time"].values, assets))
    natural = family.natural_posterior(fit)
    if natural.data_vars:
        tree[NATURAL_GROUP] = xr.DataTree(natural)
    tree["posterior"].attrs["scale"] = MODEL_SCALE
    if "constant_data" in tree.children:
        tree["constant_data"].attrs["scale"] = MODEL_SCALE
