"""Sweep files: validation errors that name the key, and the tasks each expansion makes (no
sampling: these only write and validate task configs)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from regimes.config import SHIPPED_MODELS
from regimes.errors import ConfigError
from regimes.sweep.expand import expand, last_complete_month
from regimes.sweep.spec import load_sweep
from regimes.sweep.task import DONE, finished, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def tiny_experiment(folder: Path) -> Path:
    """A cheap static experiment (level regression, short window, tiny quick sampler)."""
    path = folder / "tiny.toml"
    path.write_text(
        f'''name = "tiny"
model = "{SHIPPED_MODELS / "static_fair_value.toml"}"
[options]
transform = "level"
errors = "iid"
[data]
target = "gold"
factors = ["dollar", "real_rate"]
start = "2012-01"
end = "2019-12"
[sampler.quick]
draws = 40
tune = 40
chains = 1
[outputs]
figures = false
''',
        encoding="utf-8",
    )
    return path


def write_sweep(folder: Path, body: str, name: str = "s.toml") -> Path:
    tiny_experiment(folder)
    path = folder / name
    path.write_text('experiment = "tiny.toml"\n' + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("seeds = [1]\n[grid]\n'options.errors' = ['iid']\n", "exactly one expansion"),
        ("", "exactly one expansion of origins, seeds, grid, sbc (found none)"),
        ("[orgins]\nstart = '2015-01'\n", "unknown key 'orgins' (did you mean 'origins'?)"),
        ("[origins]\nstart = '2015-01'\nwindow = 'rolling'\n", 'window = "rolling" needs length'),
        ("[origins]\nstart = '2015-01'\nend = '2014-01'\n", "is before start 2015-01"),
        ("[origins]\nstart = 'soon'\n", "key 'origins.start'"),
        ("[origins]\nstart = '2015-01'\nstep = 0\n", "key 'origins.step'"),
        ("seeds = []\n", "seeds must list at least one seed"),
        ("seeds = [1, 1]\n", "seeds must not repeat"),
        ("[grid]\n'options..x' = [1]\n", "must be a dotted config path"),
        ("[grid]\n'options.errors' = []\n", "lists no values"),
        ("seeds = [1]\n[overrides]\nname = 'x'\n", "cannot be set by a sweep"),
        ("seeds = [1]\n[realtime]\nthresholds = [1.5]\n", "key 'realtime.thresholds'"),
    ],
)
def test_sweep_file_errors_name_the_key(tmp_path: Path, body: str, expected: str) -> None:
    path = write_sweep(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_base_experiment_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('experiment = "nowhere.toml"\nseeds = [1]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'experiment': experiment file .*nowhere.toml"):
        load_sweep(path)


def test_origins_expanding_and_rolling(tmp_path: Path, data_dir: Path) -> None:
    path = write_sweep(tmp_path, "[origins]\nstart = '2018-11'\nend = '2019-03'\nstep = 2\n")
    tasks = expand(load_sweep(path), tmp_path / "out", data_dir, quick=True)
    assert [t.id for t in tasks] == ["origin-2018-11", "origin-2019-01", "origin-2019-03"]
    body = tomllib.loads(Path(tasks[1].config).read_text(encoding="utf-8"))
    assert body["data"]["end"] == body["data"]["predict_end"] == "2019-01"
    assert body["data"]["start"] == "2012-01"  # expanding: the experiment's start
    assert body["model"] == "static_fair_value"  # copied next to the tasks
    assert (tmp_path / "out" / "models" / "static_fair_value.toml").is_file()
    rolling = write_sweep(
        tmp_path,
        "[origins]\nstart = '2019-06'\nend = '2019-06'\nwindow = 'rolling'\nlength = 60\n",
        "r.toml",
    )
    (task,) = expand(load_sweep(rolling), tmp_path / "out2", data_dir, quick=True)
    data = tomllib.loads(Path(task.config).read_text(encoding="utf-8"))["data"]
    assert (data["start"], data["end"]) == ("2014-07", "2019-06")  # 60 months ending 2019-06
    assert "pad_to" not in body["data"] and "pad_to" not in data  # static: no likelihood weights


def test_expanding_origins_of_a_weighted_family_share_the_last_origins_shapes(
    tmp_path: Path, data_dir: Path
) -> None:
    """A Markov-switching experiment's expanding origins are sampled on arrays padded to the
    last origin (one compiled sampler per worker); a rolling window has one length already."""
    experiment = ROOT / "experiments" / "gold" / "ms2_ecm.toml"
    path = tmp_path / "rt.toml"
    path.write_text(
        f'experiment = "{experiment}"\n[origins]\nstart = "2024-01"\nend = "2024-03"\n',
        encoding="utf-8",
    )
    tasks = expand(load_sweep(path), tmp_path / "out", data_dir, quick=True)
    for task, month in zip(tasks, ["2024-01", "2024-02", "2024-03"], strict=True):
        data = tomllib.loads(Path(task.config).read_text(encoding="utf-8"))["data"]
        assert (data["end"], data["predict_end"], data["pad_to"]) == (month, month, "2024-03")
    rolling = tmp_path / "roll.toml"
    rolling.write_text(
        path.read_text(encoding="utf-8") + 'window = "rolling"\nlength = 120\n', encoding="utf-8"
    )
    (first, *_) = expand(load_sweep(rolling), tmp_path / "out2", data_dir, quick=True)
    assert "pad_to" not in tomllib.loads(Path(first.config).read_text(encoding="utf-8"))["data"]


def test_latest_origin_is_the_last_complete_month(tmp_path: Path, data_dir: Path) -> None:
    path = write_sweep(tmp_path, "[origins]\nstart = '2025-01'\n")
    sweep = load_sweep(path)
    latest = last_complete_month(sweep, data_dir)
    tasks = expand(sweep, tmp_path / "out", data_dir, quick=True)
    assert tasks[-1].coord == f"{latest:%Y-%m}"
    assert len(tasks) == (latest.year - 2025) * 12 + latest.month
    assert latest >= pd.Timestamp("2025-06")


def test_seeds_grid_and_overrides(tmp_path: Path, data_dir: Path) -> None:
    seeds = write_sweep(tmp_path, "seeds = [3, 5]\n[overrides]\n'data.start' = '2013-01'\n")
    tasks = expand(load_sweep(seeds), tmp_path / "a", data_dir, quick=False)
    bodies = [tomllib.loads(Path(t.config).read_text(encoding="utf-8")) for t in tasks]
    assert [b["sampler"]["seed"] for b in bodies] == [3, 5]
    assert {b["data"]["start"] for b in bodies} == {"2013-01"}
    grid = write_sweep(
        tmp_path,
        "[grid]\n'options.errors' = ['iid', 'ar1']\n'data.start' = ['2012-01', '2014-01', '2015-01']\n",
        "g.toml",
    )
    tasks = expand(load_sweep(grid), tmp_path / "b", data_dir, quick=False)
    assert len(tasks) == 6 and tasks[0].id == "grid-000"
    assert tasks[5].labels == {"options.errors": "ar1", "data.start": "2015-01"}
    assert len({t.key for t in tasks}) == 6  # every config its own content hash


def test_a_grid_value_the_config_refuses_names_task_and_key(tmp_path: Path, data_dir: Path) -> None:
    path = write_sweep(tmp_path, "[grid]\n'options.errors' = ['iid', 'garch']\n")
    with pytest.raises(ConfigError) as err:
        expand(load_sweep(path), tmp_path / "out", data_dir, quick=True)
    assert "task grid-001" in str(err.value) and "options.errors" in str(err.value)


def test_task_key_follows_config_and_data(tmp_path: Path, data_dir: Path) -> None:
    path = write_sweep(tmp_path, "seeds = [1]\n")
    sweep = load_sweep(path)
    (quick,) = expand(sweep, tmp_path / "out", data_dir, quick=True)
    (again,) = expand(sweep, tmp_path / "out", data_dir, quick=True)
    (full,) = expand(sweep, tmp_path / "out", data_dir, quick=False)
    assert quick.key == again.key != full.key
    assert set(quick.inputs["data"]) == {"us_macro_monthly.csv"}  # the files it reads, no other
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    for p in [copy, *copy.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    (moved,) = expand(sweep, tmp_path / "out", copy, quick=True)
    assert moved.key == quick.key  # keyed by content, wherever the data directory is
    (copy / "hamilton1989_rgnp_quarterly.csv").write_text("edited\n", encoding="utf-8")
    (unread,) = expand(sweep, tmp_path / "out", copy, quick=True)
    assert unread.key == quick.key  # a file the task does not read changes nothing
    text = (copy / "us_macro_monthly.csv").read_text(encoding="utf-8")
    (copy / "us_macro_monthly.csv").write_text(text.replace(",1", ",2", 1), encoding="utf-8")
    (edited,) = expand(sweep, tmp_path / "out", copy, quick=True)
    assert edited.key != quick.key


def test_finished_needs_same_key_and_a_verified_run(tmp_path: Path, data_dir: Path) -> None:
    from handmade_runs import make_run

    path = write_sweep(tmp_path, "seeds = [1]\n")
    (task,) = expand(load_sweep(path), tmp_path / "out", data_dir, quick=True)
    assert finished(task) == (None, "")  # never ran: nothing to say
    record = {"status": "complete", "key": task.key, "run_dir": "runs/exp/r1"}
    write_json_atomic(Path(task.folder) / DONE, record)
    earlier, why = finished(task)
    assert earlier is None and "fails verification" in why  # no run directory
    run = make_run(Path(task.folder) / "runs", "r1", 1.0)
    assert finished(task) == (record, "")
    (run / "derived.nc").write_bytes(b"damaged")  # a damaged run is never reused
    earlier, why = finished(task)
    assert earlier is None and "derived.nc" in why
    write_json_atomic(Path(task.folder) / DONE, {**record, "key": "other"})
    assert finished(task) == (
        None,
        "it records no reuse key (written by an older version, or damaged)",
    )
    (Path(task.folder) / DONE).write_text('{"status": "comp', encoding="utf-8")  # truncated
    earlier, why = finished(task)
    assert earlier is None and "corrupt" in why
