"""Run directories on disk: written atomically, with a manifest, and a small loading API.

A run is assembled in a hidden temporary folder next to its final place and renamed into
`results/<experiment>/<run-id>/` only once every file and the manifest are written, so an
interrupted or failed run leaves nothing under a final name (and the temporary folder of a process
killed outright is swept by the next run of the experiment, once its owner is gone). Opening a run checks every file the
manifest lists against its sha256, so a run directory changed after it was written (a file
swapped in from another run, edited, truncated or deleted) is refused, never read.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from regimes.errors import RegimesError, RunError
from regimes.figures import run_mark
from regimes.files import (
    WriteError,
    exists,
    is_dir,
    is_file,
    make_dirs,
    sha256_file,
    shorten,
    temporary_dir,
    usable_name,
    within,
    write_atomic,
    write_json_atomic,
)
from regimes.spec import plain_name_problem
from regimes.summary import NATURAL, build_summary, summary_html

# deferred to the functions that use them: Pillow (docs/modules.md#imports)

__all__ = ["sha256_file"]  # re-exported: the hash every manifest records

if TYPE_CHECKING:
    import pandas as pd

    from regimes.summary import Summary

MANIFEST = "manifest.json"
POSTERIOR = "posterior.nc"
DERIVED = "derived.nc"
CONFIG = "config.toml"
DATA = "data.nc"  # a run_dataframe run's own DataFrame columns (reopened for forecasts and LFO)
TUNING = "tuning.npz"  # the sampler's final positions and tuning: LFO refits warm-start from it
FIGURES = "figures"
TMP_PREFIX = ".incomplete-"
OWNER = ".owner.json"  # inside a temporary run folder: the process assembling it (never kept)
STALE_AGE_S = 24 * 3600  # a temporary folder of unknown owner older than this is abandoned

log = logging.getLogger(__name__)
_OWN_TMP: set[Path] = set()  # temporary run folders this process is assembling now
_WRITTEN: list[Path] = []  # run directories this process has completed (written_runs)

MODIFIED = "the run directory was modified after it was written; re-run the experiment"
DAMAGED = "the run directory is damaged or was modified after it was written; re-run the experiment"


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, for a one-line error."""
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).splitlines()[0]


def check_out_root(out_root: str | Path, flag: str = "--out") -> Path:
    """The results root a run will be written under, checked before any sampling: it (or its
    nearest existing parent) must be a writable folder; else a RunError naming `flag`."""
    out = Path(out_root)
    if not usable_name(out):
        raise RunError(f"{flag} {shorten(str(out))}: not a usable path (too long, or a NUL byte)")
    node = out
    while not exists(node) and node != node.parent:
        node = node.parent
    if exists(node) and not is_dir(node):
        what = f"{node} is a file" if node == out else f"{node}, on the way to it, is a file"
        raise RunError(f"{flag} {shorten(str(out))}: {what}, not a folder; pass a folder")
    if exists(node) and not os.access(node, os.W_OK | os.X_OK):
        raise RunError(f"{flag} {shorten(str(out))}: {node} is not writable; pass another folder")
    return out


