"""Forecasts of a finished run: h-step-ahead regime probabilities and fair value, with full
posterior uncertainty, unconditionally and along factor paths given in scenario files.

A scenario file is a CSV with a `month` column (YYYY-MM) and one column per factor of the
experiment, in the factors' natural units (as `derived.nc`'s `factor`), one row per future
period, consecutive and starting right after the run's last month with factors. Its name is the
file stem. Columns for other known factors (or catalog series) are ignored, so one file can
serve experiments that use different subsets of factors.

Every forecast appends the scenario's months to the run's frame (target missing there) while the
scale window stays the fitted one, so standardisation is exactly the fitted one, and then asks
the family for its per-draw forecast (`Family.forecast_draws`): fair value along the paths and,
for switching families, each regime's anchor and probability (the model's own transition graph,
so covariate-driven transitions follow the scenario's covariates). Regime probabilities start from
each draw's filtered p(s_T | data) at the end of the fit window and are propagated month by month
through every later month (also the months with factors but no price before the scenario):
p_{t} = p_{t-1} · P_{t-1}. For a constant P that is last_filtered · P^h; a change point's
absorbing last regime comes out of P. The `unconditional` scenario holds the factors at their
last observed values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from regimes import factors as fx
from regimes.data import CATALOG
from regimes.dataset import FitFrame
from regimes.draws import quantiles
from regimes.errors import RegimesError
from regimes.families import get_family
from regimes.families.base import Fit
from regimes.figures import marked, save_figure
from regimes.figures.forecast import plot_forecast
from regimes.files import exists, is_file, missing_reason, sha256_file, shorten
from regimes.reopen import current_result, result_inputs, run_config, run_frame, stamp
from regimes.results import (
    FIGURES,
    add_drawn_files,
    add_file_to_run,
    load_listed,
    open_run,
    write_netcdf,
)

if TYPE_CHECKING:
    from regimes.results import Run
    from regimes.reuse import Inputs

FORECAST_FILE = "forecast.nc"
MAX_HORIZON = 1200  # periods ahead (a century of months): beyond, the arrays outgrow memory
UNCONDITIONAL = "unconditional"
FIGURE_STEM = "forecast"
_MONTH = re.compile(r"^\d{4}-\d{2}$")

log = logging.getLogger(__name__)


class ScenarioError(RegimesError):
    """A scenario file is malformed or does not fit the run (the message names where and how)."""


class ForecastError(RegimesError):
    """A forecast cannot be made for this run or with these settings."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Factor paths for future periods: `values` has month-start rows and one column per factor."""

    name: str
    values: pd.DataFrame
    source: str


# ------------------------------------------------------------------ scenario files


def _known_names() -> set[str]:
    return {n.lower() for n in [*fx.FACTORS, *CATALOG]}


def _add_months(ts: pd.Timestamp, n: int) -> pd.Timestamp:
    return ts + pd.DateOffset(months=n)


def _months_between(a: pd.Timestamp, b: pd.Timestamp) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


def frame_step(frame: FitFrame) -> int:
    """Months between consecutive periods of the frame (1 monthly, 3 quarterly)."""
    t = frame.time
    return _months_between(t[-2], t[-1]) if len(t) > 1 else 1


