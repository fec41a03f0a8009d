"""One task of a sweep, as a worker runs it: its own compile caches and core budget first, then
`regimes.api.run_experiment` into the task's folder; the outcome is a plain record, a failure
included (error type, message, traceback), so one bad task never stops the others."""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regimes.api import run_experiment
from regimes.cache import cache_root, setup_process
from regimes.errors import RegimesError
from regimes.files import is_file, read_json, write_json_atomic
from regimes.logs import quiet
from regimes.results import open_run
from regimes.reuse import Inputs
from regimes.sweep.expand import Task

# deferred to the functions that use them: PyMC, SciPy, Dask (docs/modules.md#imports)

__all__ = ["write_json_atomic"]  # re-exported: tasks.json, failures.json, done.json

DONE = "done.json"  # in a task folder: the task's finished run and the key it ran under
RUNS = "runs"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
CACHE_VARS = ("NUMBA_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")
_WORKER: dict[str, str] = {}  # this process's worker setup, once made


def worker_env(cores: int) -> dict[str, str]:
    """Environment of a worker process with a budget of `cores`: one BLAS/OpenMP thread, and as
    many XLA host devices as cores, so numpyro runs that many chains side by side (the rest one
    after another) and workers never oversubscribe the machine."""
    ours = ("host_platform_device_count", "multi_thread_eigen", "intra_op_parallelism")
    xla = [f for f in os.environ.get("XLA_FLAGS", "").split() if not any(o in f for o in ours)]
    xla += [  # one thread per XLA device: the budget's cores run its chains, no more
        f"--xla_force_host_platform_device_count={max(1, cores)}",
        "--xla_cpu_multi_thread_eigen=false",
        "intra_op_parallelism_threads=1",
    ]
    return {
        **dict.fromkeys(THREAD_VARS, "1"),
        "XLA_FLAGS": " ".join(xla),
    }


def prepare_worker(name: str | int, cores: int | None = None) -> str:
    """Give this process its own compile caches (`<cache root>/worker-<name>`: PyTensor's
    compilation is not safe to share between processes) and its core budget, before PyTensor or
    JAX start; later calls are no-ops. Returns the cache folder."""
    if "cache" in _WORKER:
        return _WORKER["cache"]

    label = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)) or "0"
    root = cache_root()
    if root.name.startswith("worker-"):  # set up before (a restarted worker, same env)
        root = root.parent
    cache = root / f"worker-{label}"
    os.environ["REGIMES_CACHE_DIR"] = str(cache)
    flags = [
        f
        for f in os.environ.get("PYTENSOR_FLAGS", "").split(",")
        if f and "base_compiledir" not in f
    ]
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    for var in CACHE_VARS:  # inherited from the parent's setup: point them at this worker's
        os.environ.pop(var, None)
    if cores is not None:
        os.environ.update(worker_env(cores))

    setup_process()
    _WORKER["cache"] = str(cache)
    return str(cache)


def _worker_name() -> str | None:
    """This process's Dask worker name, or None outside a Dask worker."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return None


@dataclass(frozen=True)
class RunJob:
    """One `run_experiment` call as an executor runs it (a sweep task's, or a study's run)."""

    id: str
    config: str
    out: str
    data_dir: str
    quick: bool = False
    seed: int | None = None
    figures: bool | None = False
    report: bool = False


def run_job(job: RunJob, keep_derived: bool = False) -> dict[str, Any]:
    """Run one experiment (in a Dask worker, set up first, or in-process) and return its record:
    status `complete` with the absolute run directory (and with `keep_derived`, its derived.nc
    dataset as `derived`), or `failed` with the error (type, message, traceback, and whether it
    is a user error), never raised."""
    record = start_record(job.id)
    name = None if record["worker"] == "in-process" else record["worker"]
    t0 = time.perf_counter()
    try:
        if name is not None:  # no "Sampling: [y]" from every worker (pymc sets its logger's
            import pymc  # noqa: F401  level when first imported: import it first)

            logging.getLogger("pymc").setLevel(logging.WARNING)
        with quiet():  # the run's own lines: a sweep or study says one line per task
            run_dir = run_experiment(
                job.config,
                data_dir=job.data_dir,
                out=job.out,
                seed=job.seed,
                quick=job.quick,
                progress=False,
                figures=job.figures,
                report=job.report,
                on_written=(lambda _, ds: record.update(derived=ds)) if keep_derived else None,
            ).path
    except Exception as exc:  # recorded, never raised: the other tasks go on
        record.update(failure(exc, t0))
        return record
    record.update(
        status="complete", run_dir=str(run_dir), wall_s=round(time.perf_counter() - t0, 2)
    )
    return record


@dataclass(frozen=True)
class LfoJob:
    """One run's leave-future-out refits (`regimes.lfo.ensure_lfo`) as an executor runs them: a
    study sends each regime model's refits to its own worker."""

    id: str
    run_dir: str
    min_train: int
    k_threshold: float
    quick: bool = False
    asset: str | None = None


