"""Every finished task's `derived.nc`, combined into one dataset along the sweep's dimension
(`origin` datetime, `seed` int, or `grid` index with each grid key as a coordinate), written
atomically as `sweep.nc` into the sweep folder and opened lazily with `open_sweep`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.errors import RunError
from regimes.files import write_atomic
from regimes.results import load_derived
from regimes.sweep.expand import Task

SWEEP_NC = "sweep.nc"
SBC_NC = "sbc.nc"  # an SBC sweep's combined dataset (regimes.sweep.sbc writes it)
PER_TASK_ATTRS = ("sample_start", "sample_end", "converged", "max_rhat", "min_ess_bulk")


def coordinate(dim: str, task: Task) -> Any:
    """A task's value along the sweep dimension (origins as datetime64)."""
    return np.datetime64(pd.Timestamp(task.coord), "ns") if dim == "origin" else task.coord


def _label(value: Any) -> Any:
    """A grid value as a netCDF coordinate value: scalars as they are, anything else as JSON."""
    return (
        value if isinstance(value, bool | int | float | str) else json.dumps(value, sort_keys=True)
    )


def _strings_filled(ds: xr.Dataset) -> xr.Dataset:
    """String variables padded by the outer join (NaN in an object array) made plain strings."""
    for name, var in ds.variables.items():
        if var.dtype == object:
            values = np.array(
                [
                    "" if (isinstance(v, float) and np.isnan(v)) else str(v)
                    for v in var.values.ravel()
                ]
            ).reshape(var.shape)
            ds[name] = (var.dims, values, var.attrs)
    return ds


def task_part(
    task: Task, record: dict[str, Any], dim: str, sweep_dir: Path, derived: xr.Dataset | None = None
) -> xr.Dataset:
    """A complete task's part of `sweep.nc`: its derived dataset (as its worker sent it back, else
    read from the run directory) with the sweep dimension added and the task's own attributes
    (window, convergence, run directory) as variables along it. The runner makes each as its
    task finishes, so the combine at the end only joins and writes."""
    run_dir = Path(task.folder) / record["run_dir"]
    ds = load_derived(run_dir) if derived is None else derived
    extra = {
        "task": task.id,
        "run_dir": str(run_dir.relative_to(sweep_dir)),
        **{k: ds.attrs[k] for k in PER_TASK_ATTRS if k in ds.attrs},
    }
    ds = ds.assign({k: ((), v) for k, v in extra.items()})
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in PER_TASK_ATTRS}
    return ds.expand_dims({dim: [coordinate(dim, task)]})


def combine(
    sweep_dir: Path,
    tasks: Sequence[Task],
    records: dict[str, dict[str, Any]],
    dim: str,
    attrs: dict[str, Any],
    parts_read: dict[str, xr.Dataset] | None = None,
) -> Path | None:
    """Combine the complete tasks' derived.nc (in task order) into `sweep.nc`; None when no task
    is complete. Tasks differing in time span or regimes are aligned by an outer join.
    `parts_read` holds tasks' parts read earlier (`task_part`), by task id."""
    read = parts_read or {}
    done = [t for t in tasks if records.get(t.id, {}).get("status") == "complete"]
    parts = [
        read[t.id] if t.id in read else task_part(t, records[t.id], dim, sweep_dir) for t in done
    ]
    if not parts:
        return None
    ds = xr.concat(
        parts,
        dim=dim,
        join="outer",
        data_vars="all",
        coords="different",
        compat="equals",
        combine_attrs="drop_conflicts",
    )
    if dim == "grid":
        for key in done[0].labels:
            ds = ds.assign_coords({key: (dim, [_label(t.labels[key]) for t in done])})
    ds = _strings_filled(ds)
    for var in ds.variables.values():  # int8 flags padded with NaN by the join stay float
        var.encoding = {}
    ds.attrs.update({k: v for k, v in attrs.items() if v is not None})
    path = write_atomic(sweep_dir / SWEEP_NC, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    return path


def open_sweep(path: str | Path) -> xr.Dataset:
    """A sweep's combined dataset, opened lazily (dask arrays; nothing read until used). `path`
    is a sweep folder printed by `regimes sweep` (its sweep.nc, or an SBC sweep's sbc.nc) or
    the file itself."""
    path = Path(path)
    if path.is_dir():  # an SBC sweep's combined dataset is sbc.nc
        path = path / (SBC_NC if (path / SBC_NC).is_file() else SWEEP_NC)
    if not path.is_file():
        raise RunError(
            f"{path}: no combined sweep dataset (a sweep whose tasks all failed has none); "
            "pass a folder printed by `regimes sweep`"
        )
    return xr.open_dataset(path, engine="h5netcdf", chunks={})
