"""Write report pages: `report.html` into a run directory (atomically, listed in its manifest;
as part of the run itself when `regimes run` writes it) and `compare.html` for several runs side by
side."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from regimes.errors import RegimesError
from regimes.figures import marked
from regimes.report import compare_page, sections
from regimes.report.arviz_figures import diagnostic_figures
from regimes.report.html import page
from regimes.results import (
    DERIVED,
    FIGURES,
    MANIFEST,
    POSTERIOR,
    Run,
    open_run,
    sha256_file,
)

REPORT = "report.html"
COMPARE = "compare.html"


class ReportError(RegimesError):
    """A report cannot be written (bad arguments or a run that cannot be read)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, fsync it, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_manifest(run_dir: Path, paths: Sequence[Path]) -> dict:
    """Add (or refresh) the sha256 of `paths` in the run's manifest `files` map, atomically."""
    manifest_path = run_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = dict(manifest.get("files") or {})
    for p in paths:
        files[p.relative_to(run_dir).as_posix()] = sha256_file(p)
    manifest["files"] = dict(sorted(files.items()))
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    atomic_write_bytes(manifest_path, text.encode("utf-8"))
    return manifest


def _load(run: Run) -> tuple[xr.DataTree | None, xr.Dataset | None]:
    """The run's posterior and derived quantities, each None when the run has no such file
    (files were checked against the manifest when the run was opened)."""
    tree = run.posterior() if run.has(POSTERIOR) else None
    derived = run.derived() if run.has(DERIVED) else None
    return tree, derived


def _arviz_figures(run_dir: Path, tree: xr.DataTree | None, mark: str) -> list[Path]:
    """Draw the ArviZ figures (carrying the run's `mark`) in a hidden folder of the run, then
    move each file into figures/ with an atomic rename; return the final paths (PNG, SVG)."""
    if tree is None or "posterior" not in tree.children:
        return []
    tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=run_dir))
    try:
        with marked(mark):
            pngs = diagnostic_figures(tree, tmp)
        final = run_dir / FIGURES
        final.mkdir(exist_ok=True)
        moved = []
        for png in pngs:
            for src in (png, png.with_suffix(".svg")):
                if src.is_file():
                    os.replace(src, final / src.name)
                    moved.append(final / src.name)
        return moved
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render_report(run: Run, tree: xr.DataTree | None, derived: xr.Dataset | None) -> str:
    """The HTML of a run report, from figures already under the run's figures/ folder."""
    title = f"regimes report: {run.manifest.get('experiment', run.path.parent.name)}"
    return page(
        title,
        [
            sections.verdict_section(run.manifest),
            sections.run_section(run, derived),
            sections.provenance_section(run, derived),
            sections.diagnostics_section(tree),
            sections.figures_section(run.path / FIGURES),
            sections.headline_section(derived),
        ],
    )


def write_report_files(
    run: Run, tree: xr.DataTree | None = None, derived: xr.Dataset | None = None
) -> list[Path]:
    """Draw the ArviZ figures and write `report.html` into a run being assembled (the temporary
    folder of `results.write_run`, whose manifest is written afterwards); return the paths
    written. Gives the same page as `write_report` on the finished run. `tree` and `derived`:
    the run's posterior and derived quantities still in memory (as just written to its
    netCDF files, which are then not read back); else read from the run."""
    if tree is None or derived is None:
        tree, derived = _load(run)
    written = _arviz_figures(run.path, tree, run.figure_mark)
    out = run.path / REPORT
    atomic_write_bytes(out, render_report(run, tree, derived).encode("utf-8"))
    return [*written, out]


def write_report(run_dir: str | Path) -> Path:
    """Write `report.html` and the ArviZ figures into a run directory and list them, with their
    sha256, in its manifest; the same run always gives a byte-identical page. Return its path."""
    run = open_run(run_dir)
    tree, derived = _load(run)
    written = _arviz_figures(run.path, tree, run.figure_mark)
    if written:  # listed at once, so the run opens even if the page is never written
        update_manifest(run.path, written)
    out = run.path / REPORT
    atomic_write_bytes(out, render_report(run, tree, derived).encode("utf-8"))
    update_manifest(run.path, [*written, out])
    return out


def write_compare_report(run_dirs: Sequence[str | Path], out_dir: str | Path = "compare") -> Path:
    """Write `compare.html` into `out_dir`: verdicts, headline numbers, PSIS-LOO (when the runs
    share observations) and each run's key figures side by side. Return its path."""
    if len(run_dirs) < 2:
        raise ReportError(
            f"report --compare needs at least two run directories, got {len(run_dirs)}"
        )
    runs = [open_run(d) for d in run_dirs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    derived = [r.derived() if r.has(DERIVED) else None for r in runs]
    html = compare_page.render_compare(runs, derived, out)
    path = out / COMPARE
    atomic_write_bytes(path, html.encode("utf-8"))
    return path
