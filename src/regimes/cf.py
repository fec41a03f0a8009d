"""CF-style attributes on `derived.nc`, applied in one place as a run writes it (`cf_dataset`): the
families keep writing their own attributes; this module maps them to the CF conventions
(`Conventions`, `title`, `long_name` in words and `units` on every variable and coordinate,
`flag_values`/`flag_meanings` on coded variables, lists as lists, no JSON in attributes, the
run's own period, months or quarters) so the file reads the same in any netCDF tool.
`cf_problems` lists every way a dataset departs from these rules (the tests run it on each
family's derived.nc, beside cf_xarray's parsing).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from regimes.dataset import variable_units

CONVENTIONS = "CF-1.10"
LIST_ATTRS = ("regime_names", "factors")  # families write them comma-joined
PPC_JSON = "ppc_checks"  # a JSON attribute of the posterior predictive check -> a variable
PPC_VARIABLE = "ppc_check"

# long names in words; {target} is the target's own name, {period} "month" or "quarter"
WORDS = {
    "price": "{target}",
    "fair_value": "fair value of {target}",
    "deviation_pct": "deviation of {target} from its fair value, 100 × (price / fair value − 1)",
    "deviation": "{target} minus its fair value",
    "in_sample": "whether the {period} is inside the fit window",
    "factor": "factors the fair value is computed from",
    "pit": "probability integral transform of each observation under its one-step-ahead "
    "predictive distribution",
    "predictive_q": "one-step-ahead posterior predictive quantiles of {target}",
    "regime_prob": "posterior mean probability of each regime",
    "regime_prob_q": "posterior quantiles of the probability of each regime",
    "fair_value_by_regime": "fair value of {target} if that regime held",
    "expected_duration": "expected duration of each regime",
    "transition": "probability of moving from regime to regime_to in one {period}",
    "transition_t": "probability of moving from regime to regime_to in each {period}",
    "most_likely_regime": "most likely regime (Viterbi path at the posterior-median parameters)",
    "switch_prob": "posterior probability that the regime changed in the {period}",
    "coef": "coefficients in natural units",
    "coef_pop": "population-level sensitivities, standardised units",
    "r2_draws_q": "Bayesian R²",
    "break_prob": "posterior probability that the change point happened in the {period}",
    "break_date": "date of the change point",
    "anchor_identified_by_regime": "whether the price reverts to the regime's fair value while "
    "it holds",
    "anchor_half_life_by_regime": "half-life of deviations from the regime's fair value",
    PPC_VARIABLE: "posterior predictive checks of the probability integral transforms",
}
COORD_WORDS = {
    "time": "start of the {period}",
    "quantile": "posterior quantile",
    "regime": "name of the regime",
    "regime_to": "regime in the next {period}",
    "term": "factor",
    "asset": "name of the asset",
    "break": "change point",
    "check": "posterior predictive check",
    "statistic": "statistic of the check",
    "volatility": "regime of the volatility chain",
}
DIMENSIONLESS = ("regime_prob", "regime_prob_q", "transition", "transition_t", "switch_prob",
                 "pit", "break_prob", "r2_draws_q", "quantile")  # fmt: skip
PRICE_UNITS = ("price", "fair_value", "fair_value_by_regime", "predictive_q", "deviation")
FLAGS = {
    "in_sample": ([0, 1], "outside_fit_window inside_fit_window"),
    "anchor_identified_by_regime": ([-1, 0, 1], "too_few_periods no_identified_anchor reverts"),
}


def _list(value: Any, sep: str) -> list[str]:
    """A joined string as the list it joins (a list stays a list)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(sep) if v.strip()]
    return [str(v) for v in np.atleast_1d(value)]


def _ppc_variable(text: str) -> xr.DataArray:
    """The JSON of the posterior predictive checks as a (check, statistic) variable."""
    checks = json.loads(text)
    names = list(checks)
    stats = sorted({k for c in checks.values() for k in c})
    values = np.array([[float(checks[n].get(k, np.nan)) for k in stats] for n in names])
    return xr.DataArray(values, dims=("check", "statistic"),
                        coords={"check": names, "statistic": stats})  # fmt: skip


