"""Run directories on disk: written atomically, with a manifest, and a small loading API.

A run is assembled in a hidden temporary folder next to its final place and renamed into
`results/<experiment>/<run-id>/` only once every file and the manifest are written, so an
interrupted or failed run leaves nothing under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xarray as xr

from regimes.errors import RunError

MANIFEST = "manifest.json"
POSTERIOR = "posterior.nc"
DERIVED = "derived.nc"
CONFIG = "config.toml"
FIGURES = "figures"
TMP_PREFIX = ".incomplete-"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_run_id(seed: int) -> str:
    """A sortable, unique run id: UTC time, seed and a random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-s{seed}-{os.urandom(3).hex()}"


def write_run(
    out_root: Path,
    experiment: str,
    run_id: str,
    writer: Callable[[Path], dict[str, Any]],
) -> Path:
    """Create a run directory atomically.

    `writer(tmp_dir)` writes the run's files into a temporary folder and returns manifest fields;
    the manifest (with sha256 of every file) is written last, then the folder is renamed into place.
    """
    parent = Path(out_root) / experiment
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / run_id
    if final.exists():
        raise RunError(f"run directory {final} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + run_id + "-", dir=parent))
    try:
        fields = writer(tmp)
        files = {
            str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        manifest = {"status": "complete", "run_id": run_id, "experiment": experiment, **fields}
        manifest["files"] = files
        _write_text_synced(tmp / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_text_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_netcdf(obj: xr.Dataset | xr.DataTree, path: Path) -> None:
    """Write a Dataset or DataTree to netCDF4 (HDF5) via h5netcdf."""
    obj.to_netcdf(path, engine="h5netcdf")


@dataclass(frozen=True)
class Run:
    """A finished run directory and its manifest."""

    path: Path
    manifest: dict[str, Any]

    def derived(self) -> xr.Dataset:
        """The derived quantities (`derived.nc`), loaded into memory."""
        return load_derived(self.path)

    def posterior(self) -> xr.DataTree:
        """The full posterior DataTree (`posterior.nc`), loaded into memory."""
        return load_posterior(self.path)

    @property
    def config_text(self) -> str:
        """The experiment config exactly as run."""
        return (self.path / CONFIG).read_text(encoding="utf-8")


def open_run(path: str | Path) -> Run:
    """Open a run directory, checking it is complete (has a manifest with status complete)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise RunError(
            f"{path} is not a complete run directory (no {MANIFEST}); pass a folder printed by "
            "`regimes run`, e.g. results/<experiment>/<run-id>"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("status") != "complete":
        raise RunError(f"{path}: run status is {manifest.get('status')!r}, not 'complete'")
    return Run(path=path, manifest=manifest)


def load_derived(run_dir: str | Path) -> xr.Dataset:
    """Load `derived.nc` of a run into memory (the file is closed afterwards)."""
    with xr.open_dataset(Path(run_dir) / DERIVED, engine="h5netcdf") as ds:
        return ds.load()


def load_posterior(run_dir: str | Path) -> xr.DataTree:
    """Load `posterior.nc` of a run into memory as a DataTree (the file is closed afterwards)."""
    with xr.open_datatree(Path(run_dir) / POSTERIOR, engine="h5netcdf") as tree:
        return tree.load()


def latest_run(out_root: str | Path, experiment: str) -> Path:
    """The most recent complete run directory of an experiment."""
    parent = Path(out_root) / experiment
    runs = sorted(p for p in parent.glob("*") if (p / MANIFEST).is_file())
    if not runs:
        raise RunError(f"no complete runs of {experiment!r} under {parent}")
    return runs[-1]


def add_files_to_run(run_dir: str | Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Add files to a finished run directory atomically and record them in its manifest.

    `writers` maps each file's path relative to the run (e.g. "lfo.nc", "figures/x.png") to a
    function writing it to the temporary path it is given; each file is renamed into place only
    once written, then the manifest (with every new file's sha256) is replaced atomically."""
    run = open_run(run_dir)
    done: dict[str, str] = {}
    paths: list[Path] = []
    for name, writer in writers.items():
        final = run.path / name
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".add-", suffix=final.suffix, dir=final.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            writer(tmp)
            done[name] = sha256_file(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        paths.append(final)
    manifest = dict(run.manifest)
    manifest["files"] = {**manifest.get("files", {}), **done}
    fd, tmp_name = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=run.path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(manifest, indent=2, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, run.path / MANIFEST)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return paths


def add_file_to_run(run_dir: str | Path, name: str, writer: Callable[[Path], None]) -> Path:
    """Add one file to a finished run directory atomically (see `add_files_to_run`)."""
    return add_files_to_run(run_dir, {name: writer})[0]
