"""A sweep's tasks: one experiment config per origin, seed, grid point or SBC simulation, written into the
sweep folder (`tasks/<task-id>/task.toml`, the model spec copied to `models/`, so the folder is
self-contained), each validated before any sampling starts and keyed by its reuse key (the
config as run, the code, the seed and the sha256 of every data file it reads: `regimes.reuse`)."""

from __future__ import annotations

import copy
import itertools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from regimes.config import (
    experiment_to_toml,
    find_model_spec,
    load_experiment,
    read_toml,
    run_version,
)
from regimes.errors import ConfigError
from regimes.families import get_family
from regimes.files import is_file, make_dirs, write_atomic, write_text_atomic
from regimes.reuse import Inputs, sha256_text
from regimes.sweep.spec import Sweep
from regimes.userdata import data_inputs, experiment_frame

TASKS = "tasks"
TASK_CONFIG = "task.toml"
MODELS = "models"


@dataclass(frozen=True)
class Task:
    """One fit of a sweep: its id (a folder name), its value along the sweep dimension, the
    config it runs and the content hash that lets a resumed sweep skip it."""

    id: str
    coord: Any  # origin "YYYY-MM", seed int, grid index int or SBC simulation int
    config: str  # absolute path of tasks/<id>/task.toml
    folder: str  # absolute path of tasks/<id>/
    key: str  # the reuse key of `inputs`: a resumed sweep skips a task done under the same key
    data_dir: str
    quick: bool
    labels: dict[str, Any] = field(default_factory=dict)  # grid: dotted key -> value
    sbc: dict[str, Any] = field(default_factory=dict)  # SBC: sim, seed, keep, init, length, ...
    inputs: dict[str, Any] = field(default_factory=dict)  # `reuse.Inputs`: config, seed, data...


WINDOW = (
    "start",
    "end",
    "predict_end",
    "pad_to",
    "min_obs",
)  # [data] keys that change no file read


def task_inputs(
    exp: Any, data_dir: Path, settings: dict[str, Any], known: dict[str, dict[str, str]]
) -> Inputs:
    """A task's reuse inputs: its config as run, its seed, the sha256 of every data file it
    reads (found once per distinct `[data]` apart from the window, kept in `known`) and
    `settings` (an SBC task's simulation)."""
    data = exp.data.model_dump(mode="json", exclude=set(WINDOW))
    which = json.dumps(data, sort_keys=True)
    if which not in known:
        known[which] = data_inputs(exp, data_dir)
    return Inputs(sha256_text(experiment_to_toml(exp)), exp.sampler.seed, known[which], settings)


