"""A sweep on a real Dask cluster, started as a user starts one on other hosts: `dask scheduler`
and two `dask worker` processes from their own command lines, the sweep sent with
`regimes sweep --scheduler`. One worker is killed by its PID while a task runs on it; the
sweep still completes every task exactly once (the lost task rerun on the other worker, its
half-written run folder swept away), with results identical to a run of the same seeds in this
process; a task whose worker died after writing its run is given that run, never a second one.
About 15-30 s on 2 busy cores (cluster start, a command-line import, 8 small fits): marked slow,
in the default selection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regimes.sweep import failed_tasks, open_sweep, run_sweep
from regimes.sweep.executor import SerialExecutor
from test_sweep_spec import write_sweep

DASK = Path(sys.executable).parent / "dask"
SEEDS = [1, 2, 3, 4]


def _wait(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`dask scheduler` and two `dask worker --no-nanny` processes (a killed worker stays dead),
    one thread each, on this machine; stopped afterwards."""
    if not DASK.is_file():
        pytest.skip(f"no dask command at {DASK}")
    file = tmp_path / "scheduler.json"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, *args: str) -> None:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        procs[name] = subprocess.Popen([str(DASK), *args], stdout=out, stderr=out)

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
          "--scheduler-file", str(file))  # fmt: skip
    _wait("the scheduler file", lambda: file.is_file() and file.stat().st_size > 0)
    for i in range(2):
        start(f"cluster-{i}", "worker", "--scheduler-file", str(file), "--nthreads", "1",
              "--no-nanny", "--no-dashboard", "--name", f"cluster-{i}",
              "--local-directory", str(tmp_path / f"w{i}"))  # fmt: skip
    from distributed import Client

    client = Client(scheduler_file=str(file), timeout=60)
    try:
        client.wait_for_workers(2, timeout=90)
        yield {"client": client, "address": client.scheduler.address, "procs": procs}
    finally:
        client.close()
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _busy_worker(client: Any, out: Path) -> str | None:
    """The name of a worker running a sweep task, once one task has finished."""
    if not list(out.glob("*/*/tasks/*/done.json")):
        return None
    info = client.scheduler_info()["workers"]
    for address, keys in client.processing().items():
        if keys and address in info:
            return str(info[address]["name"])
    return None


def _values(folder: Path) -> dict[str, np.ndarray]:
    with open_sweep(folder) as ds:
        ds = ds.sortby("seed").load()
    return {
        name: var.values
        for name, var in ds.data_vars.items()
        if np.issubdtype(var.dtype, np.number)
    }


@pytest.mark.slow
def test_a_sweep_on_a_started_cluster_survives_a_killed_worker(
    tmp_path: Path, data_dir: Path, cluster: dict[str, Any]
) -> None:
    path = write_sweep(tmp_path, f"seeds = {SEEDS}\n")
    out = tmp_path / "remote"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "regimes.cli", "sweep", str(path), "--scheduler",
         cluster["address"], "--quick", "--out", str(out), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        name = _wait("a task running after one finished", lambda: _busy_worker(
            cluster["client"], out))  # fmt: skip
        victim = cluster["procs"][name]
        os.kill(victim.pid, signal.SIGKILL)  # the worker process itself (no nanny to restart it)
        # reaped at once, as its parent (a shell, a batch system) would: a zombie still counts as
        # running, and the folder it was writing stays until its process is known to be gone
        assert victim.wait(timeout=10) == -signal.SIGKILL
        stdout, stderr = sweep.communicate(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, stderr[-3000:]
    folder = Path(stdout.strip().splitlines()[-1])
    assert failed_tasks(folder) == []
    table = json.loads((folder / "tasks.json").read_text(encoding="utf-8"))
    assert table["counts"] == {"complete": 4, "failed": 0, "pending": 0}
    for seed in SEEDS:  # each task's run written once; no half-written folder left behind
        runs = folder / "tasks" / f"seed-{seed}" / "runs" / "tiny"
        entries = sorted(p.name for p in runs.iterdir())
        assert len(entries) == 1 and not entries[0].startswith("."), entries
    with open_sweep(folder) as ds:
        assert sorted(ds["seed"].values.tolist()) == SEEDS

    local = run_sweep(  # in this process: no second cluster to start
        path, data_dir=data_dir, out=tmp_path / "local", quick=True, executor=SerialExecutor()
    )
    remote_values, local_values = _values(folder), _values(local)
    assert remote_values.keys() == local_values.keys() and "fair_value" in remote_values
    for key, value in remote_values.items():  # the same seeds give the same draws anywhere
        np.testing.assert_array_equal(value, local_values[key], err_msg=key)
