"""Issue 31, items 4 and 5: writes stay inside a run directory (never through a symbolic link
out of it) and honour the umask (colleagues and Dask workers on a shared file system read the
results); a run reopens from any working directory, its data found again by the absolute paths
it recorded. Issue 27: every file is written atomically by the one helper (`regimes.files`)."""

from __future__ import annotations

import ast
import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from handmade_runs import derived_of, make_run
from regimes.cli import main
from regimes.errors import RunError
from regimes.figures import save_figure
from regimes.report import write_report
from regimes.results import add_file_to_run, open_run, write_netcdf, write_run

SRC = Path(__file__).resolve().parents[1] / "src"


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "folder", "file"),
    [(0o022, 0o755, 0o644), (0o002, 0o775, 0o664)],
    ids=["umask 022", "umask 002"],
)
def test_runs_and_files_added_later_honour_the_umask(
    mask: int, folder: int, file: int, tmp_path: Path
) -> None:
    with umask(mask):
        run = make_run(tmp_path, "r1", 1.0)
        added = add_file_to_run(run, "lfo.nc", lambda tmp: write_netcdf(derived_of(2.0), tmp))
    assert mode(run) == folder and mode(run / "figures") == folder
    for path in (run / "manifest.json", run / "derived.nc", added):
        assert mode(path) == file, path


def test_a_report_added_later_honours_the_umask_and_is_listed(tmp_path: Path) -> None:
    """report.html had its own atomic write that set 0o644 whatever the umask (a group could not
    replace a colleague's report); it now goes through `regimes.files` like every file."""
    with umask(0o002):
        run = make_run(tmp_path, "r1", 1.0)
        report = write_report(run)
    files = open_run(run).manifest["files"]  # opens: everything written is listed, unchanged
    drawn = [
        run / name for name in files if name.startswith("figures/") and "fair_value" not in name
    ]
    assert drawn and "report.html" in files
    for path in (report, *drawn):
        assert mode(path) == 0o664, path
    assert not [p for p in run.rglob("*") if p.name.startswith(".")]  # no scratch left behind


def test_a_figure_that_fails_half_way_leaves_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    first = save_figure(fig, tmp_path, "f")
    before = [p.read_bytes() for p in first]
    fig, _ = plt.subplots()

    def broken(target: io.BytesIO, **how: object) -> None:  # figures render to bytes first
        target.write(b"half a")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, tmp_path, "f")
    assert [p.read_bytes() for p in first] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.svg"]


ATOMIC = {"regimes/files.py", "regimes/results.py"}  # the helper; write_run's staged folder


def test_one_atomic_write_mechanism() -> None:
    """Only `regimes.files` (and `results.write_run`, which renames a whole run folder into
    place) renames temporary files into place; every other module calls them."""
    calls = {"replace", "rename", "mkstemp", "mkdtemp", "NamedTemporaryFile"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in calls
                and ast.unparse(node.func.value) in {"os", "tempfile"}
                and name not in ATOMIC
            ):
                found.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
    assert not found, found


def _run_without_figures(root: Path) -> Path:
    """A run written, as `--no-figures` writes one, without a figures/ folder."""

    def writer(tmp: Path) -> dict:
        write_netcdf(derived_of(1.0), tmp / "derived.nc")
        return {}

    return write_run(root, "exp", "r1", writer)


def test_a_link_inside_a_run_is_never_written_through(tmp_path: Path) -> None:
    """Issue 31: a figures/ symlink inside a run directory was followed by forecast and
    report, which wrote into the folder it pointed to."""
    run = _run_without_figures(tmp_path / "results")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (run / "figures").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RunError, match="symbolic link"):
        add_file_to_run(run, "figures/forecast.png", lambda tmp: tmp.write_bytes(b"png"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", str(run)]) == 2
    assert "symbolic link" in err.getvalue()
    assert list(outside.iterdir()) == []  # nothing written outside the run


def test_a_run_reopens_from_any_working_directory(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run started with a relative config path (its own series file beside it) and a
    relative --data-dir forecasts from another directory: the run recorded both resolved."""
    from test_reuse import MINE, own_file
    from test_sweep_spec import tiny_experiment

    folder = tmp_path / "project"
    folder.mkdir()
    tiny = tiny_experiment(folder)
    text = tiny.read_text(encoding="utf-8").replace('target = "gold"', 'target = "mine"')
    tiny.write_text(text + MINE, encoding="utf-8")
    own_file(folder)
    monkeypatch.chdir(folder)
    out = io.StringIO()
    relative = os.path.relpath(data_dir, folder)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["run", "tiny.toml", "--quick", "--no-progress", "--data-dir", relative,
                     "--out", "results"])  # fmt: skip
    assert code == 0
    run = folder / out.getvalue().strip().splitlines()[-1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["forecast", str(run), "--horizon", "2", "--no-figures"]) == 0
    from regimes.results import open_run

    manifest = open_run(run).manifest
    assert Path(manifest["config_path"]).is_absolute() and Path(manifest["data_dir"]).is_absolute()
    assert set(manifest["data_files"]) == {"data.series.mine", "us_macro_monthly.csv"}
    assert "forecast.nc" in manifest["files"]