def load_scenario(
    path: str | Path,
    factors: Sequence[str],
    *,
    last_month: pd.Timestamp | None = None,
    last_observed: pd.Timestamp | None = None,
    step: int = 1,
) -> Scenario:
    """Read and validate a scenario CSV for an experiment's `factors`.

    With `last_month` (the run's last month with factors) the file must reach the period right
    after it without a gap; its rows up to `last_month` are superseded by the observed factors
    (so one file serves experiments whose factors end in different months) and dropped. With
    `last_observed` (the last month with an observed target) a file starting at or before it is
    in the past. Raises ScenarioError naming the column, row or month at fault, with a fix."""
    path = Path(path)
    hint = "fix the file (columns: month, " + ", ".join(factors) + "; one row per month)"
    if not is_file(path):
        raise ScenarioError(
            f"scenario file {shorten(str(path))} {missing_reason(path)}; pass the path of a CSV file"
        )
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not a readable CSV ({exc}); {hint}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    if "month" not in raw.columns:
        raise ScenarioError(f"{path}: no 'month' column (YYYY-MM); {hint}")
    columns = [c for c in raw.columns if c != "month"]
    known = _known_names()
    unknown = [c for c in columns if c not in factors and c.lower() not in known]
    if unknown:
        raise ScenarioError(
            f"{path}: unknown column(s) {', '.join(unknown)}: not factors of the experiment "
            f"({', '.join(factors) or 'none'}) nor known factor names; rename or remove them"
        )
    missing = [f for f in factors if f not in columns]
    if missing:
        raise ScenarioError(
            f"{path}: missing column(s) {', '.join(missing)} for factors of the experiment; "
            f"add a path (natural units) for each"
        )
    if raw.empty:
        raise ScenarioError(f"{path}: no rows; add one row per future month")
    months = []
    for i, value in enumerate(raw["month"]):
        value = str(value).strip()
        if not _MONTH.match(value):
            raise ScenarioError(
                f"{path}: line {i + 2}: month {value!r} is not YYYY-MM; write e.g. 2026-07"
            )
        months.append(pd.Timestamp(f"{value}-01"))
    data = np.empty((len(raw), len(factors)))
    for j, col in enumerate(factors):
        for i, cell in enumerate(raw[col]):
            try:
                data[i, j] = float(str(cell).strip())
            except ValueError:
                data[i, j] = math.nan
            if not math.isfinite(data[i, j]):
                raise ScenarioError(
                    f"{path}: line {i + 2} (month {months[i]:%Y-%m}), column {col!r}: "
                    f"{cell!r} is not a finite number; write the factor's value in natural units"
                )
    for i in range(1, len(months)):
        if _months_between(months[i - 1], months[i]) != step:
            raise ScenarioError(
                f"{path}: line {i + 2}: month {months[i]:%Y-%m} does not follow "
                f"{months[i - 1]:%Y-%m}; months must be consecutive"
                + (f" (every {step} months)" if step != 1 else "")
                + " without gaps or repeats"
            )
    if last_observed is not None and months[0] <= last_observed:
        raise ScenarioError(
            f"{path}: first month {months[0]:%Y-%m} is in the past: the run observes the target "
            f"up to {last_observed:%Y-%m}; start the scenario at "
            f"{_add_months(last_observed, step):%Y-%m} or later"
        )
    source = str(path)
    values = pd.DataFrame(data, index=pd.DatetimeIndex(months), columns=list(factors))
    if last_month is not None:
        expected = _add_months(last_month, step)
        if months[0] > expected or months[-1] < expected:
            raise ScenarioError(
                f"{path}: months {months[0]:%Y-%m}..{months[-1]:%Y-%m} leave a gap: the run has "
                f"factors up to {last_month:%Y-%m}, so the scenario must cover {expected:%Y-%m}"
            )
        if months[0] < expected:
            source += f" (rows up to {last_month:%Y-%m} superseded by observed factors)"
            values = values.loc[values.index >= expected]
    return Scenario(name=path.stem, values=values, source=source)


def held_scenario(frame: FitFrame, horizon: int) -> Scenario:
    """The unconditional scenario: every factor held at its last observed value."""
    step = frame_step(frame)
    last = frame.time[-1]
    months = pd.DatetimeIndex([_add_months(last, step * (h + 1)) for h in range(horizon)])
    row = frame.X.iloc[-1].to_numpy(dtype=float)
    values = pd.DataFrame(np.tile(row, (horizon, 1)), index=months, columns=list(frame.factors))
    return Scenario(
        name=UNCONDITIONAL,
        values=values,
        source=f"factors held at their last observed values ({last:%Y-%m})",
    )


def extend_frame(frame: FitFrame, values: pd.DataFrame) -> FitFrame:
    """The frame with future months appended (factor values given, target missing); fit and
    scale windows unchanged, so the standardisation is exactly the fitted one."""
    extra = pd.DataFrame(index=values.index, columns=frame.frame.columns, dtype=float)
    for col in frame.factors:
        extra[col] = values[col].to_numpy(dtype=float)
    new = pd.concat([frame.frame, extra])
    pad = np.zeros(len(values), dtype=bool)

    def mask(m: np.ndarray, name) -> pd.Series:
        return pd.Series(
            np.concatenate([np.asarray(m, dtype=bool), pad]), index=new.index, name=name
        )

    return dataclasses.replace(
        frame,
        frame=new,
        fit=mask(frame.fit.to_numpy(), frame.fit.name),
        scale_window=mask(frame.scale, "scale_window"),
    )


# ------------------------------------------------------------------ per-draw forecasts


