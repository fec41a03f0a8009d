"""Write report pages: `report.html` into a run directory (atomically, listed in its manifest;
as part of the run itself when `regimes run` writes it) and `compare.html` for several runs side by
side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from regimes.errors import RegimesError
from regimes.files import make_dirs, write_text_atomic
from regimes.report import compare_page, sections
from regimes.report.arviz_figures import report_figures
from regimes.report.html import page
from regimes.results import (
    DERIVED,
    FIGURES,
    POSTERIOR,
    Run,
    add_drawn_files,
    add_file_to_run,
    open_run,
)

REPORT = "report.html"
COMPARE = "compare.html"


class ReportError(RegimesError):
    """A report cannot be written (bad arguments or a run that cannot be read)."""


def _load(run: Run) -> tuple[xr.DataTree | None, xr.Dataset | None]:
    """The run's posterior and derived quantities, each None when the run has no such file
    (files were checked against the manifest when the run was opened)."""
    tree = run.posterior() if run.has(POSTERIOR) else None
    derived = run.derived() if run.has(DERIVED) else None
    return tree, derived


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
    run: Run,
    tree: xr.DataTree | None = None,
    derived: xr.Dataset | None = None,
    drawn: list[Path] | None = None,
) -> list[Path]:
    """Draw the ArviZ figures and write `report.html` into a run being assembled (the temporary
    folder of `results.write_run`, whose manifest is written afterwards); return the paths
    written. Gives the same page as `write_report` on the finished run. `tree` and `derived`:
    the run's posterior and derived quantities still in memory (as just written to its
    netCDF files, which are then not read back); else read from the run. `drawn`: the ArviZ
    figures' paths when they were drawn already (`report_figures`, by the figure helper)."""
    if tree is None or derived is None:
        tree, derived = _load(run)
    if drawn is None:
        drawn = report_figures(tree, run.path / FIGURES, run.figure_mark)
    out = write_text_atomic(run.path / REPORT, render_report(run, tree, derived))
    return [*drawn, out]


def write_report(run_dir: str | Path) -> Path:
    """Write `report.html` and the ArviZ figures into a run directory and list them, with their
    sha256, in its manifest; the same run always gives a byte-identical page. Return its path."""
    run = open_run(run_dir)
    tree, derived = _load(run)
    # the figures are listed at once, so the run opens even if the page is never written
    add_drawn_files(run.path, FIGURES, lambda folder: report_figures(tree, folder, run.figure_mark))
    html = render_report(run, tree, derived)
    return add_file_to_run(run.path, REPORT, lambda tmp: tmp.write_text(html, encoding="utf-8"))


def write_compare_report(run_dirs: Sequence[str | Path], out_dir: str | Path = "compare") -> Path:
    """Write `compare.html` into `out_dir`: verdicts, headline numbers, PSIS-LOO (when the runs
    share observations) and each run's key figures side by side. Return its path."""
    if len(run_dirs) < 2:
        raise ReportError(
            f"report --compare needs at least two run directories, got {len(run_dirs)}"
        )
    runs = [open_run(d) for d in run_dirs]
    out = make_dirs(out_dir)
    derived = [r.derived() if r.has(DERIVED) else None for r in runs]
    html = compare_page.render_compare(runs, derived, out)
    return write_text_atomic(out / COMPARE, html)