def cf_dataset(
    derived: xr.Dataset, *, title: str, target: str, units: str, period: str
) -> xr.Dataset:
    """`derived` with CF-style attributes: `title`, `target` (the target in words, e.g. "Federal
    funds rate"), its `units`, the run's `period` ("month" or "quarter")."""
    ds = derived.copy()
    attrs = dict(ds.attrs)
    if isinstance(attrs.get(PPC_JSON), str):
        ds[PPC_VARIABLE] = _ppc_variable(attrs.pop(PPC_JSON))
    for name in LIST_ATTRS:
        if name in attrs:
            attrs[name] = _list(attrs[name], ",")
    attrs = {k: v for k, v in attrs.items() if not (isinstance(v, list) and not v)}
    ds.attrs = {"Conventions": CONVENTIONS, "title": title, **attrs}
    fill = {"target": target, "period": period}
    for name in ds.variables:
        da = ds[name]
        old = dict(da.attrs)
        words = (COORD_WORDS if name in ds.dims else WORDS).get(str(name))
        new: dict[str, Any] = {}
        if words:
            new["long_name"] = words.format(**fill)
        elif "long_name" not in old:  # a family's own output: its note, else its name in words
            what = "coordinate" if name in ds.dims else "output"
            family = ds.attrs.get("family", "model")
            plain = f"{str(name).replace('_', ' ')} ({what} of the {family} family)"
            new["long_name"] = str(old.get("note") or old.get("meaning") or plain)
        if name == "price" and old.get("long_name"):
            new["series"] = str(old["long_name"])  # the id it was loaded by
        new.update(_units(str(name), old, units, period, ds))
        if name == "factor" and ds.sizes.get("term"):  # one variable, each term in its units
            new = {k: v for k, v in new.items() if k != "units"}
            new["units_by_term"] = [variable_units(str(t)) or "1" for t in ds["term"].values]
        new.update(_flags(str(name), ds))
        if name == "time":
            new.update({"standard_name": "time", "axis": "T"})
        da.attrs = {k: v for k, v in {**old, **new}.items() if not (isinstance(v, list) and not v)}
    return ds


def _units(name: str, old: dict[str, Any], units: str, period: str, ds: xr.Dataset) -> dict:
    """CF units: dimensionless "1", the target's units, the run's periods for durations."""
    if name in FLAGS or name == "most_likely_regime" or ds[name].dtype.kind in "UOSM":
        return {}
    if name in DIMENSIONLESS:
        return {"units": "1"}
    if name in PRICE_UNITS and units:
        return {"units": units}
    if old.get("units") == "periods":
        return {"units": f"{period}s"}
    if name == "deviation_pct":
        return {"units": "percent"}
    return {} if "units" in old or name in ds.dims else {"units": "1"}


def _flags(name: str, ds: xr.Dataset) -> dict[str, Any]:
    """flag_values and flag_meanings of a coded variable (regimes by their names)."""
    if name == "most_likely_regime" and "regime" in ds.coords:
        labels = [str(r) for r in ds["regime"].values]
        return {"flag_values": list(range(len(labels))), "flag_meanings": " ".join(labels)}
    if name in FLAGS:
        values, meanings = FLAGS[name]
        return {"flag_values": values, "flag_meanings": meanings}
    return {}


def _json_like(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip().startswith(("{", "[")):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def cf_problems(ds: xr.Dataset) -> list[str]:
    """Every way `ds` departs from the CF-style rules above, as plain sentences (empty: none)."""
    problems = []
    if not str(ds.attrs.get("Conventions", "")).startswith("CF-"):
        problems.append("no global attribute Conventions = 'CF-...'")
    if not ds.attrs.get("title"):
        problems.append("no global attribute title")
    for where, attrs in [("the dataset", ds.attrs), *[(f"{n!r}", ds[n].attrs) for n in ds.variables]]:  # fmt: skip
        for key, value in attrs.items():
            if _json_like(value):
                problems.append(f"{where}: attribute {key!r} holds JSON")
            if key in LIST_ATTRS and isinstance(value, str) and "," in value:
                problems.append(f"{where}: attribute {key!r} is a comma-joined string")
    for name in ds.variables:
        attrs = ds[name].attrs
        long_name = str(attrs.get("long_name", ""))
        if not long_name or long_name == name:
            problems.append(f"{name!r}: no long_name in words")
        coded = "flag_values" in attrs
        if coded and len(np.atleast_1d(attrs["flag_values"])) != len(
            str(attrs.get("flag_meanings", "")).split()
        ):
            problems.append(f"{name!r}: flag_values and flag_meanings differ in length")
        numeric = ds[name].dtype.kind in "fiu"
        has_units = "units" in attrs or "units_by_term" in attrs
        if numeric and not coded and name not in ds.dims and not has_units:
            problems.append(f"{name!r}: no units")
        if "periods" in str(attrs.get("units", "")):
            problems.append(f"{name!r}: units 'periods' instead of months or quarters")
    return problems
