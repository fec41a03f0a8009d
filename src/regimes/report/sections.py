"""The sections of a run report, one function each, in page order; each copes with missing parts
(static runs have no regimes, older runs may lack a figure or a manifest field)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from regimes.data import CATALOG
from regimes.dataset import catalog_series
from regimes.diagnostics import diagnose
from regimes.report.arviz_figures import ARVIZ_STEMS
from regimes.report.headline import headline_rows
from regimes.report.html import figure, kv_table, para, pre, section, table, verdict_banner
from regimes.results import Run
from regimes.userdata import credit

# Captions of the figures the framework writes; other PNGs under figures/ get a generic caption.
CAPTIONS = {
    "fair_value": "Price and the model's fair value (posterior median with 50% and 90% bands), in "
    "the fit window and beyond it; the note gives the latest deviation from fair value.",
    "regime_ribbon": "Price and fair value over a background shaded by the most probable regime; "
    "below, the posterior probability of each regime.",
    "transition_matrix": "Posterior median transition probabilities between regimes "
    "(row: regime now, column: regime next period).",
    "durations": "Expected duration of each regime in periods (posterior median and band).",
    "coef_paths": "Coefficient paths over time (posterior median and band).",
    "break_dates": "Posterior probability that each change point happened in each month, with "
    "the median date (dashed) and the 90% interval (shaded).",
    "ppc": "Posterior predictive check: the observed series inside its one-step-ahead 90% "
    "predictive band, and the histogram of probability integral transforms (flat when the "
    "predictive is calibrated; the grey band is ±2 standard errors around uniform).",
    "forecast": "Fair value (median and 90% band) along each scenario's factor paths and held "
    "factors, with the probability of the last regime per scenario (regimes forecast).",
    "rank": "Rank plots per chain (ArviZ): with well-mixed chains each chain's curve of fractional "
    "ranks stays flat; the p-value tests that, and dots mark ranks outside the simultaneous band.",
    "trace": "Trace plots per chain (ArviZ): chains should overlap as stationary noise without "
    "trends or stuck stretches.",
    "forest": "Forest plot per chain (ArviZ): posterior median with 50% and 90% equal-tailed "
    "intervals; the chains' intervals should agree.",
}
FIRST = ("fair_value", "regime_ribbon", "transition_matrix", "durations")


def verdict_section(manifest: dict[str, Any]) -> str:
    """The convergence verdict from the manifest, as a coloured banner with plain reasons."""
    verdict = manifest.get("verdict") or {}
    if "converged" not in verdict:
        return verdict_banner(
            False, ["the manifest has no convergence verdict; run regimes diagnose"]
        )
    detail = (
        f"max R-hat {verdict.get('max_rhat', 'n/a')}, min bulk ESS "
        f"{verdict.get('min_ess_bulk', 'n/a')}, {verdict.get('divergences', 'n/a')} divergences"
    )
    ppc = verdict.get("ppc")
    if ppc is not None:
        detail += "; posterior predictive check: " + (
            "calibrated" if ppc.get("ok") else "FLAGGED — " + "; ".join(ppc.get("reasons") or [])
        )
    said = (verdict.get("reasons") or []) + [f"advice: {a}" for a in verdict.get("advice") or []]
    return verdict_banner(bool(verdict["converged"]), said, detail)


def _config(run: Run) -> dict[str, Any]:
    try:
        return tomllib.loads(run.config_text)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def run_section(run: Run, derived: xr.Dataset | None) -> str:
    """What was run: experiment, model, family, sampler, and the config exactly as run."""
    m, cfg = run.manifest, _config(run)
    attrs = derived.attrs if derived is not None else {}
    resolved = cfg.get("resolved_model") or {}
    sampler = m.get("sampler") or cfg.get("sampler") or {}
    rows = [
        ("experiment", str(m.get("experiment") or cfg.get("name", "n/a"))),
        ("description", str(cfg.get("description", ""))),
        ("model", str(attrs.get("model") or resolved.get("name") or cfg.get("model", "n/a"))),
        ("family", str(attrs.get("family") or resolved.get("family", "n/a"))),
        ("run id", str(m.get("run_id", run.path.name))),
        ("created", str(m.get("created_at", "n/a"))),
        ("seed", str(m.get("seed", "n/a"))),
        (
            "sampler",
            f"{sampler.get('chains', '?')} chains x {sampler.get('draws', '?')} draws after "
            f"{sampler.get('tune', '?')} tuning steps"
            + (f" ({sampler['backend_used']})" if sampler.get("backend_used") else "")
            + (" [quick]" if m.get("quick") else ""),
        ),
    ]
    text = run.config_text if (run.path / "config.toml").is_file() else "(no config.toml)"
    return section("What was run", kv_table([r for r in rows if r[1]]), pre(text), id_="what")


def _series_used(target: str, factors: list[str]) -> list[tuple[str, str, str, str]]:
    """(variable, series id, description, publisher) for each catalog series behind the data (a
    variable behind no catalog series: itself, "not in catalog")."""
    rows = []
    for var in [target, *factors]:
        for sid in catalog_series(var) or [var]:
            s = CATALOG.get(sid)
            rows.append(
                (var, sid, s.description if s else "", s.publisher if s else "not in catalog")
            )
    return rows


def provenance_section(run: Run, derived: xr.Dataset | None) -> str:
    """Where the data came from: directory, content hash, fit window and the series used."""
    m, cfg = run.manifest, _config(run)
    data = cfg.get("data") or {}
    attrs = derived.attrs if derived is not None else {}
    window = m.get("data_window") or {}
    target = str(data.get("target") or attrs.get("target") or "")
    stored = attrs.get("factors", "")  # a list since regimes.cf; comma-joined in older runs
    stored = (
        stored.split(",") if isinstance(stored, str) else [str(f) for f in np.atleast_1d(stored)]
    )
    factors = [f for f in data.get("factors") or stored if f]
    rows = [
        ("data directory", str(m.get("data_dir", "n/a"))),
        ("data hash (sha256)", str(m.get("data_hash") or attrs.get("data_hash") or "n/a")),
        (
            "fit window",
            f"{window.get('fit_start') or attrs.get('sample_start', '?')} to "
            f"{window.get('fit_end') or attrs.get('sample_end', '?')}",
        ),
        ("last month with data", str(window.get("last", "n/a"))),
        ("target", target or "n/a"),
        ("factors", ", ".join(factors) or "none"),
    ]
    parts = [kv_table(rows)]
    sources = m.get("data_sources")
    if sources:  # what each variable was actually read from (runs since 2026-12)
        parts.append(table(["variable", "read from", "description", "credit"], _read_from(sources)))
    elif target:  # older runs: the catalog series behind the variables' names
        used = _series_used(target, factors)
        parts.append(table(["variable", "series", "description", "publisher"], used))
    return section("Data provenance", *parts, id_="provenance")


def _read_from(sources: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    """(variable, where it was read from, description, credit) per source of the manifest."""
    rows = []
    for s in sources:
        if s.get("source") == "file":
            where, what = f"{s.get('file', '')} (sha256 {s.get('sha256', '')})", "your file"
        elif s.get("source") == "DataFrame":
            where, what = (
                f"column {s.get('column', '')} (sha256 {s.get('sha256', '')})",
                "your DataFrame",
            )
        else:
            where, what = f"catalog series {s.get('series', '')}", s.get("description", "")
        rows.append((s.get("variable", ""), where, what, credit(s)))
    return rows


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if np.isfinite(x) else "n/a"


def diagnostics_section(tree: xr.DataTree | None, max_rows: int = 30) -> str:
    """The full convergence gate (`regimes.diagnostics.diagnose`) as sampler-check and
    per-element tables, worst elements first."""
    if tree is None or "posterior" not in tree.children:
        return section(
            "Diagnostics", para("no posterior.nc in this run; nothing to diagnose.", "note")
        )

    d = diagnose(tree)
    th = d.thresholds
    gate = (
        f"{'PASSED' if d.passed else 'FAILED'}: {d.chains} chains x {d.draws} draws; limits: "
        f"R-hat <= {th.rhat_max}, bulk/tail ESS >= {th.ess_min_per_chain:g} per chain, "
        f"E-BFMI >= {th.bfmi_min}, divergences <= {th.divergences_max}."
    )
    agree = d.chain_agreement
    checks = [
        ("divergences", str(d.divergences)),
        (
            "tree depth",
            f"{d.treedepth_share:.1%} of draws at max depth {d.max_treedepth}"
            if d.treedepth_share is not None
            else "n/a",
        ),
        ("E-BFMI per chain", ", ".join(f"{b:.2f}" for b in d.bfmi) or "n/a"),
        (
            "chain agreement",
            ("ok" if agree["agree"] else f"chains {agree['off_chains']} off")
            + (f" (mean lp {agree['chain_mean_lp']})" if agree.get("chain_mean_lp") else ""),
        ),
    ]
    shown = d.variables[:max_rows]
    rows = [
        (
            v.name,
            _fmt(v.r_hat, ".4f"),
            _fmt(v.ess_bulk, ".0f"),
            _fmt(v.ess_tail, ".0f"),
            _fmt(v.mcse_mean, ".3g"),
            "ok" if v.ok else "FAIL " + ", ".join(v.problems),
        )
        for v in shown
    ]
    parts = [
        para(gate),
        *[para("note: " + n, "note") for n in d.notes],
        table(["sampler check", "value"], checks),
        table(
            ["element", "R-hat", "bulk ESS", "tail ESS", "MCSE of mean", "status"],
            rows,
            numeric=(1, 2, 3, 4),
            row_classes=["" if v.ok else "fail" for v in shown],
        ),
    ]
    if len(d.variables) > len(shown):
        parts.append(
            para(f"{len(d.variables) - len(shown)} more elements, all no worse than above.", "note")
        )
    return section("Diagnostics", *parts, id_="diagnostics")


def figure_order(folder: Path) -> list[Path]:
    """PNG figures under `folder` in page order: the framework's own first, then any others
    (sorted), then the ArviZ convergence plots."""
    pngs = {p.stem: p for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}
    first = [pngs[s] for s in FIRST if s in pngs]
    arviz = [pngs[s] for s in ARVIZ_STEMS if s in pngs]
    rest = [p for s, p in pngs.items() if s not in FIRST and s not in ARVIZ_STEMS]
    return first + rest + arviz


def caption(stem: str) -> str:
    """The caption of a figure by its file stem (generic for stems the report does not know)."""
    return CAPTIONS.get(stem, f"Figure '{stem.replace('_', ' ')}' written with this run.")


def figures_section(folder: Path) -> str:
    """Every PNG under the run's figures/ folder, embedded, with captions."""
    pngs = figure_order(folder)
    if not pngs:
        return section("Figures", para("this run has no figures.", "note"), id_="figures")
    return section("Figures", *[figure(p, caption(p.stem)) for p in pngs], id_="figures")


def headline_section(derived: xr.Dataset | None) -> str:
    """The latest price, fair value, deviation and regime probabilities with 90% bands."""
    rows = headline_rows(derived) if derived is not None else []
    if not rows:
        return section("Headline numbers", para("derived.nc has no headline variables.", "note"))
    return section(
        "Headline numbers",
        table(["quantity", "as of", "value: posterior median (90% band)"], rows),
        id_="headline",
    )
