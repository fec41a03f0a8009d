"""The one executor interface of sweeps: run a function over tasks and yield each outcome as it
finishes. `DaskExecutor` runs them on Dask distributed (a `LocalCluster` sized to the machine, or
any scheduler address); `SerialExecutor` runs them one after another in this process."""

from __future__ import annotations

import logging
import os
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed

from regimes.sweep.task import prepare_worker, worker_env


class Job(Protocol):
    """What an executor runs: anything picklable with an `id` (a sweep `Task`, a `RunJob`)."""

    @property
    def id(self) -> str:
        """A name unique among the jobs of one `map` (a folder name)."""
        ...


J = TypeVar("J", bound=Job)
JobFn = Callable[[Any], dict[str, Any]]


class Executor(Protocol):
    """Runs tasks; `map` yields (task, record) in the order they finish."""

    def map(self, fn: JobFn, tasks: Sequence[J]) -> Iterator[tuple[J, dict[str, Any]]]:
        """Run `fn` on every task and yield each outcome as soon as it is known."""
        ...

    def slots(self) -> int:
        """How many tasks run at once."""
        ...

    def describe(self) -> str:
        """One phrase for the progress lines, e.g. 'a local Dask cluster of 2 workers'."""
        ...


def lost_record(task: Job, exc: BaseException) -> dict[str, Any]:
    """The record of a task the executor itself lost (e.g. its worker died too often)."""
    return {
        "id": task.id,
        "status": "failed",
        "worker": None,
        "error": {
            "type": type(exc).__name__,
            "message": str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc)),
        },
    }


class SerialExecutor:
    """Tasks one after another in this process (no Dask): for debugging and small sweeps."""

    def map(self, fn: JobFn, tasks: Sequence[J]) -> Iterator[tuple[J, dict[str, Any]]]:
        """Run each task in turn."""
        for task in tasks:
            yield task, fn(task)

    def slots(self) -> int:
        """One task at a time."""
        return 1

    def describe(self) -> str:
        """For the progress lines."""
        return "this process, one task at a time"

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# Dask's own sampling of each worker (its statistical profiler every 10 ms, the system monitor
# every 0.5 s) takes CPU from the fits on a small machine; sweeps do not use either.
QUIET_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
}


class WorkerSetup(WorkerPlugin):
    """Per-worker setup, on every worker (restarted ones too): `prepare_worker` with the
    worker's name and core budget (its thread count where not given)."""

    name = "regimes-sweep-setup"

    def __init__(self, cores: int | None) -> None:
        self.cores = cores

    def setup(self, worker: Any) -> None:
        """Called by Dask on the worker before it runs any task."""
        prepare_worker(worker.name, self.cores or worker.state.nthreads)


def local_cluster(workers: int | None = None, cores: int | None = None) -> Any:
    """A Dask `LocalCluster` of `workers` processes (default: one per core), one thread each,
    with the `cores` (default: the machine's) shared out among them as each worker's budget."""
    cores = cores or os.cpu_count() or 1
    n = workers or cores
    with dask.config.set(QUIET_CONFIG):  # the workers take the config they start with
        return LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",  # this machine only
            dashboard_address=":0",  # any free port (its HTTP server starts even without a dashboard)
            silence_logs=logging.ERROR,
            env=worker_env(max(1, cores // n)),
        )


class DaskExecutor:
    """Tasks on Dask distributed. Without `scheduler`: a `LocalCluster` of `workers` processes
    (default: one per core), one thread each, with the machine's cores shared out among them;
    with `scheduler`: that cluster's workers, each with a core budget of its thread count.
    Tasks lost with a dead worker are rescheduled by Dask on the others."""

    def __init__(
        self, scheduler: str | None = None, workers: int | None = None, cores: int | None = None
    ) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.cores = cores or os.cpu_count() or 1
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> DaskExecutor:
        if self.scheduler is not None:
            self.client = Client(self.scheduler)
            self.client.register_plugin(WorkerSetup(None))
            return self
        self.cluster = local_cluster(self.workers, self.cores)
        self.client = Client(self.cluster)
        self.client.register_plugin(WorkerSetup(max(1, self.cores // (self.workers or self.cores))))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def map(self, fn: JobFn, tasks: Sequence[J]) -> Iterator[tuple[J, dict[str, Any]]]:
        """Submit every task, then yield outcomes as they complete."""
        if self.client is None:
            raise RuntimeError("DaskExecutor.map needs `with DaskExecutor(...) as ex:` first")
        run = uuid.uuid4().hex[:8]
        futures = {
            self.client.submit(fn, t, key=f"regimes-sweep-{t.id}-{run}", pure=False): t
            for t in tasks
        }
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # lost by Dask (KilledWorker, ...): recorded
                    record = lost_record(task, exc)
                yield task, record
        finally:
            for future in futures:
                future.release()

    def slots(self) -> int:
        """Threads across all workers (one task each)."""
        if self.client is None:
            return self.workers or self.cores
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> str:
        """For the progress lines."""
        if self.scheduler is not None:
            return f"the Dask scheduler at {self.scheduler} ({self.slots()} threads)"
        return f"a local Dask cluster of {self.workers or self.cores} workers"