def scenario_draws(tree, frame: FitFrame, spec, scenario: Scenario) -> xr.Dataset:
    """Per-draw forecasts over the scenario's months (the family's `forecast_draws` on the
    frame extended by the scenario's factor paths): `fair_value` (sample, time) and, for
    switching models, `fair_value_by_regime` and `regime_prob` (sample, time, regime)."""
    ext = extend_frame(frame, scenario.values)
    h = len(scenario.values)
    draws = get_family(spec.family).forecast_draws(Fit(tree, frame, spec), ext)
    return draws.isel(time=slice(-h, None))


def forecast_run(
    run_dir: str | Path,
    scenarios: Sequence[str | Path] = (),
    horizon: int = 24,
    *,
    data_dir: str | Path | None = None,
) -> xr.Dataset:
    """Forecast a run `horizon` periods ahead: the unconditional scenario plus one per file.

    Returns a Dataset with dims (scenario, time, regime, quantile): `fair_value`,
    `fair_value_by_regime`, `regime_prob` (posterior mean), `regime_prob_q`, and `factor`
    (scenario, time, term), the factor paths used, in natural units."""
    if not 1 <= horizon <= MAX_HORIZON:
        raise ForecastError(f"--horizon must be from 1 to {MAX_HORIZON} periods; got {horizon}")
    run = open_run(run_dir)
    inputs = forecast_inputs(run, scenarios, horizon)
    exp = run_config(run)
    spec = exp.spec
    assert spec is not None
    frame = run_frame(run, exp, data_dir)
    tree = run.posterior()
    last, step = frame.time[-1], frame_step(frame)
    items = [held_scenario(frame, horizon)]
    for path in scenarios:
        sc = load_scenario(
            path,
            frame.factors,
            last_month=last,
            last_observed=frame.y.last_valid_index(),
            step=step,
        )
        if sc.name in {s.name for s in items}:
            raise ScenarioError(
                f"{path}: scenario name {sc.name!r} is already taken; rename the file"
            )
        if len(sc.values) < horizon:
            raise ScenarioError(
                f"{path}: {len(sc.values)} months, fewer than the horizon {horizon}; add rows up "
                f"to {_add_months(last, step * horizon):%Y-%m} or pass a shorter --horizon"
            )
        items.append(dataclasses.replace(sc, values=sc.values.iloc[:horizon]))
    q = np.asarray(exp.outputs.quantiles)
    draws = [scenario_draws(tree, frame, spec, sc) for sc in items]
    time = items[0].values.index
    coords: dict = {
        "scenario": [s.name for s in items],
        "time": time.values,
        "horizon": ("time", np.arange(1, horizon + 1)),
        "quantile": q,
        "term": list(frame.factors),
    }
    units = frame.units
    fv = np.stack([quantiles(d["fair_value"].values, q) for d in draws])
    ds = xr.Dataset(
        {
            "fair_value": (("scenario", "time", "quantile"), fv, {"units": units}),
            "factor": (
                ("scenario", "time", "term"),
                np.stack([s.values.to_numpy(dtype=float) for s in items]),
                {"note": "factor paths of each scenario, natural units"},
            ),
            "source": ("scenario", np.asarray([s.source for s in items], dtype=str)),
        },
        coords=coords,
    )
    ds["fair_value"].attrs["note"] = (
        "posterior quantiles of the model's fair value along the scenario's factor path"
        + (
            "; mixture of the regimes' anchors weighted by predicted regime probabilities"
            if "regime_prob" in draws[0]
            else ""
        )
    )
    if "regime_prob" in draws[0]:
        ds = ds.assign_coords(regime=list(draws[0]["regime"].values))
        ds["fair_value_by_regime"] = (
            ("scenario", "time", "regime", "quantile"),
            np.stack([quantiles(d["fair_value_by_regime"].values, q) for d in draws]),
            {"units": units, "note": "the regime's anchor μ_k(x_t) if that regime held"},
        )
        ds["regime_prob"] = (
            ("scenario", "time", "regime"),
            np.stack([d["regime_prob"].values.mean(axis=0) for d in draws]),
            {"note": "posterior mean of p(s_t | data up to the fit end), propagated by P_t"},
        )
        ds["regime_prob_q"] = (
            ("scenario", "time", "regime", "quantile"),
            np.stack([quantiles(d["regime_prob"].values, q) for d in draws]),
        )
    ds.attrs.update(
        {
            "experiment": exp.name,
            "run_id": run.manifest.get("run_id", run.path.name),
            "family": spec.family,
            "horizon": horizon,
            "last_month_with_factors": f"{last:%Y-%m}",
            "fit_end": frame.attrs.get("fit_end", ""),
            "unconditional": "the 'unconditional' scenario holds every factor at its last "
            f"observed value ({last:%Y-%m})",
            "scenario_sources": json.dumps({s.name: s.source for s in items}),
            "target": frame.target,
        }
    )
    return stamp(ds, inputs)


