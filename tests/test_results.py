"""Run directories: atomic creation, manifest checksums, loading, and no leftovers on failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from regimes.errors import RunError
from regimes.results import (
    DERIVED,
    MANIFEST,
    TMP_PREFIX,
    load_derived,
    open_run,
    sha256_file,
    write_netcdf,
    write_run,
)


def _dataset() -> xr.Dataset:
    return xr.Dataset({"price": ("time", np.arange(3.0))}, coords={"time": np.arange(3)})


def test_write_run_complete_with_checksums(tmp_path: Path) -> None:
    def writer(tmp: Path) -> dict:
        write_netcdf(_dataset(), tmp / DERIVED)
        (tmp / "figures").mkdir()
        (tmp / "figures" / "a.txt").write_text("x")
        return {"seed": 7}

    run_dir = write_run(tmp_path, "exp", "r1", writer)
    assert run_dir == tmp_path / "exp" / "r1"
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 7
    assert set(manifest["files"]) == {DERIVED, "figures/a.txt"}
    for name, digest in manifest["files"].items():
        assert sha256_file(run_dir / name) == digest
    assert open_run(run_dir).manifest["run_id"] == "r1"
    xr.testing.assert_identical(load_derived(run_dir)["price"], _dataset()["price"])
    assert not list((tmp_path / "exp").glob(TMP_PREFIX + "*"))


def test_failed_writer_leaves_nothing(tmp_path: Path) -> None:
    def writer(tmp: Path) -> dict:
        write_netcdf(_dataset(), tmp / DERIVED)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_run(tmp_path, "exp", "r1", writer)
    assert not (tmp_path / "exp").exists()  # not even an empty experiment folder
    write_run(tmp_path, "exp", "r0", lambda tmp: {})
    with pytest.raises(RuntimeError, match="disk full"):
        write_run(tmp_path, "exp", "r1", writer)
    assert [p.name for p in (tmp_path / "exp").iterdir()] == ["r0"]  # earlier runs stay


def test_existing_run_id_is_refused(tmp_path: Path) -> None:
    write_run(tmp_path, "exp", "r1", lambda tmp: {})
    with pytest.raises(RunError, match="already exists"):
        write_run(tmp_path, "exp", "r1", lambda tmp: {})


def test_open_run_rejects_incomplete_directory(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(RunError, match="not a complete run directory"):
        open_run(tmp_path / "half")
    (tmp_path / "half" / MANIFEST).write_text(json.dumps({"status": "running"}))
    with pytest.raises(RunError, match="not 'complete'"):
        open_run(tmp_path / "half")


def test_process_killed_while_writing_leaves_no_run_directory(tmp_path: Path) -> None:
    """SIGKILL in the middle of writing: no folder appears under the final name."""
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from regimes.results import write_run

        def writer(tmp):
            (tmp / "posterior.nc").write_bytes(b"partial")
            Path({str(ready)!r}).write_text("go")
            time.sleep(60)
            return {{}}

        write_run(Path({str(tmp_path)!r}), "exp", "killed", writer)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, "writer process exited early"
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "exp" / "killed").exists()
    leftovers = [p.name for p in (tmp_path / "exp").iterdir()]
    assert all(name.startswith(TMP_PREFIX) for name in leftovers)
