"""A finished run's experiment and data, rebuilt from its directory and checked against it
(used by leave-future-out refits and forecasts), and what a run was computed from (its reuse
inputs, `regimes.reuse`), so a resumed study or sweep reuses it only when they are unchanged."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import xarray as xr

from regimes.config import Experiment, experiment_to_toml
from regimes.data import resolve_data_dir
from regimes.dataset import FitFrame
from regimes.errors import RegimesError, RunError
from regimes.families import get_family
from regimes.files import exists
from regimes.results import CONFIG, DATA, POSTERIOR, Run, load_listed, open_run
from regimes.reuse import Inputs, sha256_text
from regimes.spec import ModelSpec
from regimes.userdata import data_inputs, experiment_frame


def run_config(run: Run) -> Experiment:
    """The experiment exactly as run, from the run's config.toml (with its resolved model)."""
    try:
        body = tomllib.loads(run.config_text)
    except tomllib.TOMLDecodeError as exc:
        raise RunError(
            f"{run.path}/config.toml: not valid TOML ({exc}); the run directory is damaged; "
            "re-run the experiment"
        ) from None
    resolved = body.pop("resolved_model", None)
    if resolved is None:
        raise RunError(f"{run.path}/config.toml has no [resolved_model]; re-run the experiment")
    spec = ModelSpec.model_validate(resolved)
    get_family(spec.family).validate_spec(spec, where=f"{run.path}/config.toml")
    return Experiment.model_validate({**body, "spec": spec})


def run_frame(run: Run, exp: Experiment, data_dir: str | Path | None = None) -> FitFrame:
    """Rebuild the run's data frame and check it is the data the run used (its data_hash): from
    the data directory and experiment folder it recorded (absolute paths: any working directory
    does), and a DataFrame run's own columns (its data.nc)."""
    path = resolve_data_dir(data_dir or run.manifest.get("data_dir"))
    config_path = run.manifest.get("config_path")
    experiment_dir = Path(config_path).parent if isinstance(config_path, str) else None
    columns = stored_columns(run) if run.has(DATA) else None
    frame = experiment_frame(exp, path, experiment_dir=experiment_dir, columns=columns)
    stored = run.manifest.get("data_hash")
    if stored and frame.data_hash() != stored:
        raise RunError(
            f"{run.path}: the data in {path} differ from the data this run used (data_hash "
            f"{frame.data_hash()[:12]} vs {stored[:12]}); pass data_dir= with the snapshot the "
            "run used, or re-run the experiment on the current data"
        )
    return frame


def columns_dataset(columns: Mapping[str, pd.Series]) -> xr.Dataset:
    """A DataFrame run's own columns as data.nc: each column with its own dates (so gaps and
    ends are kept exactly), its name in the attribute `name`."""
    ds = xr.Dataset(attrs={"note": "the DataFrame columns the run was fitted on (run_dataframe)"})
    for i, (name, series) in enumerate(columns.items()):
        dim = f"date_{i}"
        index = pd.DatetimeIndex(series.index).as_unit("ns").rename(None)  # its own dim name
        ds[f"column_{i}"] = xr.DataArray(
            series.to_numpy(dtype=float), dims=dim, coords={dim: index}, attrs={"name": name}
        )
    return ds


def stored_columns(run: Run) -> dict[str, pd.Series]:
    """The DataFrame columns a run_dataframe run keeps in its data.nc (checked against its
    manifest), by name."""
    ds = load_listed(run.path, DATA)
    out = {}
    for var in ds.data_vars.values():
        name = str(var.attrs.get("name", var.name))
        out[name] = pd.Series(
            var.values, index=pd.DatetimeIndex(var[var.dims[0]].values), name=name
        )
    return out


def run_inputs(exp: Experiment, frame: FitFrame) -> Inputs:
    """What a run of `exp` on `frame` is computed from: its config as stored (config.toml), its
    seed and the data inputs the frame read (`userdata.experiment_frame`)."""
    return Inputs(
        sha256_text(experiment_to_toml(exp)), exp.sampler.seed, frame.attrs["data_inputs"]
    )


def inputs_now(exp: Experiment, data_dir: Path, experiment_dir: Path | None = None) -> Inputs:
    """What a run of `exp` would be computed from now (the data read afresh, no fit)."""
    data = data_inputs(exp, data_dir, experiment_dir=experiment_dir)
    return Inputs(sha256_text(experiment_to_toml(exp)), exp.sampler.seed, data)


def stored_inputs(run: Run) -> Inputs | None:
    """The inputs a run records in its manifest (None for a run written before they were)."""
    return Inputs.from_json(run.manifest.get("inputs"))


def reuse_problem(run_dir: Path, wanted: Inputs) -> str:
    """Why the run in `run_dir` cannot stand for a run computed from `wanted` ("" when it can):
    its files fail verification, or its inputs (config, code, seed, data) differ."""
    try:
        run = open_run(run_dir)
    except RegimesError as exc:
        return f"it fails verification ({str(exc).splitlines()[0]})"
    stored = stored_inputs(run)
    if stored is not None and stored.config != run.manifest["files"].get(CONFIG):
        return "its config.toml does not match its recorded inputs"
    return wanted.change(stored)


def result_inputs(run: Run, settings: Mapping[str, object]) -> Inputs:
    """What a result computed from a finished run (its lfo.nc, its forecast.nc) depends on: the
    run itself (its config, seed and data inputs as its manifest records them, and its posterior
    by sha256) and the result's own `settings`; its reuse key tells a stored result of this run,
    with these settings, by this code, from any other."""
    files = run.manifest.get("files", {})
    stored = stored_inputs(run)
    seed = run.manifest.get("seed")
    return Inputs(
        config=str(files.get(CONFIG, "")),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        data=stored.data if stored is not None else {},
        settings={**settings, "posterior": files.get(POSTERIOR, "")},
    )


def stored_result_inputs(ds: xr.Dataset) -> Inputs | None:
    """The inputs a stored result records in its attributes (`reuse_inputs`), or None."""
    try:
        return Inputs.from_json(json.loads(str(ds.attrs.get("reuse_inputs", ""))))
    except ValueError:
        return None


def current_result(run: Run, name: str, wanted: Inputs) -> tuple[xr.Dataset | None, str]:
    """A result file the run gained later (lfo.nc, forecast.nc) if it is trusted (listed in the
    manifest with this sha256) and current (its reuse key is `wanted`'s), and ""; else None and
    why it is not ("" when the run has none)."""
    if not exists(run.path / name):
        return None, ""
    try:
        ds = load_listed(run.path, name)
    except RegimesError as exc:
        return None, f"its {name} is not trusted ({str(exc).splitlines()[0]})"
    why = wanted.change(stored_result_inputs(ds))
    return (None, why) if why else (ds, "")


def stamp(ds: xr.Dataset, inputs: Inputs) -> xr.Dataset:
    """`ds` with its inputs and reuse key in its attributes (`reuse_inputs`, `reuse_key`)."""
    ds.attrs.update(reuse_inputs=json.dumps(inputs.to_json(), sort_keys=True), reuse_key=inputs.key)
    return ds
