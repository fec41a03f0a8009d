"""Interrupting a run (SIGINT, SIGTERM, a killed process) never leaves anything partial: the run
directory appears complete, report included, or not at all, and temporary folders are removed or
swept by the next run."""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from regimes.results import MANIFEST, OWNER, TMP_PREFIX, open_run, write_run
from regimes.signals import Stopper, Terminated

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "gold" / "old_framework.toml"
REGIMES = Path(sys.executable).with_name("regimes")
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
# (stderr line the delay counts from, shortest and longest delay): data loading, sampling, derived
# quantities and figures, and the report and the end of the run (written ~3.5 s after "Sampling:
# [y]" here; the report inside the atomic write: test_the_report_is_part_of_the_atomic_write)
PHASES = [
    ("loading data", 0.0, 0.3),
    ("sampling static model", 0.5, 3.0),
    ("Sampling: [y]", 0.5, 2.5),
    ("Sampling: [y]", 2.5, 5.0),
]


def _check_out(out: Path) -> list[Path]:
    """Under `out`: nothing, or complete runs only (every file matching the manifest, report
    included); never a temporary folder. Return the complete runs."""
    if not out.exists():
        return []
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".")]
    assert not leftovers, leftovers
    runs = [p for p in out.glob("*/*")]
    for run_dir in runs:
        run = open_run(run_dir)  # every listed file present with its sha256, nothing unlisted
        assert "report.html" in run.manifest["files"], run_dir
        assert (run_dir / "report.html").is_file()
        on_disk = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
        assert on_disk == {*run.manifest["files"], MANIFEST}, run_dir
    return runs


def _interrupt_run(out: Path, data_dir: Path, sig: int, after: str, delay: float) -> tuple:
    """Start `regimes run` on a quick experiment, send `sig` `delay` s after the stderr line
    containing `after`; return (exit code, stderr, seconds from signal to exit, signalled)."""
    env = {**os.environ, "REGIMES_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"}
    cmd = [str(REGIMES), "run", str(EXPERIMENT), "--quick", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if after in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen.wait(60)
    time.sleep(delay)
    sent = time.monotonic()
    signalled = proc.poll() is None
    if signalled:
        proc.send_signal(sig)
    proc.wait(60)
    took = time.monotonic() - sent
    reader.join(10)
    return proc.returncode, "".join(lines), took, signalled


def test_a_signal_at_a_random_point_leaves_a_complete_run_or_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM]
    for i, ((after, shortest, longest), sig) in enumerate(zip(PHASES, signals, strict=True)):
        delay = rng.uniform(shortest, longest)
        out = tmp_path / f"out{i}"
        code, err, took, signalled = _interrupt_run(out, data_dir, sig, after, delay)
        what = f"{signal.Signals(sig).name} {delay:.2f} s after {after!r}: exit {code}\n{err}"
        assert "Traceback" not in err and "Exception ignored" not in err, what
        runs = _check_out(out)
        print(f"{what.splitlines()[0]} after {took:.2f} s, {len(runs)} run(s)")  # shown with -s
        if code == 0 or code == -sig:  # finished (or shutting down) before the signal landed
            assert len(runs) == 1, what
            continue
        assert signalled and code == EXIT[sig], what
        assert took < 5.0, what  # stopped within seconds
        last = err.strip().splitlines()[-1]
        name = signal.Signals(sig).name
        if runs:  # the signal landed after the run directory was complete: the line names it
            assert len(runs) == 1, what
            assert last == f"regimes: interrupted ({name}); complete: {runs[0]}", what
            continue
        assert last == f"regimes: interrupted ({name}); no run directory was written", what


def test_a_signal_lost_in_a_finaliser_is_raised_again() -> None:
    """Python runs a signal handler at the next bytecode, which may be in a finaliser or a gc
    callback (JAX has one) where an exception is dropped; the signal must still stop the run."""

    class Finalised:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGTERM)  # the handler runs here, inside __del__
            for _ in range(10):
                pass

    with Stopper(hard=False), pytest.raises(Terminated):
        obj = Finalised()
        del obj
        gc.collect()
        for _ in range(1000):  # ordinary code: the signal raised again lands here
            time.sleep(0.001)
    assert signal.getsignal(signal.SIGTERM) is not None


def _owned(folder: Path, pid: int | None, host: str | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "posterior.nc").write_bytes(b"partial")
    if pid is not None:
        owner = {"pid": pid, "host": host or socket.gethostname(), "started": time.time()}
        (folder / OWNER).write_text(json.dumps(owner), encoding="utf-8")
    return folder


def test_stale_temporary_folders_are_swept_by_the_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parent = tmp_path / "out" / "exp"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is no longer a process
    gone = _owned(parent / f"{TMP_PREFIX}a-dead", dead.pid)
    live = _owned(parent / f"{TMP_PREFIX}b-live", os.getpid())
    old = _owned(parent / f"{TMP_PREFIX}c-old", None)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    young = _owned(parent / f"{TMP_PREFIX}d-young", None)
    elsewhere = _owned(parent / f"{TMP_PREFIX}e-other-host", 1, host="another-machine")

    def writer(tmp: Path) -> dict:
        (tmp / "derived.nc").write_bytes(b"x")
        return {}

    with caplog.at_level(logging.INFO, logger="regimes.results"):
        run_dir = write_run(tmp_path / "out", "exp", "run1", writer)
    assert not gone.exists() and not old.exists()
    assert live.exists() and young.exists() and elsewhere.exists()
    swept = [r.getMessage() for r in caplog.records if "stale temporary folder" in r.getMessage()]
    assert len(swept) == 2, swept
    assert f"process {dead.pid} is no longer running" in " ".join(swept)
    manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"derived.nc"}  # the owner file is never part of a run
    assert sorted(p.name for p in run_dir.iterdir()) == ["derived.nc", MANIFEST]


def test_the_report_is_part_of_the_atomic_write(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted while report.html is rendered: no run directory at all (not a complete-status
    run without its report), and no temporary folder."""
    from regimes.api import run_experiment
    from regimes.report import write as report_write

    def interrupted(*args: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_write, "render_report", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(EXPERIMENT, data_dir=data_dir, out=out, quick=True, progress=False)
    assert [p for p in out.rglob("*") if p.is_file() or p.name.startswith(".")] == []


def test_the_interrupted_line_names_the_runs_completed_before_the_signal() -> None:
    """A signal after a run directory was completed must not say nothing was written."""
    from regimes.signals import interrupted_line

    none = interrupted_line(signal.SIGTERM, "run")
    assert none == "regimes: interrupted (SIGTERM); no run directory was written"
    done = interrupted_line(signal.SIGINT, "run", [Path("out/x/run1")])
    assert done == "regimes: interrupted (SIGINT); complete: out/x/run1"
