"""Issue 31, item 1: a stored result is reused only when it is proven current. A resumed study
or sweep recomputes exactly the runs whose inputs changed (a data file edited: the runs that read
it, no other), re-runs a reused run that fails verification, says why in one log line, and
refuses a folder of another study; a forecast.nc its manifest does not list is never read.
Smallest fits there are (the static level regression of test_sweep_spec, 40 draws, 1 chain)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes.errors import RegimesError
from regimes.study.runner import StudyError, failed_runs, run_study
from regimes.sweep import run_sweep
from regimes.sweep.executor import SerialExecutor
from test_sweep_spec import tiny_experiment

MINE = """
[data.series.mine]
file = "mine.csv"
"""


def own_file(folder: Path, shift: float = 0.0) -> Path:
    """mine.csv: a monthly series of the researcher's own, 2010-2020."""
    rng = np.random.default_rng(5)
    months = pd.date_range("2010-01-01", periods=132, freq="MS")
    values = 1000 + np.cumsum(rng.normal(0, 20, 132))
    values[60] += shift  # 2015-01, inside the fit window
    path = folder / "mine.csv"
    pd.DataFrame({"date": months.strftime("%Y-%m"), "mine": values}).to_csv(path, index=False)
    return path


def study_folder(root: Path) -> Path:
    """A study of two tiny runs: a_gold reads the catalog only, b_mine also reads mine.csv."""
    folder = root / "study"
    folder.mkdir()
    tiny = tiny_experiment(folder).read_text(encoding="utf-8")
    (folder / "tiny.toml").unlink()
    (folder / "a_gold.toml").write_text(tiny.replace('"tiny"', '"a_gold"'), encoding="utf-8")
    mine = tiny.replace('"tiny"', '"b_mine"').replace('target = "gold"', 'target = "mine"')
    (folder / "b_mine.toml").write_text(mine + MINE, encoding="utf-8")
    own_file(folder)
    (folder / "study.toml").write_text('title = "two runs"\n', encoding="utf-8")
    return folder


def runs_of(study_dir: Path) -> dict[str, str]:
    body = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    return {name: rec["run_dir"] for name, rec in body["runs"].items()}


def test_a_resumed_study_recomputes_exactly_what_changed(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = study_folder(tmp_path)
    common = {"data_dir": data_dir, "quick": True, "figures": False, "progress": False}
    first = run_study(folder, out=tmp_path / "r", **common)
    before = runs_of(first)
    assert set(before) == {"a_gold", "b_mine"} and failed_runs(first) == []

    own_file(folder, shift=50.0)  # the file b_mine reads is edited: b_mine only runs again
    with caplog.at_level(logging.INFO, logger="regimes.study.runner"):
        assert run_study(folder, resume=first, **common) == first
    after = runs_of(first)
    assert after["a_gold"] == before["a_gold"] and after["b_mine"] != before["b_mine"]
    lines = [r.getMessage() for r in caplog.records]
    assert any("reusing" in m and "a_gold" in m for m in lines)
    (why,) = [m for m in lines if "running b_mine again" in m]
    assert "the data changed since: data.series.mine" in why

    caplog.clear()  # reused runs damaged (a file, a truncated manifest): run again, no traceback
    (first / after["b_mine"] / "derived.nc").write_bytes(b"damaged")
    manifest = first / after["a_gold"] / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])
    with caplog.at_level(logging.INFO, logger="regimes.study.runner"):
        run_study(folder, resume=first, **common)
    again = runs_of(first)
    assert again["a_gold"] != after["a_gold"] and again["b_mine"] != after["b_mine"]
    for name in ("a_gold", "b_mine"):
        assert any(f"running {name} again" in m and "fails verification" in m
                   for m in caplog.messages)  # fmt: skip

    other = tmp_path / "other"  # --resume with another study's folder: refused, nothing written
    shutil.copytree(folder, other)
    (other / "study.toml").write_text('title = "another study"\n', encoding="utf-8")
    stored = {p.name: p.read_bytes() for p in first.iterdir() if p.is_file()}
    with pytest.raises(StudyError, match="a folder of another study"):
        run_study(other, resume=first, **common)
    assert {p.name: p.read_bytes() for p in first.iterdir() if p.is_file()} == stored

    (first / "study.json").write_text('{"runs": {"a_gold": {"sta', encoding="utf-8")  # truncated
    with pytest.raises(StudyError, match=r"study\.json: the study record is unreadable or corrupt"):
        failed_runs(first)


def test_a_resumed_sweep_reruns_the_tasks_whose_files_changed(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 31: editing a [data.series] file beside the experiment left 'N done earlier,
    running 0'. Now the tasks that read it run again, the others are reused."""
    tiny = tiny_experiment(tmp_path)
    tiny.write_text(tiny.read_text(encoding="utf-8") + MINE, encoding="utf-8")
    own_file(tmp_path)
    path = tmp_path / "s.toml"
    path.write_text('experiment = "tiny.toml"\n[grid]\n"data.target" = ["gold", "mine"]\n')
    common = {"data_dir": data_dir, "out": tmp_path / "r", "quick": True}
    folder = run_sweep(path, executor=SerialExecutor(), **common)
    own_file(tmp_path, shift=50.0)
    ran: list[str] = []
    with caplog.at_level(logging.INFO, logger="regimes.sweep.runner"):
        run_sweep(
            path,
            executor=SerialExecutor(),
            resume=folder,
            on_result=lambda ex, task, rec: ran.append(task.id),
            **common,
        )
    assert ran == ["grid-001"]  # the task of target "mine" only
    assert any("grid-001 runs again: the data changed since: data.series.mine" in m
               for m in caplog.messages)  # fmt: skip
    rows = {r["id"]: r for r in json.loads((folder / "tasks.json").read_text())["tasks"]}
    assert rows["grid-000"]["reused"] and not rows["grid-001"]["reused"]

    # a task whose run was written but whose record was lost (its worker died in between) is
    # given its run again, never a second one
    (folder / "tasks" / "grid-000" / "done.json").unlink()
    ran.clear()
    run_sweep(path, executor=SerialExecutor(), resume=folder,
              on_result=lambda ex, task, rec: ran.append(task.id), **common)  # fmt: skip
    assert ran == ["grid-000"]
    done = json.loads((folder / "tasks" / "grid-000" / "done.json").read_text())
    assert (
        done["written_earlier"]
        and done["run_dir"] == rows["grid-000"]["run_dir"].split("grid-000/")[1]
    )
    assert len(list((folder / "tasks" / "grid-000" / "runs" / "tiny").iterdir())) == 1


def test_a_forecast_nc_not_listed_in_the_manifest_is_never_read(tmp_path: Path) -> None:
    from handmade_runs import derived_of, make_run
    from regimes.forecast import load_forecast
    from regimes.results import write_netcdf

    run = make_run(tmp_path, "r1", 1.0)
    assert load_forecast(run) is None
    write_netcdf(derived_of(7.0), run / "forecast.nc")  # copied in, never written with the run
    with pytest.raises(RegimesError, match=r"forecast\.nc: not listed in manifest\.json"):
        load_forecast(run)
