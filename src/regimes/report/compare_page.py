"""The sections of `compare.html`: runs side by side (verdicts and headline numbers), PSIS-LOO
when the runs share observations, and each run's key figures in columns."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

import xarray as xr

from regimes.compare import CompareError, compare_runs, plot_compare
from regimes.report.headline import headline_rows
from regimes.report.html import columns, figure, page, para, section, table, verdict_banner
from regimes.report.sections import caption
from regimes.results import FIGURES, Run

COMPARE_FIGURES = ("fair_value", "regime_ribbon")


def run_label(run: Run) -> str:
    """A run's name on the page: `<experiment>/<run-id>`."""
    exp = run.manifest.get("experiment") or run.path.parent.name
    return f"{exp}/{run.manifest.get('run_id') or run.path.name}"


def verdict_summary(runs: Sequence[Run]) -> str:
    """One banner for all runs: converged only when every run passed the convergence gate."""
    bad = [run_label(r) for r in runs if not (r.manifest.get("verdict") or {}).get("converged")]
    if not bad:
        return verdict_banner(True, [], f"all {len(runs)} runs passed the convergence gate")
    return verdict_banner(
        False,
        [f"{label}: did not pass the convergence gate" for label in bad],
        f"{len(bad)} of {len(runs)} runs did not converge; read their numbers with care",
    )


def side_by_side_section(runs: Sequence[Run], derived: Sequence[xr.Dataset | None]) -> str:
    """A table with one column per run: what was run, its verdict and its headline numbers."""
    labels = [run_label(r) for r in runs]
    cells: dict[str, list[str]] = {}

    def put(row: str, j: int, value: str) -> None:
        cells.setdefault(row, ["-"] * len(runs))[j] = value

    for j, (run, ds) in enumerate(zip(runs, derived, strict=True)):
        v = run.manifest.get("verdict") or {}
        attrs = ds.attrs if ds is not None else {}
        window = run.manifest.get("data_window") or {}
        put("model", j, str(attrs.get("model", "n/a")))
        put("family", j, str(attrs.get("family", "n/a")))
        put("fit window", j, f"{window.get('fit_start', '?')} to {window.get('fit_end', '?')}")
        put("verdict", j, "converged" if v.get("converged") else "not converged")
        put("max R-hat", j, str(v.get("max_rhat", "n/a")))
        put("min bulk ESS", j, str(v.get("min_ess_bulk", "n/a")))
        put("divergences", j, str(v.get("divergences", "n/a")))
        for quantity, month, value in headline_rows(ds) if ds is not None else []:
            put(quantity, j, f"{value} ({month})")
    rows = [[name, *vals] for name, vals in cells.items()]
    return section("Runs side by side", table(["", *labels], rows), id_="runs")


def loo_section(runs: Sequence[Run], out_dir: Path) -> str:
    """PSIS-LOO ranking of the runs with ArviZ's compare plot, or a note on why it was skipped."""
    try:
        df = compare_runs([r.path for r in runs])
    except CompareError as exc:
        return section("PSIS-LOO comparison", para(f"skipped: {exc}", "note"), id_="loo")
    header = [
        "run",
        "rank",
        "elpd_loo",
        "se",
        "p_loo",
        "elpd_diff",
        "dse",
        "weight",
        "n_k_high",
        "max_k",
    ]
    rows = [
        [
            str(label),
            str(rec["rank"]),
            *(f"{rec[c]:.2f}" for c in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse")),
            f"{rec['weight']:.3f}",
            str(rec["n_k_high"]),
            f"{rec['max_k']:.2f}",
        ]
        for label, rec in df.iterrows()
    ]
    png = plot_compare(df, out_dir)[0]
    legend = (
        "Best first. elpd_diff = elpd(best) - elpd(run), dse its standard error; n_k_high counts "
        "observations with Pareto k > 0.7, where the LOO estimate is unreliable."
    )
    return section(
        "PSIS-LOO comparison",
        para(legend, "note"),
        table(header, rows, numeric=tuple(range(1, 10))),
        figure(
            png, "Expected log predictive density (PSIS-LOO) of each run with its standard error."
        ),
        id_="loo",
    )


def figures_section(runs: Sequence[Run]) -> str:
    """Each run's fair-value and regime-ribbon figures, one column per run."""
    cells = []
    for run in runs:
        parts = [f"<h3>{escape(run_label(run))}</h3>"]
        for stem in COMPARE_FIGURES:
            png = run.path / FIGURES / f"{stem}.png"
            if png.is_file():
                parts.append(figure(png, caption(stem)))
            else:
                parts.append(para(f"no {stem.replace('_', ' ')} figure in this run.", "note"))
        cells.append("\n".join(parts))
    return section("Figures", columns(cells), id_="figures")


def render_compare(runs: Sequence[Run], derived: Sequence[xr.Dataset | None], out_dir: Path) -> str:
    """The HTML of the comparison page."""
    return page(
        f"regimes comparison of {len(runs)} runs",
        [
            verdict_summary(runs),
            side_by_side_section(runs, derived),
            loo_section(runs, out_dir),
            figures_section(runs),
        ],
    )
