"""Sweeps on a real Dask LocalCluster of 2 workers, with the cheapest fits there are (a static
level regression, 40 draws, one chain): a task that raises is reported with its error while the
others complete; a worker killed mid-sweep and the sweep still has every task's result exactly
once; an interrupted sweep resumed runs only the missing tasks. Also the command line's exit
status and last line, and per-worker compile caches."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regimes.cli import main
from regimes.sweep import failed_tasks, open_sweep, run_sweep
from regimes.sweep.executor import DaskExecutor, local_cluster
from regimes.sweep.runner import FAILURES_JSON, TASKS_JSON
from test_sweep_spec import tiny_experiment, write_sweep


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One local cluster of 2 worker processes for the module (each test connects a client)."""
    with local_cluster(workers=2, cores=2) as c:
        yield c


def executor(cluster: Any) -> DaskExecutor:
    return DaskExecutor(scheduler=cluster.scheduler_address)


async def die() -> None:
    """Run on a worker (in its event loop): end its process at once, as a crash would."""
    os._exit(1)


def tasks_json(folder: Path) -> dict[str, Any]:
    return json.loads((folder / TASKS_JSON).read_text(encoding="utf-8"))


def test_a_task_that_raises_is_reported_and_the_others_complete(
    tmp_path: Path, data_dir: Path, cluster: Any
) -> None:
    path = write_sweep(tmp_path, "[grid]\n'data.start' = ['2012-01', '1900-01']\n")
    folder = run_sweep(
        path, data_dir=data_dir, out=tmp_path / "r", quick=True, executor=executor(cluster)
    )
    assert failed_tasks(folder) == ["grid-001"]
    (failure,) = json.loads((folder / FAILURES_JSON).read_text(encoding="utf-8"))
    assert failure["id"] == "grid-001" and failure["error"]["type"] == "DataError"
    assert "1900-01" in failure["error"]["message"]
    assert "Traceback" in failure["error"]["traceback"]
    assert tasks_json(folder)["counts"] == {"complete": 1, "failed": 1, "pending": 0}
    with open_sweep(folder) as ds:
        assert list(ds["grid"].values) == [0]
        assert list(ds["data.start"].values) == ["2012-01"]
        assert ds["fair_value"].chunks is not None  # opened lazily
        assert ds.attrs["n_failed"] == 1
    done = tasks_json(folder)["tasks"][0]
    cache = Path(os.environ["REGIMES_CACHE_DIR"]) / f"worker-{done['worker']}"
    assert (cache / "pytensor").is_dir() or (cache / "jax").is_dir()  # the worker's own caches


def test_a_worker_killed_mid_sweep(tmp_path: Path, data_dir: Path, cluster: Any) -> None:
    path = write_sweep(tmp_path, "seeds = [1, 2, 3, 4]\n")
    killed: dict[str, Any] = {}

    def kill_a_busy_worker(ex: DaskExecutor, task: Any, record: dict[str, Any]) -> None:
        if killed:
            return
        busy = {w: keys for w, keys in ex.client.processing().items() if keys}
        if not busy:
            return
        worker, keys = next(iter(busy.items()))
        killed["pid"] = ex.client.run(os.getpid, workers=[worker])[worker]
        killed["task"] = str(keys[0]).removeprefix("regimes-sweep-").rsplit("-", 1)[0]
        ex.client.run(die, workers=[worker], wait=False)

    folder = run_sweep(
        path,
        data_dir=data_dir,
        out=tmp_path / "r",
        quick=True,
        executor=executor(cluster),
        on_result=kill_a_busy_worker,
    )
    assert killed, "no task was running when the first one finished"
    assert failed_tasks(folder) == []
    with open_sweep(folder) as ds:
        assert sorted(ds["seed"].values.tolist()) == [1, 2, 3, 4]  # each exactly once
    records = {
        t: json.loads((folder / "tasks" / t / "done.json").read_text(encoding="utf-8"))
        for t in ("seed-1", "seed-2", "seed-3", "seed-4")
    }
    assert records[killed["task"]]["pid"] != killed["pid"]  # finished by another process


