"""The declared schema of `derived.nc`: which variables every family writes, with which
dimensions, and which a family may add (the public contract, `shared/docs/contract.md`).

`check_derived(ds)` lists every way a dataset departs from it, so the contract test over all
families, and a reviewer's tooling, check one declaration instead of probing variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from regimes.draws import quantiles as quantiles_of
from regimes.spec import DEFAULT_QUANTILES

if TYPE_CHECKING:
    from regimes.dataset import FitFrame


@dataclass(frozen=True)
class Variable:
    """A derived.nc variable: its dimensions (alternatives allowed) and whether it is required."""

    name: str
    dims: tuple[tuple[str, ...], ...]
    required: bool = False
    switching: bool = False  # required of switching families (those with a `regime` dimension)
    meaning: str = ""
    # a panel dataset (one with an `asset` dimension): the dims allowed there instead of `dims`
    # (empty: the same as `dims`), and whether a panel must have the variable
    panel_dims: tuple[tuple[str, ...], ...] = ()
    panel: bool = False

    def allowed(self, is_panel: bool) -> tuple[tuple[str, ...], ...]:
        """The dimensions this variable may have in a single-asset or a panel dataset."""
        return self.panel_dims if is_panel and self.panel_dims else self.dims


SCHEMA: tuple[Variable, ...] = (
    Variable(
        "price",
        (("time",),),
        required=True,
        meaning="observed target, natural units",
        panel_dims=(("asset", "time"),),
    ),
    Variable(
        "fair_value",
        (("time", "quantile"),),
        required=True,
        meaning="fair value quantiles",
        panel_dims=(("asset", "time", "quantile"),),
    ),
    Variable(
        "deviation_pct",
        (("time", "quantile"),),
        required=True,
        meaning="100·(price/fv − 1)",
        panel_dims=(("asset", "time", "quantile"),),
    ),
    Variable(
        "deviation",
        (("time", "quantile"),),
        meaning="price − fv in the target's units (percentage points for a rate)",
        panel_dims=(("asset", "time", "quantile"),),
    ),
    Variable("in_sample", (("time",),), required=True, meaning="1 in the fit window"),
    Variable("factor", (("time", "term"),), required=True, meaning="factors, natural units"),
    Variable("pit", (("time",),), required=True, meaning="one-step PIT (posterior predictive)"),
    Variable("predictive_q", (("time", "quantile"),), required=True, meaning="one-step bands"),
    Variable("regime_prob", (("time", "regime"),), switching=True, meaning="smoothed p(s_t)"),
    Variable("regime_prob_q", (("time", "regime", "quantile"),), switching=True),
    Variable(
        "fair_value_by_regime",
        (("time", "regime", "quantile"),),
        switching=True,
        panel_dims=(("asset", "time", "regime", "quantile"),),
    ),
    Variable(
        "expected_duration",
        (("regime", "quantile"), ("time", "regime", "quantile")),
        switching=True,
        meaning="expected regime duration in periods",
    ),
    Variable("transition", (("regime", "regime_to", "quantile"),), switching=True),
    Variable("transition_t", (("time", "regime", "regime_to"),)),
    Variable("most_likely_regime", (("time",),), switching=True),
    Variable("switch_prob", (("time",),), switching=True),
    Variable(
        "coef",
        (
            ("term", "quantile"),
            ("time", "term", "quantile"),
            ("term", "regime", "quantile"),
            ("time", "term", "regime", "quantile"),
        ),
        meaning="coefficients in natural units",
        panel_dims=(("asset", "term", "regime", "quantile"),),
        panel=True,
    ),
    Variable(
        "coef_pop",
        (("term", "regime", "quantile"),),
        panel=True,
        meaning="population-level (pooled) sensitivities of a panel, standardised units",
    ),
    Variable("r2_draws_q", (("quantile",),)),
    Variable("break_prob", (("time", "break"),), meaning="change points: p(break in month t)"),
    Variable("break_date", (("break", "quantile"),)),
)
BY_NAME = {v.name: v for v in SCHEMA}


def fair_value_variables(
    frame: FitFrame, fair_value_draws: np.ndarray, quantiles: np.ndarray
) -> dict[str, Any]:
    """The required variables every family derives the same way from its per-draw fair value
    (draws, months of `frame`): `price`, `fair_value` and `deviation_pct` quantiles (NaN where
    the price is not observed), `deviation` (price − fair value in the target's own units: the
    gap of a rate in percentage points), `factor` and `in_sample`."""
    price = frame.y.to_numpy(dtype=float)
    deviation = 100.0 * (price[None, :] / fair_value_draws - 1.0)
    gap = price[None, :] - fair_value_draws
    return {
        "price": ("time", price, {"units": frame.units, "long_name": frame.target}),
        "fair_value": (
            ("time", "quantile"),
            quantiles_of(fair_value_draws, quantiles),
            {"units": frame.units},
        ),
        "deviation_pct": (("time", "quantile"), quantiles_of(deviation, quantiles), {"units": "%"}),
        "deviation": (("time", "quantile"), quantiles_of(gap, quantiles), {"units": frame.units}),
        "factor": (("time", "term"), frame.X.to_numpy()),
        "in_sample": ("time", frame.fit.to_numpy().astype(np.int8)),
    }


REQUIRED_ATTRS = ("experiment", "model", "family", "sample_start", "sample_end", "converged")


def check_derived(ds: xr.Dataset, *, require_run_attrs: bool = True) -> list[str]:
    """Every departure of `ds` from the declared schema, as plain sentences (empty: conforms).

    Checks required variables and their dimensions, the `time` and `quantile` coordinates, regime
    labels as strings, and (with `require_run_attrs`) the run attributes of the contract.
    Variables the schema does not name are allowed: families may add outputs."""
    problems: list[str] = []
    switching = "regime" in ds.dims
    is_panel = "asset" in ds.dims
    for var in SCHEMA:
        if var.name not in ds:
            if var.required or (var.switching and switching) or (var.panel and is_panel):
                problems.append(f"missing variable {var.name!r}")
            continue
        dims = ds[var.name].dims
        if dims not in var.allowed(is_panel):
            allowed = " or ".join(str(d) for d in var.allowed(is_panel))
            problems.append(f"{var.name!r} has dims {dims}; the schema allows {allowed}")
    if "time" in ds.coords and not np.issubdtype(ds["time"].dtype, np.datetime64):
        problems.append(f"coordinate 'time' is {ds['time'].dtype}, not datetime64")
    if "quantile" in ds.coords:
        missing = [q for q in DEFAULT_QUANTILES if not np.isclose(ds["quantile"].values, q).any()]
        if missing:
            problems.append(f"coordinate 'quantile' lacks {missing}")
    if switching and ds["regime"].dtype.kind not in "UO":
        problems.append("coordinate 'regime' must hold string labels")
    if is_panel and ds["asset"].dtype.kind not in "UO":
        problems.append("coordinate 'asset' must hold string labels")
    if is_panel and ds.attrs.get("reference_asset") not in list(ds["asset"].values):
        problems.append("a panel needs attribute 'reference_asset' naming one of its assets")
    if require_run_attrs:
        problems += [f"missing attribute {a!r}" for a in REQUIRED_ATTRS if a not in ds.attrs]
    return problems