def new_run_id(seed: int) -> str:
    """A sortable, unique run id: UTC time, seed and a random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-s{seed}-{os.urandom(3).hex()}"


def write_run(
    out_root: Path,
    experiment: str,
    run_id: str,
    writer: Callable[[Path], dict[str, Any]],
    finish: Callable[[Run], object] | None = None,
) -> Path:
    """Create a run directory atomically.

    `writer(tmp_dir)` writes the run's files into a temporary folder and returns manifest fields;
    then `finish`, when given, is called with the run as assembled so far (a `Run` of the
    temporary folder whose manifest is not yet on disk) to add files made from it (the report);
    the manifest (with sha256 of every file) is written last, then the folder is renamed into
    place. Stale temporary folders of the experiment (their process gone) are swept first."""
    for what, name in (("experiment name", experiment), ("run id", run_id)):
        problem = plain_name_problem(name)
        if problem:  # never a path: the run must land directly under out_root/experiment
            raise RunError(f"{what} {name!r} {problem}")
    parent = check_out_root(out_root) / experiment
    made_parent = not exists(parent)
    try:
        make_dirs(parent)
    except WriteError as exc:
        raise RunError(str(exc)) from None
    final = parent / run_id
    if exists(final):
        raise RunError(f"run directory {final} already exists")
    sweep_stale(parent)
    tmp = temporary_dir(parent, TMP_PREFIX + run_id + "-")
    _OWN_TMP.add(tmp)
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        (tmp / OWNER).write_text(json.dumps(owner) + "\n", encoding="utf-8")
        fields = writer(tmp)
        manifest = {"status": "complete", "run_id": run_id, "experiment": experiment, **fields}
        if finish is not None:
            finish(Run(path=tmp, manifest={**manifest, "files": _hash_tree(tmp)}))
        manifest["files"] = _hash_tree(tmp)
        (tmp / OWNER).unlink()
        write_json_atomic(tmp / MANIFEST, manifest, root=tmp)
        os.replace(tmp, final)
        _WRITTEN.append(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent:  # a first run that failed leaves no empty <out>/<experiment>/ behind
            with contextlib.suppress(OSError):  # (not empty: another run landed meanwhile)
                parent.rmdir()
        raise
    finally:
        _OWN_TMP.discard(tmp)
    return final


def written_runs() -> list[Path]:
    """The run directories this process has completed, in order: what an interrupted command
    says it leaves behind."""
    return list(_WRITTEN)


def remove_own_temporary() -> None:
    """Remove the temporary run folders this process is assembling (before it ends abruptly)."""
    for tmp in list(_OWN_TMP):
        shutil.rmtree(tmp, ignore_errors=True)


def _hash_tree(tmp: Path) -> dict[str, str]:
    """sha256 of every file in a temporary run folder (its owner file and manifest excepted)."""
    skip = (Path(OWNER), Path(MANIFEST))
    return {
        str(p.relative_to(tmp)): sha256_file(p)
        for p in sorted(tmp.rglob("*"))
        if p.is_file() and p.relative_to(tmp) not in skip
    }


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: keep
    return True


def stale_reason(tmp: Path, now: float | None = None) -> str | None:
    """Why a temporary run folder is abandoned, or None while it may still be written.

    It is abandoned when the process recorded in its owner file ran on this machine and no
    longer exists; a folder without a readable owner file, or owned by a process on another
    machine, only once it has not changed for STALE_AGE_S."""
    try:
        owner = json.loads((tmp / OWNER).read_text(encoding="utf-8"))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        pid, host = 0, ""
    if pid > 0 and host == socket.gethostname():
        return None if _pid_alive(pid) else f"its process {pid} is no longer running"
    try:
        age = (time.time() if now is None else now) - tmp.stat().st_mtime
    except OSError:
        return None
    if age > STALE_AGE_S:
        return f"unchanged for {age / 3600:.0f} hours, owner unknown"
    return None


def sweep_stale(parent: Path) -> list[Path]:
    """Remove the abandoned temporary run folders (`.incomplete-*`) directly under `parent`,
    logging one line each; return those removed."""
    removed = []
    for tmp in sorted(Path(parent).glob(TMP_PREFIX + "*")):
        if tmp.is_symlink() or not tmp.is_dir():
            continue
        reason = stale_reason(tmp)
        if reason is None:
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        if not tmp.exists():
            log.info(f"removed the stale temporary folder {tmp} ({reason})")
            removed.append(tmp)
    return removed


def write_netcdf(obj: xr.Dataset | xr.DataTree, path: Path) -> None:
    """Write a Dataset or DataTree to netCDF4 (HDF5) via h5netcdf."""
    obj.to_netcdf(path, engine="h5netcdf")


@dataclass(frozen=True, repr=False)
class Run:
    """A finished run directory and its manifest (its files checked when it was opened)."""

    path: Path
    manifest: dict[str, Any]

    def has(self, name: str) -> bool:
        """Whether the run was written with (or later given) the file `name`."""
        return name in self.manifest.get("files", {})

    def derived(self) -> xr.Dataset:
        """The derived quantities (`derived.nc`), loaded into memory."""
        return self._load(DERIVED, xr.open_dataset)

    def posterior(self) -> xr.DataTree:
        """The full posterior DataTree (`posterior.nc`), loaded into memory."""
        return self._load(POSTERIOR, xr.open_datatree)

    def posterior_group(self, group: str) -> xr.Dataset | None:
        """One group of `posterior.nc` (e.g. "posterior_natural"), loaded into memory; None when
        the run's posterior.nc has no such group (or the run has no posterior.nc)."""
        if not self.has(POSTERIOR):
            return None
        path = self.path / POSTERIOR
        try:
            with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
                return ds.load()
        except OSError:  # h5netcdf: no such group
            return None

    def _load(self, name: str, opener: Callable[..., Any]) -> Any:
        if not self.has(name):
            raise RunError(f"{self.path}: this run has no {name} (not in its {MANIFEST})")
        return _load_netcdf(self.path / name, opener)

    @property
    def config_text(self) -> str:
        """The experiment config exactly as run."""
        path = self.path / CONFIG
        try:
            return path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunError(f"{path}: cannot read the run's config ({_reason(exc)})") from exc

    # ------------------------------------------------------------------ presentation

    @property
    def figure_mark(self) -> str:
        """What every figure of this run carries when it is not fit for a memo: "QUICK RUN —
        not for citation", "NOT CONVERGED", both, or "" (`regimes.figures.run_mark`)."""
        verdict = self.manifest.get("verdict") or {}
        return run_mark(bool(self.manifest.get("quick")), bool(verdict.get("converged", True)))

    def summary(self) -> pd.DataFrame:
        """The run's parameters in natural units as a table (index: quantity, element; columns:
        5%, 50%, 95%, r_hat, ess_bulk, ess_tail, units), the current regime's probability rows
        last; `summary_text()` prints it with the verdict."""
        return self._summary().table

    def summary_text(self, short: bool = False) -> str:
        """The summary as plain text (`regimes summary RUN_DIR`); `short`: medians and 90%
        intervals only (what `regimes run` prints at its end)."""
        return self._summary().text(short=short)

    def _summary(self) -> Summary:
        try:
            config = tomllib.loads(self.config_text)
        except (RunError, tomllib.TOMLDecodeError):
            config = {}
        return build_summary(self.manifest, self.derived(), self.posterior_group(NATURAL), config)

    def __repr__(self) -> str:
        verdict = self.manifest.get("verdict") or {}
        state = {True: "converged", False: "NOT CONVERGED"}.get(verdict.get("converged"), "?")
        quick = ", quick" if self.manifest.get("quick") else ""
        return f"Run('{self.path}', experiment={self.manifest.get('experiment')!r}, {state}{quick})"

    def _repr_html_(self) -> str:
        """A notebook's display of the run: where it is, the summary table with its verdict, and
        thumbnails of its figures."""
        s = self._summary()
        bad = not (self.manifest.get("verdict") or {}).get("converged", False)
        colour = "#b03a2e" if bad or self.manifest.get("quick") else "#2e7d4f"
        verdict = "<br>".join(escape(v) for v in s.verdict)
        thumbs = "".join(
            f'<img src="data:image/png;base64,{_base64(p)}" title="{escape(p.stem)}" '
            'style="width:240px;margin:2px;border:1px solid #ddd">'
            for p in sorted((self.path / FIGURES).glob("*.png"))
            if self.has(f"{FIGURES}/{p.name}")
        )
        return (
            f"<div><p><code>{escape(str(self.path))}</code><br>"
            + "<br>".join(escape(t) for t in s.title)
            + f'</p><p style="color:#fff;background:{colour};padding:6px 10px;'
            f'border-radius:4px">{verdict}</p>{summary_html(s)}<div>{thumbs}</div></div>'
        )


