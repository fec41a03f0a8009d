"""Posterior draws as plain arrays and back: stacking, target transforms and quantile summaries.

Written once for every family: per-draw arrays have the draws first (chain-major, as
`stack_draws` flattens them), quantile summaries put the quantile axis last (the `quantile`
dimension of derived.nc).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr

Transform = Literal["log", "level"]
SAMPLE = "sample"


def stack_draws(post: xr.Dataset, name: str) -> np.ndarray:
    """One posterior variable as (draws, ...) with chains and draws stacked into one axis."""
    da = post[name]
    da = da.transpose("chain", "draw", ...)
    values = np.asarray(da.values)
    return values.reshape(-1, *values.shape[2:])


def quantiles(draws: np.ndarray, q: Sequence[float] | np.ndarray) -> np.ndarray:
    """Quantiles over the first (draw) axis, the quantile axis moved last."""
    return np.moveaxis(np.quantile(draws, np.asarray(q), axis=0), 0, -1)


def transform(values: np.ndarray, how: Transform) -> np.ndarray:
    """The modelled scale of a target: its log (positive values only) or the level itself.

    Missing values (NaN) pass through; a non-positive observed value under `log` is an error."""
    if how == "log":
        with np.errstate(invalid="ignore"):
            if np.any(values[np.isfinite(values)] <= 0):
                raise ValueError("a log target needs positive values")
            return np.log(values)
    return values


def inverse_transform(values: np.ndarray, how: Transform) -> np.ndarray:
    """Back from the modelled scale to natural units (inverse of `transform`)."""
    return np.exp(values) if how == "log" else values


def per_draw(
    values: np.ndarray, dims: Sequence[str], coords: dict[str, object] | None = None
) -> xr.DataArray:
    """Label a per-draw array (draws first) as a DataArray with a `sample` dimension."""
    return xr.DataArray(values, dims=(SAMPLE, *dims), coords=coords or {})


def by_chain(
    values: np.ndarray,
    post: xr.Dataset,
    dims: Sequence[str] = (),
    coords: dict[str, object] | None = None,
    **attrs: str,
) -> xr.DataArray:
    """A per-draw array (draws first, chain-major as `stack_draws` makes them) back over the
    posterior's (chain, draw), labelled with `dims` and `attrs` (e.g. units, long_name)."""
    shape = (post.sizes["chain"], post.sizes["draw"])
    values = np.asarray(values).reshape(*shape, *np.shape(values)[1:])
    sample = {"chain": post["chain"].values, "draw": post["draw"].values}
    return xr.DataArray(
        values, dims=("chain", "draw", *dims), coords={**sample, **(coords or {})}, attrs=attrs
    )