def test_an_interrupted_sweep_resumed_runs_only_the_missing_tasks(
    tmp_path: Path, data_dir: Path, cluster: Any
) -> None:
    """Ctrl-C as on the command line: the sweep's own local cluster goes down with it (tasks in
    flight die with their workers); the resumed sweep reuses what was done and runs the rest."""
    path = write_sweep(tmp_path, "seeds = [1, 2, 3]\n")

    def interrupt(ex: Any, task: Any, record: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        own = DaskExecutor(workers=2, cores=2)
        run_sweep(path, data_dir=data_dir, out=out, quick=True, executor=own, on_result=interrupt)
    assert own.client is None and own.cluster is None  # closed on the way out
    (folder,) = (out / "s").iterdir()
    before = tasks_json(folder)
    assert before["counts"] == {"complete": 1, "failed": 0, "pending": 2}
    done_before = {t["id"]: t["run_dir"] for t in before["tasks"] if t["status"] == "complete"}
    on_disk = {
        t: (folder / "tasks" / t / "done.json").is_file() for t in ("seed-1", "seed-2", "seed-3")
    }
    ran: list[str] = []
    resumed = run_sweep(
        path,
        data_dir=data_dir,
        out=out,
        quick=True,
        executor=executor(cluster),
        resume=folder,
        on_result=lambda ex, task, record: ran.append(task.id),
    )
    assert resumed == folder
    assert sorted(ran) == sorted(t for t, done in on_disk.items() if not done)
    assert set(done_before).isdisjoint(ran)  # what was done before is not run again
    after = {t["id"]: t for t in tasks_json(folder)["tasks"]}
    for task_id, run_dir in done_before.items():
        assert after[task_id]["reused"] is True and after[task_id]["run_dir"] == run_dir
    assert all(t["status"] == "complete" for t in after.values())
    for task_id in after:  # one complete run per task (a killed attempt leaves none)
        runs = (folder / "tasks" / task_id / "runs" / "tiny").iterdir()
        assert len([r for r in runs if (r / "manifest.json").is_file()]) == 1
    with open_sweep(folder) as ds:
        assert ds["seed"].values.tolist() == [1, 2, 3]


def test_command_line_exit_status_and_last_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, "[grid]\n'data.start' = ['1900-01', '1901-01']\n")
    args = ["sweep", str(path), "--serial", "--quick", "--out", str(tmp_path / "r")]
    code = main([*args, "--data-dir", str(data_dir), "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1  # every task failed (no data before 1960): recorded, exit 1
    folder = Path(out[-1])
    assert folder.parent == tmp_path / "r" / "s" and (folder / TASKS_JSON).is_file()
    assert not (folder / "sweep.nc").exists()
    assert main(["sweep", str(path), "--serial", "--workers", "2"]) == 2  # usage errors
    assert main(["sweep", str(path), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    assert main(["sweep", str(path), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    bad = write_sweep(tmp_path, "[grid]\n'options.errors' = ['garch']\n", "bad.toml")
    assert main(["sweep", str(bad), "--serial", "--out", str(tmp_path / "b")]) == 2
    assert "task grid-000" in capsys.readouterr().err
    assert not (tmp_path / "b" / "bad").exists()  # refused before it started: no folder
    assert "drop --scheduler and --workers" in err and "--workers must be at least 1" in err


def test_a_study_runs_side_by_side_on_the_executor(
    tmp_path: Path, data_dir: Path, cluster: Any
) -> None:
    """`run_study(..., executor=...)`: the study's runs go through the same executor; a failing
    run is recorded and the others complete, in the folder's order; each LFO model's refits go
    to a worker too (stored in its run before the ranking reads them)."""
    from regimes.study.runner import failed_runs, run_study

    study = tmp_path / "study"
    study.mkdir()
    tiny = tiny_experiment(study).read_text(encoding="utf-8")
    (study / "a_fit.toml").write_text(
        tiny.replace('name = "tiny"', 'name = "a_fit"'), encoding="utf-8"
    )
    early = tiny.replace('name = "tiny"', 'name = "b_early"').replace('"2012-01"', '"1900-01"')
    (study / "b_early.toml").write_text(early, encoding="utf-8")
    (study / "tiny.toml").unlink()
    second = tiny.replace('name = "tiny"', 'name = "c_ar1"').replace('"iid"', '"ar1"')
    (study / "c_ar1.toml").write_text(second, encoding="utf-8")
    (study / "study.toml").write_text(
        'title = "three runs"\n[lfo]\nexperiments = ["a_fit", "c_ar1"]\nfirst_scored = "2019-07"\n',
        encoding="utf-8",
    )
    folder = run_study(
        study,
        data_dir=data_dir,
        out=tmp_path / "r",
        quick=True,
        figures=False,
        executor=executor(cluster),
    )
    assert failed_runs(folder) == ["b_early"]
    body = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    assert list(body["runs"]) == ["a_fit", "b_early", "c_ar1"]
    assert body["runs"]["a_fit"]["status"] == "complete"
    assert {r["experiment"] for r in body["lfo"]} == {"a_fit", "c_ar1"}
    for name in ("a_fit", "c_ar1"):  # computed on a worker: in the run's manifest
        manifest = json.loads(
            (folder / body["runs"][name]["run_dir"] / "manifest.json").read_text()
        )
        assert "lfo.nc" in manifest["files"]
    assert (folder / body["runs"]["a_fit"]["run_dir"] / "manifest.json").is_file()
    assert "1900-01" in body["runs"]["b_early"]["error"]