def _base64(path: Path, width: int = 360) -> str:
    """A figure as a base64 PNG thumbnail `width` pixels wide (for a notebook's display)."""
    from PIL import Image

    with Image.open(path) as img:
        img.thumbnail((width, width * 4))
        buffer = io.BytesIO()
        img.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A complete run directory's manifest, checked for shape (an object with status complete
    and a `files` map of relative paths to sha256 digests); a missing, unreadable, incomplete or
    corrupt one is a RunError."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not is_file(manifest_path):
        if not usable_name(manifest_path):
            raise RunError(f"{shorten(str(path))}: not a usable path (too long, or a NUL byte)")
        what = "does not exist" if not exists(path) else f"has no {MANIFEST}"
        if exists(path) and not is_dir(path):
            what = "is a file, not a folder"
        raise RunError(
            f"{shorten(str(path))} is not a complete run directory (it {what}); pass a folder "
            "printed by `regimes run`, e.g. results/<experiment>/<run-id>"
        )
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RunError(
            f"{manifest_path}: unreadable or corrupt ({_reason(exc)}); {DAMAGED}"
        ) from exc
    if not isinstance(manifest, dict):
        raise RunError(f"{manifest_path}: corrupt (not a JSON object); {DAMAGED}")
    if manifest.get("status") != "complete":
        raise RunError(f"{path}: run status is {manifest.get('status')!r}, not 'complete'")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise RunError(f"{manifest_path}: corrupt (no 'files' map of sha256 digests); {DAMAGED}")
    for name in files:
        if not _inside_run(name):
            raise RunError(f"{manifest_path}: corrupt (lists the file {name!r}); {DAMAGED}")
    return manifest


