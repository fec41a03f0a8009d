"""Run a sweep: expand it into tasks, skip those already done (resume), run the rest on an
executor with one progress line per finished task, record every outcome, and combine.

Layout of one sweep folder, `<out>/<sweep-name>/<sweep-id>/`: `sweep.toml` (as run), `models/`
(the base experiment's model spec), `tasks/<task-id>/` (`task.toml`, `done.json`,
`runs/<experiment>/<run-id>/`), `tasks.json` (every task's status, run and timing),
`failures.json` (each failed task's error and traceback), `sweep.nc`, and for origins sweeps
`realtime.nc` and `figures/`; an SBC sweep writes `tasks/<sim-id>/sbc.json` per simulation and
`sbc.nc` with `figures/sbc_ranks` and `figures/sbc_ecdf` instead of `sweep.nc`. `tasks.json` is rewritten atomically after every finished task,
so an interrupted sweep says what it had done; `--resume` continues it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

import xarray as xr

from regimes.data import resolve_data_dir
from regimes.errors import RegimesError
from regimes.files import is_dir, is_file, make_dirs, write_atomic
from regimes.logs import quiet_keyword
from regimes.results import check_out_root, new_run_id
from regimes.sweep.combine import combine, task_part
from regimes.sweep.expand import TASKS, Task, expand
from regimes.sweep.figures import plot_sbc
from regimes.sweep.realtime import write_realtime
from regimes.sweep.spec import Sweep, load_sweep
from regimes.sweep.task import finished, run_task, write_json_atomic

# deferred to the functions that use them: PyMC, PyTensor, SciPy, Dask (docs/modules.md#imports)

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.toml"
TASKS_JSON = "tasks.json"
FAILURES_JSON = "failures.json"


class SweepError(RegimesError):
    """A sweep could not be run as asked (bad folder to resume, ...)."""


def sweep_folder(sweep: Sweep, out: str | Path, resume: str | Path | None) -> Path:
    """The folder a sweep writes into: a new `<out>/<name>/<id>/`, or the one being resumed."""
    if resume is None:
        folder = check_out_root(out) / sweep.name / new_run_id(0)
        return make_dirs(folder)
    folder = Path(resume)
    if not is_file(folder / SWEEP_FILE) or not is_dir(folder / TASKS):
        raise SweepError(
            f"--resume {folder}: not a sweep folder (no {SWEEP_FILE} and {TASKS}/); pass a folder "
            "printed by `regimes sweep`"
        )
    return folder


@quiet_keyword
def run_sweep(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "results",
    quick: bool = False,
    resume: str | Path | None = None,
    executor: AbstractContextManager[Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_result: Callable[[Any, Task, dict[str, Any]], None] | None = None,
) -> Path:
    """Run every task of a sweep file and combine the results; return the sweep folder.

    `executor` (a context manager yielding an executor, e.g. `SerialExecutor()`) defaults to a
    `DaskExecutor(scheduler, workers)`. `on_result(executor, task, record)` is called after each
    finished task (tests use it to kill a worker or interrupt). Failed tasks are recorded in
    tasks.json and failures.json and do not stop the others (`failed_tasks` lists them)."""
    from regimes.sweep.executor import DaskExecutor

    sweep = load_sweep(path)
    data_path = resolve_data_dir(data_dir)
    folder = sweep_folder(sweep, out, resume).resolve()
    write_atomic(folder / SWEEP_FILE, lambda tmp: shutil.copyfile(sweep.path, tmp))
    t0 = time.perf_counter()
    try:
        tasks = expand(sweep, folder, data_path, quick=quick)
    except BaseException:
        if resume is None:  # a sweep that never started leaves no folder behind
            shutil.rmtree(folder, ignore_errors=True)
            with suppress(OSError):  # nor an empty <out>/<name>/
                folder.parent.rmdir()
        raise
    records: dict[str, dict[str, Any]] = {}
    for task in tasks if resume is not None else []:
        earlier, why = finished(task)
        if earlier is not None:
            records[task.id] = {**earlier, "reused": True}
        elif why:
            log.info(f"sweep {sweep.name}: {task.id} runs again: {why}")
    todo = [t for t in tasks if t.id not in records]
    state = {"sweep": sweep, "folder": folder, "tasks": tasks, "records": records, "t0": t0}
    _write_tables(state, quick)
    if not todo:  # everything done earlier: no cluster to start
        from regimes.sweep.executor import SerialExecutor

        executor = SerialExecutor()
    ex = executor or DaskExecutor(scheduler=scheduler, workers=workers)
    with ex as running:
        log.info(
            f"sweep {sweep.name}: {len(tasks)} tasks along {sweep.dim} "
            f"({len(tasks) - len(todo)} done earlier), running {len(todo)} on "
            f"{running.describe()}; folder {folder}"
        )
        fn = run_task
        if sweep.sbc is not None:
            from regimes.sweep.sbc import run_sbc_task

            fn = run_sbc_task
        parts: dict[str, Any] = {}  # each finished run's part of sweep.nc, read while others run
        for task, record in running.map(fn, todo):
            derived = record.pop("derived", None)  # sent back by the worker: no re-read
            records[task.id] = record
            _write_tables(state, quick)
            if sweep.sbc is None and record["status"] == "complete":
                with suppress(RegimesError):  # unreadable: the combine reads it again and says so
                    parts[task.id] = task_part(task, record, sweep.dim, folder, derived)
            _progress(sweep, tasks, records, len(todo), running.slots(), task, record)
            if on_result is not None:
                on_result(running, task, record)
    _finish(sweep, folder, tasks, records, quick, parts)
    _write_tables(state, quick)
    return folder


def _progress(
    sweep: Sweep,
    tasks: list[Task],
    records: dict[str, dict[str, Any]],
    n_todo: int,
    slots: int,
    task: Task,
    record: dict[str, Any],
) -> None:
    """One line per finished task with the counts done / running / failed."""
    fresh = [r for r in records.values() if not r.get("reused")]
    failed = sum(r["status"] == "failed" for r in fresh)
    done = len(fresh) - failed
    running = min(slots, n_todo - len(fresh))
    if record["status"] == "complete":
        what = f"ok in {record.get('wall_s', 0):.0f} s on worker {record.get('worker')}"
    else:
        err = record["error"]
        what = f"FAILED ({err['type']}: {err['message'].splitlines()[0] if err['message'] else ''})"
    log.info(
        f"sweep {sweep.name}: [{done + failed}/{n_todo}] {task.id} {what} | "
        f"done {done}, running {running}, failed {failed}"
    )


def _finish(
    sweep: Sweep,
    folder: Path,
    tasks: list[Task],
    records: dict[str, dict[str, Any]],
    quick: bool,
    parts: dict[str, Any],
) -> None:
    """Combine into sweep.nc (`parts`: the tasks' parts read so far); for origins sweeps, the
    real-time summary and its figure."""
    failed = [t.id for t in tasks if records.get(t.id, {}).get("status") != "complete"]
    attrs = {
        "sweep": sweep.name,
        "sweep_dim": sweep.dim,
        "base_experiment": str(sweep.experiment),
        "quick": int(quick),
        "n_tasks": len(tasks),
        "n_failed": len(failed),
    }
    if sweep.sbc is not None:
        _finish_sbc(sweep, folder, tasks, records, attrs)
        return
    path = combine(folder, tasks, records, sweep.dim, attrs, parts)
    if path is None:
        log.info(f"sweep {sweep.name}: no task completed; nothing to combine")
        return
    log.info(f"sweep {sweep.name}: combined {len(tasks) - len(failed)} runs into {path}")
    if sweep.dim == "origin":
        for written in write_realtime(folder, sweep.realtime):
            log.info(f"sweep {sweep.name}: wrote {written}")
    if failed:
        log.info(f"sweep {sweep.name}: {len(failed)} task(s) failed: {', '.join(failed)}")


def _finish_sbc(
    sweep: Sweep,
    folder: Path,
    tasks: list[Task],
    records: dict[str, dict[str, Any]],
    attrs: dict[str, Any],
) -> None:
    """SBC: the simulations' ranks into sbc.nc, the uniformity check and its figures."""
    from regimes.sweep.sbc import combine_sbc, summary_lines

    assert sweep.sbc is not None
    path = combine_sbc(folder, tasks, records, attrs, sweep.sbc.band)
    if path is None:
        log.info(f"sweep {sweep.name}: no simulation completed; nothing to combine")
        return
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds.load()
    log.info(f"sweep {sweep.name}: combined {ds.sizes['sim']} simulations into {path}")
    for line in summary_lines(ds):
        log.info(f"sweep {sweep.name}: {line}")
    for written in plot_sbc(ds, folder / "figures"):
        log.info(f"sweep {sweep.name}: wrote {written}")
    if attrs["n_failed"]:
        failed = [t.id for t in tasks if records.get(t.id, {}).get("status") != "complete"]
        log.info(f"sweep {sweep.name}: {len(failed)} simulation(s) failed: {', '.join(failed)}")


def _write_tables(state: dict[str, Any], quick: bool) -> None:
    """tasks.json (every task: status, run, worker, timing) and failures.json, atomically."""
    sweep: Sweep = state["sweep"]
    records: dict[str, dict[str, Any]] = state["records"]
    rows, failures = [], []
    for task in state["tasks"]:
        rec = records.get(task.id, {})
        status = rec.get("status", "pending")
        row = {
            "id": task.id,
            sweep.dim: task.coord,
            "status": status,
            "labels": task.labels,
            "reused": bool(rec.get("reused", False)),
            "worker": rec.get("worker"),
            "wall_s": rec.get("wall_s"),
            "run_dir": (
                str((Path(task.folder) / rec["run_dir"]).relative_to(state["folder"]))
                if status == "complete"
                else None
            ),
        }
        rows.append(row)
        if status == "failed":
            failures.append({"id": task.id, sweep.dim: task.coord, **rec})
    counts = {s: sum(r["status"] == s for r in rows) for s in ("complete", "failed", "pending")}
    body = {
        "sweep": sweep.name,
        "dim": sweep.dim,
        "quick": quick,
        "counts": counts,
        "elapsed_s": round(time.perf_counter() - state["t0"], 1),
        "tasks": rows,
    }
    write_json_atomic(state["folder"] / TASKS_JSON, body)
    write_json_atomic(state["folder"] / FAILURES_JSON, failures)


def failed_tasks(sweep_dir: str | Path) -> list[str]:
    """The ids of a sweep's tasks that failed or never finished (from its tasks.json)."""
    body = json.loads((Path(sweep_dir) / TASKS_JSON).read_text(encoding="utf-8"))
    return [row["id"] for row in body["tasks"] if row["status"] != "complete"]
