"""Combining run directories into sweep.nc, on hand-made runs (no sampling): tasks with different
time spans and regimes are aligned, each task's attributes become variables along the sweep
dimension, grid keys become coordinates, and the file opens lazily."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimes.errors import RunError
from regimes.results import CONFIG, DERIVED, write_netcdf, write_run
from regimes.sweep.combine import SWEEP_NC, combine, open_sweep
from regimes.sweep.expand import Task

Q = [0.05, 0.25, 0.5, 0.75, 0.95]


def derived(start: str, months: int, regimes: list[str], end: str) -> xr.Dataset:
    time = pd.date_range(start, periods=months, freq="MS")
    k = len(regimes)
    prob = np.full((months, k), 1.0 / k)
    return xr.Dataset(
        {
            "price": ("time", np.arange(months, dtype=float)),
            "regime_prob": (("time", "regime"), prob),
            "deviation_pct": (("time", "quantile"), np.zeros((months, len(Q)))),
            "most_likely_regime": ("time", [regimes[0]] * months),
            "in_sample": ("time", np.ones(months, dtype="int8")),
        },
        coords={"time": time, "regime": regimes, "quantile": Q},
        attrs={"experiment": "exp", "sample_end": end, "converged": 1, "model": "m"},
    )


def task_with_run(
    root: Path, task_id: str, coord: int, ds: xr.Dataset, labels: dict
) -> tuple[Task, dict]:
    folder = root / "tasks" / task_id

    def writer(tmp: Path) -> dict:
        write_netcdf(ds, tmp / DERIVED)
        (tmp / CONFIG).write_text('name = "exp"\n', encoding="utf-8")
        return {}

    run = write_run(folder / "runs", "exp", "r1", writer)
    task = Task(task_id, coord, str(folder / "task.toml"), str(folder), "k", "", True, labels)
    return task, {"status": "complete", "run_dir": str(run.relative_to(folder))}


def test_grid_runs_with_different_spans_and_regimes(tmp_path: Path) -> None:
    prior = {"dist": "HalfNormal", "sigma": 0.5}
    a, ra = task_with_run(
        tmp_path,
        "grid-000",
        0,
        derived("2020-01", 6, ["x", "y"], "2020-06"),
        {"options.k": 2, "priors.s": prior},
    )
    b, rb = task_with_run(
        tmp_path,
        "grid-001",
        1,
        derived("2020-03", 7, ["x", "y", "z"], "2020-09"),
        {"options.k": 3, "priors.s": prior},
    )
    failed = Task(
        "grid-002",
        2,
        "",
        str(tmp_path / "tasks" / "grid-002"),
        "k",
        "",
        True,
        {"options.k": 4, "priors.s": prior},
    )
    records = {"grid-000": ra, "grid-001": rb, "grid-002": {"status": "failed"}}
    path = combine(tmp_path, [a, b, failed], records, "grid", {"sweep": "s", "n_failed": 1})
    assert path == tmp_path / SWEEP_NC
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    with open_sweep(tmp_path) as ds:
        assert ds["price"].chunks is not None  # lazy
        assert dict(ds.sizes) == {"grid": 2, "time": 9, "regime": 3, "quantile": 5}
        assert ds["grid"].values.tolist() == [0, 1]
        assert ds["options.k"].values.tolist() == [2, 3]
        assert ds["priors.s"].values.tolist() == ['{"dist": "HalfNormal", "sigma": 0.5}'] * 2
        assert ds["sample_end"].values.tolist() == ["2020-06", "2020-09"]
        assert ds["task"].values.tolist() == ["grid-000", "grid-001"]
        assert ds["run_dir"].values[0] == "tasks/grid-000/runs/exp/r1"
        price = ds["price"].sel(grid=0)
        assert np.isnan(price.sel(time="2020-09").values).all()
        assert price.sel(time="2020-06").values.tolist() == [5.0]
        assert np.isnan(ds["regime_prob"].sel(grid=0, regime="z")).all()
        assert ds["most_likely_regime"].sel(grid=0, time="2020-09").values.tolist() == [""]
        assert (
            ds.attrs["model"] == "m" and ds.attrs["sweep"] == "s" and "sample_end" not in ds.attrs
        )


def test_origins_get_datetime_coordinates_and_nothing_to_combine(tmp_path: Path) -> None:
    t, r = task_with_run(
        tmp_path, "origin-2020-06", "2020-06", derived("2020-01", 6, ["x"], "2020-06"), {}
    )
    assert combine(tmp_path / "none", [t], {}, "origin", {}) is None
    combine(tmp_path, [t], {t.id: r}, "origin", {})
    with open_sweep(tmp_path / SWEEP_NC) as ds:
        assert ds["origin"].values[0] == np.datetime64("2020-06-01")
    with pytest.raises(RunError, match="no combined sweep dataset"):
        open_sweep(tmp_path / "none")