def verify_files(path: Path, manifest: dict[str, Any], names: list[str] | None = None) -> None:
    """Check files of a run against the sha256 its manifest records (all listed files, or only
    `names`), hashing each once; a missing, changed or unlisted file is a RunError naming it."""
    files: dict[str, str] = manifest["files"]
    for name in files if names is None else names:
        target = path / name
        if not usable_name(target):
            raise RunError(f"{path}/{MANIFEST}: corrupt (lists the file {name[:60]!r}); {DAMAGED}")
        if name not in files:
            if not target.exists():
                raise RunError(f"{path}: this run has no {name} (not in its {MANIFEST})")
            raise RunError(
                f"{target}: not listed in {MANIFEST}, so it was not written with the run; "
                f"{MODIFIED}"
            )
        if not is_file(target):
            raise RunError(f"{target}: missing (listed in {MANIFEST}); {MODIFIED}")
        if not within(path, target):
            raise RunError(f"{target}: reached through a symbolic link; {MODIFIED}")
        try:
            digest = sha256_file(target)
        except OSError as exc:
            raise RunError(f"{target}: cannot be read ({_reason(exc)}); {MODIFIED}") from exc
        if digest != files[name]:
            raise RunError(
                f"{target}: content differs from {MANIFEST} (sha256 {digest[:12]}, recorded "
                f"{files[name][:12]}); {MODIFIED}"
            )
    if names is None:  # a run's own data files never appear after it was written
        for name in (POSTERIOR, DERIVED, CONFIG):
            if name not in files and (path / name).exists():
                raise RunError(
                    f"{path / name}: not listed in {MANIFEST}, so it was not written with the "
                    f"run; {MODIFIED}"
                )