def forecast_inputs(run: Run, scenarios: Sequence[str | Path], horizon: int) -> Inputs:
    """What a run's forecast depends on (`reopen.result_inputs`): the run, the horizon and the
    scenario files by name and sha256 (a file that cannot be read is named as such)."""
    files = {Path(p).stem: (sha256_file(p) if is_file(p) else f"unreadable {p}") for p in scenarios}
    return result_inputs(run, {"forecast": {"horizon": horizon, "scenarios": files}})


# ------------------------------------------------------------------ run directory outputs


def write_forecast(run_dir: str | Path, ds: xr.Dataset) -> Path:
    """Write forecast.nc into the run directory atomically and record it in the manifest."""
    return add_file_to_run(run_dir, FORECAST_FILE, lambda tmp: write_netcdf(ds, tmp))


def load_forecast(run_dir: str | Path) -> xr.Dataset | None:
    """A run's forecast.nc, or None if it has none yet; one its manifest does not list or whose
    sha256 differs (copied in, edited) is a RunError, never read."""
    if not exists(Path(run_dir) / FORECAST_FILE):
        return None
    return load_listed(run_dir, FORECAST_FILE)


def ensure_forecast(
    run_dir: str | Path,
    scenarios: Sequence[str | Path] = (),
    horizon: int = 24,
    *,
    data_dir: str | Path | None = None,
) -> xr.Dataset:
    """The run's stored forecast.nc if it is the one its manifest lists and its reuse key is
    the one these scenario files and horizon give now (`forecast_inputs`); else compute and
    store it, saying why in one log line."""
    run = open_run(run_dir)
    ds, why = current_result(run, FORECAST_FILE, forecast_inputs(run, scenarios, horizon))
    if ds is not None:
        return ds
    if why:
        log.info(f"forecast {run.path}: computing it again: {why}")
    ds = forecast_run(run.path, scenarios, horizon, data_dir=data_dir)
    write_forecast(run.path, ds)
    return ds


def write_forecast_figure(run_dir: str | Path, ds: xr.Dataset) -> list[Path]:
    """Draw figures/forecast.png/.svg into the run directory and record them in the manifest."""
    run = open_run(run_dir)
    exp = run_config(run)
    fig = plot_forecast(run.derived(), ds, log_scale=exp.outputs.log_scale)

    def draw(folder: Path) -> None:
        with marked(run.figure_mark):
            save_figure(fig, folder, FIGURE_STEM)

    return add_drawn_files(run.path, FIGURES, draw)


def summary(ds: xr.Dataset, horizons: Sequence[int] | None = None) -> str:
    """Per scenario: fair value median and 90% band, regime probabilities at horizons 1, 12, H."""
    n = ds.sizes["time"]
    hs = sorted({h for h in (horizons or (1, 12, n)) if 1 <= h <= n})
    units = ds["fair_value"].attrs.get("units", "")
    regimes = list(ds["regime"].values) if "regime" in ds.coords else []
    lines = [
        f"forecast of {ds.attrs.get('experiment', '')} ({ds.attrs.get('run_id', '')}), "
        f"factors to {ds.attrs.get('last_month_with_factors', '')}; fair value in {units}"
    ]
    head = f"  {'h':>3}  {'month':<7}  {'median':>9}  {'90% band':>21}"
    head += "".join(f"  {'P(' + r + ')':>18}" for r in regimes)
    for name in ds["scenario"].values:
        sc = ds.sel(scenario=name)
        lines.append(f"scenario {name}: {sc['source'].item()}")
        lines.append(head)
        for h in hs:
            t = sc.isel(time=h - 1)
            fv = t["fair_value"]
            band = f"[{float(fv.sel(quantile=0.05)):,.0f}, {float(fv.sel(quantile=0.95)):,.0f}]"
            row = (
                f"  {h:>3}  {pd.Timestamp(t['time'].values):%Y-%m}  "
                f"{float(fv.sel(quantile=0.5)):>9,.0f}  {band:>21}"
            )
            for r in regimes:
                row += f"  {float(t['regime_prob'].sel(regime=r)):>18.2f}"
            lines.append(row)
    return "\n".join(lines)