def set_dotted(body: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set `a.b.c` in nested TOML tables, creating tables on the way; a non-table in the way is
    a ConfigError naming the key."""
    parts = key.split(".")
    node = body
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(
                f"{where}: key '{key}': '{'.'.join(parts[: i + 1])}' is a value, not a table"
            )
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def base_body(sweep: Sweep, sweep_dir: Path) -> dict[str, Any]:
    """The base experiment's TOML tables, made to run from the sweep folder: its name fixed, its
    model spec copied to `<sweep>/models/`, its own series files by absolute path."""
    path = sweep.experiment_path
    exp = load_experiment(path)
    body = read_toml(path, "experiment config")
    body["name"] = exp.name
    spec_path = find_model_spec(exp.model, path)
    models = make_dirs(sweep_dir / MODELS)
    write_atomic(models / spec_path.name, lambda tmp: shutil.copyfile(spec_path, tmp))
    body["model"] = spec_path.stem
    for spec in body.get("data", {}).get("series", {}).values():
        local = path.parent / str(spec.get("file", ""))
        if "file" in spec and is_file(local):
            spec["file"] = str(local.resolve())
    return body


def last_complete_month(sweep: Sweep, data_dir: Path) -> pd.Timestamp:
    """The last month where the base experiment's target and every factor are observed."""
    exp = load_experiment(sweep.experiment_path)
    data = {k.removeprefix("data."): v for k, v in sweep.overrides.items() if k.startswith("data.")}
    if data:  # the overridden series and window decide which months are complete
        exp = exp.model_copy(
            update={"data": exp.data.model_validate({**exp.data.model_dump(), **data})}
        )
    frame = experiment_frame(exp, data_dir, experiment_dir=sweep.experiment_path.parent)
    complete = frame.frame[[frame.target, *frame.factors]].dropna()
    return pd.Timestamp(complete.index[-1])


def pads_its_arrays(sweep: Sweep) -> bool:
    """Whether the fits of an expanding-window origins sweep are sampled on arrays padded to the
    last origin (`data.pad_to`): where the base experiment's family weights its likelihood by
    month, so every origin reuses one compiled sampler instead of compiling its own shapes
    (unless an override picks another model, whose family is not checked here)."""
    if "model" in sweep.overrides:
        return False
    exp = load_experiment(sweep.experiment_path)
    assert exp.spec is not None
    return get_family(exp.spec.family).weighted_likelihood


def variants(sweep: Sweep, data_dir: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    """(task id, coordinate, {dotted key: value}) for every task of the sweep, in order."""
    if sweep.origins is not None:
        o = sweep.origins
        end = last_complete_month(sweep, data_dir) if o.end == "latest" else pd.Timestamp(o.end)
        months = pd.date_range(o.start, end, freq=f"{o.step}MS")
        if len(months) == 0:
            raise ConfigError(
                f"{sweep.path}: key 'origins': no origin between {o.start} and {end:%Y-%m}"
            )
        out = []
        padded = o.window == "expanding" and pads_its_arrays(sweep)
        for m in months:
            changes: dict[str, Any] = {"data.end": f"{m:%Y-%m}", "data.predict_end": f"{m:%Y-%m}"}
            if o.window == "rolling":
                assert o.length is not None
                changes["data.start"] = f"{m - pd.DateOffset(months=o.length - 1):%Y-%m}"
            elif padded:  # every window in the last one's shapes: one compiled sampler
                changes["data.pad_to"] = f"{months[-1]:%Y-%m}"
            out.append((f"origin-{m:%Y-%m}", f"{m:%Y-%m}", changes))
        return out
    if sweep.sbc is not None:  # every simulation runs the same config; its seed differs
        width = max(3, len(str(sweep.sbc.sims - 1)))
        return [(f"sim-{i:0{width}d}", i, {}) for i in range(sweep.sbc.sims)]
    if sweep.seeds is not None:
        return [(f"seed-{s}", s, {"sampler.seed": s}) for s in sweep.seeds]
    assert sweep.grid is not None
    keys = list(sweep.grid)
    points = list(itertools.product(*(sweep.grid[k] for k in keys)))
    width = max(3, len(str(len(points) - 1)))
    return [
        (f"grid-{i:0{width}d}", i, dict(zip(keys, p, strict=True))) for i, p in enumerate(points)
    ]


def expand(sweep: Sweep, sweep_dir: Path, data_dir: Path, *, quick: bool) -> list[Task]:
    """Write every task's config into the sweep folder, validate each, and return the tasks."""
    sweep_dir = Path(sweep_dir).resolve()
    body = base_body(sweep, sweep_dir)
    known: dict[str, dict[str, str]] = {}  # data inputs by [data] section (window aside)
    tasks = []
    length: int | None = None  # SBC: the simulated series' length, from the first task
    for key, value in sweep.overrides.items():
        set_dotted(body, key, value, sweep.path)
    for task_id, coord, changes in variants(sweep, data_dir):
        task_body = copy.deepcopy(body)
        for key, value in changes.items():
            set_dotted(task_body, key, value, sweep.path)
        folder = make_dirs(sweep_dir / TASKS / task_id, root=sweep_dir)
        config = folder / TASK_CONFIG
        text = tomli_w.dumps(task_body)
        if not is_file(config) or config.read_text(encoding="utf-8") != text:
            write_text_atomic(config, text, root=sweep_dir)
        try:
            exp = run_version(load_experiment(config), quick=quick)
        except ConfigError as exc:
            what = ", ".join(f"{k} = {json.dumps(v)}" for k, v in changes.items())
            raise ConfigError(
                f"{sweep.path}: task {task_id} ({what}) is not a valid config:\n{exc}"
            ) from None
        sbc: dict[str, Any] = {}
        if sweep.sbc is not None:
            if length is None:
                length = sbc_length(exp, sweep, data_dir)
            sbc = {**sweep.sbc.model_dump(), "sim": coord, "length": length}
        inputs = task_inputs(exp, data_dir, {"sbc": sbc} if sbc else {}, known)
        labels = changes if sweep.grid is not None else {}
        tasks.append(
            Task(task_id, coord, str(config), str(folder), inputs.key, str(data_dir), quick,
                 labels, sbc, inputs.to_json())
        )  # fmt: skip
    return tasks


def sbc_length(exp: Any, sweep: Sweep, data_dir: Path) -> int:
    """Months in the base experiment's fit window: the length of every simulated series."""
    frame = experiment_frame(exp, data_dir, experiment_dir=sweep.experiment_path.parent)
    return int(frame.fit.sum())