def _inside_run(name: str) -> bool:
    """Whether `name` is a relative path of a file inside a run (and not its manifest)."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and name != MANIFEST


def open_run(path: str | Path) -> Run:
    """Open a run directory: it must have a well-formed manifest with status complete, every
    file the manifest lists must be present with the recorded sha256 (each hashed once), and it
    holds no symbolic link (a run is written as plain files; a link would lead reads and later
    writes out of it)."""
    path = Path(path)
    manifest = read_manifest(path)
    for inner in _walk(path):
        if inner.is_symlink():
            raise RunError(
                f"{inner}: a symbolic link inside the run directory; a run holds only the files "
                f"it was written with: remove the link, or {MODIFIED.split('; ')[1]}"
            )
    verify_files(path, manifest)
    return Run(path=path, manifest=manifest)


def _walk(path: Path) -> list[Path]:
    """Every entry below a folder, links listed but not followed."""
    out = []
    for root, dirs, files in os.walk(path):
        out += [Path(root) / name for name in [*dirs, *files]]
    return out


def _load_netcdf(path: Path, opener: Callable[..., Any]) -> Any:
    """Open a run's netCDF file with `opener` and load it into memory (the file is closed
    afterwards); a missing or corrupt file is a RunError naming it."""
    if not is_file(path):
        raise RunError(f"{path}: missing; {MODIFIED}")
    try:
        with opener(path, engine="h5netcdf") as obj:
            return obj.load()
    except RegimesError:
        raise
    except Exception as exc:  # h5py/xarray raise OSError, ValueError, KeyError... on bad files
        raise RunError(
            f"{path}: not a readable netCDF file ({type(exc).__name__}: {_reason(exc)}); {DAMAGED}"
        ) from exc


def load_derived(run_dir: str | Path) -> xr.Dataset:
    """Load `derived.nc` of a complete run into memory, checked against its manifest."""
    return _load_checked(Path(run_dir), DERIVED, xr.open_dataset)


def load_posterior(run_dir: str | Path) -> xr.DataTree:
    """Load `posterior.nc` of a complete run into memory as a DataTree, checked against its
    manifest."""
    return _load_checked(Path(run_dir), POSTERIOR, xr.open_datatree)


def load_listed(run_dir: str | Path, name: str) -> xr.Dataset:
    """A netCDF file of a run (lfo.nc, forecast.nc, data.nc), loaded only once checked against
    the sha256 its manifest records: a file the manifest does not list (copied in, never written
    with the run) or whose content differs is a RunError, never read."""
    return _load_checked(Path(run_dir), name, xr.open_dataset)


def _load_checked(run_dir: Path, name: str, opener: Callable[..., Any]) -> Any:
    verify_files(run_dir, read_manifest(run_dir), [name])
    return _load_netcdf(run_dir / name, opener)


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
    for name in writers:
        if not _inside_run(name):
            raise RunError(f"cannot add {name!r} to {run.path}: not a file path inside the run")
    done: dict[str, str] = {}
    paths: list[Path] = []
    try:
        for name, writer in writers.items():
            final = run.path / name
            make_dirs(final.parent, root=run.path)

            def write(tmp: Path, writer: Callable[[Path], None] = writer, name: str = name) -> None:
                writer(tmp)
                done[name] = sha256_file(tmp)

            paths.append(write_atomic(final, write, root=run.path))
        manifest = dict(run.manifest)
        manifest["files"] = {**manifest.get("files", {}), **done}
        write_json_atomic(run.path / MANIFEST, manifest, root=run.path)
    except WriteError as exc:
        raise RunError(str(exc)) from None
    return paths


def add_file_to_run(run_dir: str | Path, name: str, writer: Callable[[Path], None]) -> Path:
    """Add one file to a finished run directory atomically (see `add_files_to_run`)."""
    return add_files_to_run(run_dir, {name: writer})[0]


def add_drawn_files(run_dir: str | Path, folder: str, draw: Callable[[Path], object]) -> list[Path]:
    """Add the files `draw(scratch)` writes into a scratch folder (figures, several at once) to
    the run's `folder` atomically and record them in its manifest (see `add_files_to_run`);
    return their paths in the run."""
    run = open_run(run_dir)
    with tempfile.TemporaryDirectory(dir=run.path, prefix=".drawing-") as scratch:
        draw(Path(scratch))
        made = sorted(p for p in Path(scratch).rglob("*") if p.is_file())
        writers: dict[str, Callable[[Path], None]] = {
            f"{folder}/{p.relative_to(scratch).as_posix()}": partial(shutil.copyfile, p)
            for p in made
        }
        return add_files_to_run(run.path, writers) if writers else []