def lfo_job(job: LfoJob) -> dict[str, Any]:
    """Compute and store `lfo.nc` in the job's run directory (in a Dask worker, set up first, or
    in-process) and return its record: status `complete` with elpd_lfo, or `failed` with the
    error, never raised."""
    record = start_record(job.id)
    t0 = time.perf_counter()
    try:
        from regimes.lfo import ensure_lfo

        with quiet():
            ds = ensure_lfo(
                job.run_dir,
                min_train=job.min_train,
                k_threshold=job.k_threshold,
                quick=job.quick,
                asset=job.asset,
            )
    except Exception as exc:  # recorded, never raised: the other runs' refits go on
        record.update(failure(exc, t0))
        return record
    record.update(
        status="complete",
        run_dir=job.run_dir,
        elpd_lfo=float(ds.attrs["elpd_lfo"]),
        n_refits=int(ds.attrs["n_refits"]),
        wall_s=round(time.perf_counter() - t0, 2),
    )
    return record


def failure(exc: Exception, t0: float) -> dict[str, Any]:
    """The fields of a failed task's record (call inside the `except`): status, wall time and
    the error's type, message, traceback and whether it is a user error."""
    return {
        "status": "failed",
        "wall_s": round(time.perf_counter() - t0, 2),
        "error": {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
            "user_error": isinstance(exc, RegimesError),
        },
    }


def start_record(job_id: str) -> dict[str, Any]:
    """A task's record as it starts, in a Dask worker (set up first) or in this process."""
    name = _worker_name()
    if name is not None:
        prepare_worker(name)
    return {"id": job_id, "worker": name or "in-process", "pid": os.getpid()}


def run_task(task: Task) -> dict[str, Any]:
    """Run one sweep task and return its record (run directory relative to the task folder;
    derived.nc's dataset as `derived`, for the combine, so it need not read the file back);
    a complete one is also recorded as `done.json` in the task folder, with its reuse key and
    inputs."""
    job = RunJob(task.id, task.config, str(Path(task.folder) / RUNS), task.data_dir, task.quick)
    earlier = written_earlier(task)
    if earlier is not None:  # an attempt whose worker died after writing it: never a second run
        record = {**start_record(task.id), "status": "complete", "run_dir": str(earlier),
                  "wall_s": 0.0, "written_earlier": True}  # fmt: skip
    else:
        record = run_job(job, keep_derived=True)
    record = {**record, "key": task.key, "inputs": task.inputs}
    derived = record.pop("derived", None)
    if record["status"] == "complete":
        record["run_dir"] = str(Path(record["run_dir"]).relative_to(task.folder))
        write_json_atomic(Path(task.folder) / DONE, record)
    return {**record, "derived": derived} if derived is not None else record


def written_earlier(task: Task) -> Path | None:
    """A complete run of this task already in its folder under the task's reuse key (a run's
    own key is the task's), opening verified: written by an attempt whose worker died after the
    run was in place but before its result arrived. It stands for the task, so Dask's retry of
    a lost task never writes a second run."""
    for run_dir in sorted(Path(task.folder, RUNS).glob("*/*"), reverse=True):
        if run_dir.name.startswith("."):  # a temporary folder being (or abandoned while) written
            continue
        try:
            run = open_run(run_dir)
        except RegimesError:
            continue
        if run.manifest.get("reuse_key") == task.key:
            return run_dir
    return None


def finished(task: Task) -> tuple[dict[str, Any] | None, str]:
    """The record of an earlier complete run of this task under the same reuse key whose result
    is intact (a run directory that opens verified; an SBC task's result file), and ""; else
    None and why it runs again ("" when it never finished)."""
    if not is_file(Path(task.folder) / DONE):
        return None, ""
    try:
        record = read_json(Path(task.folder) / DONE, "task record")
    except RegimesError as exc:
        return None, str(exc)
    if not isinstance(record, dict) or record.get("status") != "complete":
        return None, f"its {DONE} records no complete run"
    if record.get("key") != task.key:
        stored = Inputs.from_json(record.get("inputs"))
        return None, Inputs.from_json(task.inputs).change(stored) or "its reuse key differs"
    result = Path(task.folder) / str(record.get("run_dir", ""))
    # a run task's result is a run directory; an SBC task's, its small result file
    if task.sbc:
        return (record, "") if is_file(result) else (None, f"its result {result} is missing")
    try:
        open_run(result)
    except RegimesError as exc:
        return None, f"its run fails verification ({str(exc).splitlines()[0]})"
    return record, ""
