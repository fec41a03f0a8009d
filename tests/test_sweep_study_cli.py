"""`regimes run STUDY_FOLDER/ --workers N`: the study's runs go through the sweep executor (a
local Dask cluster), both runs complete and the study page is written; `--workers` with one
experiment file is a user error (nothing is sampled). The real 2-worker cluster costs about 35 s
here (cluster start, worker imports), so it is a `validation` test; the default one checks the
same wiring with the executor replaced by an in-process one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from regimes.cli import main
from regimes.sweep.executor import SerialExecutor
from test_sweep_spec import tiny_experiment


def tiny_study(folder: Path) -> Path:
    """The smallest study folder: two cheap static experiments and a title."""
    folder.mkdir()
    first = tiny_experiment(folder)
    second = folder / "tiny_b.toml"
    second.write_text(
        first.read_text(encoding="utf-8")
        .replace('name = "tiny"', 'name = "tiny_b"')
        .replace('start = "2012-01"', 'start = "2013-01"'),
        encoding="utf-8",
    )
    (folder / "study.toml").write_text('title = "two tiny runs"\n', encoding="utf-8")
    return folder


def run_tiny_study(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`regimes run STUDY/ --workers 2` on the tiny study; checks it and returns stderr."""
    study = tiny_study(tmp_path / "study")
    argv = ["run", f"{study}/", "--quick", "--no-figures", "--no-progress", "--workers", "2"]
    code = main([*argv, "--out", str(tmp_path / "out"), "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    study_dir = Path(out.strip().splitlines()[-1])
    runs = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))["runs"]
    assert sorted(runs) == ["tiny", "tiny_b"]
    for name, rec in runs.items():
        assert rec["status"] == "complete", rec
        assert (study_dir / rec["run_dir"] / "manifest.json").is_file()
        assert Path(rec["run_dir"]).parts[:2] == ("runs", name)
    assert (study_dir / "study.html").is_file()
    return err


@pytest.mark.validation
def test_study_on_two_workers_from_the_command_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_tiny_study(tmp_path, data_dir, capsys)
    assert "2 runs on a local Dask cluster of 2 workers" in err  # through the executor


class InProcessCluster(SerialExecutor):
    """Stands in for `DaskExecutor` (same constructor): records how the CLI made it."""

    made: ClassVar[list[dict[str, object]]] = []

    def __init__(self, scheduler: str | None = None, workers: int | None = None) -> None:
        self.made.append({"scheduler": scheduler, "workers": workers})

    def describe(self) -> str:
        """For the progress lines."""
        return "an in-process stand-in cluster"


def test_workers_send_the_study_through_the_executor(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("regimes.sweep.executor.DaskExecutor", InProcessCluster)
    InProcessCluster.made.clear()
    err = run_tiny_study(tmp_path, data_dir, capsys)
    assert InProcessCluster.made == [{"scheduler": None, "workers": 2}]
    assert "2 runs on an in-process stand-in cluster" in err


def test_without_workers_the_study_runs_as_before(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No flag: `run_study` gets no executor (its runs go one after another in this process)."""
    import regimes.study

    seen: dict[str, object] = {}

    def fake_run_study(folder: str, **kwargs: object) -> Path:
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(regimes.study, "run_study", fake_run_study)
    study = tiny_study(tmp_path / "study")
    with pytest.raises(SystemExit):
        main(["run", str(study), "--quick", "--data-dir", str(data_dir)])
    assert seen["executor"] is None


@pytest.mark.parametrize("flag", [["--workers", "2"], ["--scheduler", "tcp://127.0.0.1:1"]])
def test_workers_with_one_experiment_file_is_a_user_error(
    tmp_path: Path, flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_experiment(tmp_path)
    code = main(["run", str(path), "--out", str(tmp_path / "out"), *flag])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{flag[0]} applies to a study folder" in err and str(path) in err
    assert not (tmp_path / "out").exists()  # nothing sampled, nothing written


def test_workers_and_scheduler_together_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tiny_study(tmp_path / "study")
    code = main(["run", str(study), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert code == 2
    assert "drop one of them" in capsys.readouterr().err


def test_an_interrupted_sweep_says_it_can_be_resumed() -> None:
    import signal

    from regimes.signals import interrupted_line

    line = interrupted_line(signal.SIGINT, "sweep")
    assert "--resume" in line and "nothing was written" not in line
    assert "no run directory was written" in interrupted_line(signal.SIGINT, "run")
