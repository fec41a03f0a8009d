"""The study report: the brief's figures beside ours, the model comparison, the anchor's dates,
fair value now and along the scenarios, and the figures a memo can take as they are — any study,
driven by its study.toml (the panels and run figures it names, the target it is about, its
answer's wording) and the application it names (`regimes.study.application`)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import xarray as xr

from regimes.errors import RegimesError
from regimes.figures import reference_view, target_label, target_units, vocabulary
from regimes.files import copy_atomic, write_text_atomic
from regimes.report import html as h
from regimes.results import load_derived
from regimes.study.config import Study, study_application, study_panels
from regimes.study.panels import PageContext, draw_panels, run_log_scale
from regimes.study.quantities import Estimate, extract, judge
from regimes.study.result import STUDY_HTML, run_path

if TYPE_CHECKING:
    from regimes.study.result import StudyResult

VERDICT_CLASS = {
    "agrees": "agree",
    "differs": "differ",
    "inconclusive": "unsure",
    "cannot be computed": "na",
}


def _derived(
    res: StudyResult, study_dir: Path, experiment: str, reference: bool = True
) -> xr.Dataset | None:
    """A run's derived.nc (None if it failed); a panel's as its reference asset (the
    experiment's target) unless `reference` is False (the brief's quantities, which may name
    another asset)."""
    path = run_path(res, study_dir, experiment)
    if path is None:
        return None
    derived = load_derived(path)
    return reference_view(derived) if reference else derived


def page_context(study: Study, res: StudyResult, study_dir: Path, data_dir: Path) -> PageContext:
    """What the page's panels and the brief's rows draw from: the complete runs' derived
    quantities (a panel's as its reference asset) and log-scale choices, the study's
    application and its data directory."""
    runs = {e: d for e in res.runs if (d := _derived(res, study_dir, e)) is not None}
    log_scale = {e: run_log_scale(study_dir / res.runs[e].run_dir) for e in runs}
    app = study_application(study)
    return PageContext(study, runs, log_scale, data_dir, application=app, answer=res.answer)


def brief_rows(ctx: PageContext, res: StudyResult, study_dir: Path) -> list[dict[str, str]]:
    """Each figure the brief reports, our estimate with its 90% interval, and the verdict."""
    rows = []
    for row in ctx.study.brief:
        est: Estimate | None = None
        caveat = ""
        try:
            if row.compare.kind == "none" and not row.quantity and row.source != "lfo":
                pass
            elif row.source == "descriptive":
                est = ctx.quantity(row.quantity)
            elif row.source == "lfo":
                est = _lfo_estimate(res)
            else:
                derived = _derived(res, study_dir, row.source, reference=False)
                if derived is not None:
                    est = extract(derived, row.quantity)
                    if not derived.attrs.get("converged", 1):
                        caveat = "run did not pass the convergence gate"
        except (RegimesError, KeyError, ValueError, IndexError) as exc:
            verdict, reason = "cannot be computed", f"{type(exc).__name__}: {exc}"
        else:
            verdict, reason = judge(row.compare, est)
            if caveat and verdict in ("agrees", "differs"):  # no verdict from an unmixed posterior
                verdict, reason = "inconclusive", f"{caveat}; it would read: {verdict}, {reason}"
        rows.append(
            {
                "what": row.what,
                "reported": row.reported,
                "source": row.source,
                "estimate": est.text if est is not None else "—",
                "note": "; ".join(x for x in (est.note if est else "", caveat) if x),
                "verdict": verdict,
                "reason": reason,
            }
        )
    return rows


def _lfo_estimate(res: StudyResult) -> Estimate:
    if not res.lfo:
        raise RegimesError(res.lfo_note or "LFO was not computed")
    best, second = res.lfo[0], res.lfo[1]
    d, s = second["elpd_diff"], second["dse"]
    return Estimate(
        float("nan"),
        float("nan"),
        float("nan"),
        f"best: {best['experiment']} (ahead of {second['experiment']} by {d:.1f}, se {s:.1f})",
    )


# ------------------------------------------------------------------ figures


def study_figures(ctx: PageContext, res: StudyResult, study_dir: Path) -> list[tuple[str, str]]:
    """Draw the panels `[page] panels` names into `figures/` and copy the runs' figures
    `[[page.figures]]` names there (`study_<experiment>_<figure>.png`), in that order."""
    folder = study_dir / "figures"
    out = draw_panels(ctx.study.page.panels, study_panels(ctx.study), ctx, folder)
    for shown in ctx.study.page.figures:
        run_dir = run_path(res, study_dir, shown.experiment)
        src = run_dir / "figures" / f"{shown.figure}.png" if run_dir is not None else None
        if src is not None and src.is_file():
            dest = folder / f"study_{shown.experiment}_{shown.figure}.png"
            copy_atomic(src, dest)
            out.append((f"figures/{dest.name}", shown.caption))
    return out


def answer_panels(ctx: PageContext, study_dir: Path) -> list[tuple[str, str]]:
    """The panels `[answer] panels` names, drawn into `figures/` beside the answer."""
    names = ctx.study.answer.panels if ctx.study.answer else []
    return draw_panels(names, study_panels(ctx.study), ctx, study_dir / "figures")


# ------------------------------------------------------------------ the page


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _now_rows(ctx: PageContext) -> tuple[list[list[str]], list[str]]:
    """Price, fair value and distance from it at the latest month, for every run of the page's
    target (`[page] target`; every run without one) whose fair value is an identified anchor
    (`regimes.anchoring`); the others are listed with the reason they are left out."""
    rows, left_out = [], []
    for exp, d in ctx.about_target().items():
        if "deviation_pct" not in d:
            continue
        if int(d.attrs.get("anchor_identified", -1)) == 0:
            left_out.append(f"{exp}: {d.attrs.get('anchor_note', 'no identified anchor')}")
            continue
        try:
            dev = extract(d, "deviation_at:latest")
        except (RegimesError, IndexError, KeyError):
            continue
        t = pd.Timestamp(dev.note.removeprefix("at ") + "-01")
        fv = d["fair_value"].sel(time=t)
        q = [float(fv.sel(quantile=x)) for x in (0.5, 0.05, 0.95)]
        gap = dev.text
        if vocabulary(target_units(d)).rate and "deviation" in d:  # a rate: its gap in pp
            g = [float(d["deviation"].sel(time=t, quantile=x)) for x in (0.5, 0.05, 0.95)]
            gap = f"{g[0]:+.2f} pp ({g[1]:+.2f} to {g[2]:+.2f})"
        price = _num(float(d["price"].sel(time=t)))
        rows.append(
            [
                exp,
                f"{t:%Y-%m}",
                price if ctx.study.page.target else f"{price} {target_units(d)}".strip(),
                f"{_num(q[0])} ({_num(q[1])} to {_num(q[2])})",
                gap,
                "yes" if d.attrs.get("converged") else "NO",
            ]
        )
    return rows, left_out


def _observed_header(ctx: PageContext) -> str:
    """The 'fair value now' table's heading of the observed value: the page's target with its
    units, else a plain word (each row then carries its own units)."""
    runs = ctx.about_target()
    if ctx.study.page.target and runs:
        return target_label(next(iter(runs.values())))
    return "observed"


def _answer_section(study: Study, res: StudyResult, study_dir: Path) -> str:
    """The headline: the verdict on the claimed anchor shift, its sentence, the probability
    month by month and the panels `[answer] panels` names (empty without an `[answer]` in
    study.toml), headed by the study's own question."""
    ans = res.answer
    if not ans or study.answer is None:
        return ""
    subject = ans.get("subject") or ans["experiment"]
    verdict = ans["verdict"]
    parts = [
        h.para(f"Verdict on the research's shift to {ans['regime']} from {ans['claim']}: "
               f"{verdict}.", VERDICT_CLASS.get(verdict, "")),
        h.para(ans["text"]),
    ]  # fmt: skip
    since = ans.get("since") or {}
    if since:
        parts.append(
            h.table(
                ["the current spell's start (median)", "90% interval",
                 f"P(latest month in {ans['regime']})",
                 f"start mass within ± {ans['tol']} months of {ans['claim']}"],
                [[since["median"] or "—", f"{since['lo']} to {since['hi']}",
                  f"{since['prob_now']:.2f}", f"{since['near_claim']:.0%}"]],
            )
        )  # fmt: skip
    if ans.get("figure") and (study_dir / ans["figure"]).is_file():
        parts.append(
            h.figure(
                study_dir / ans["figure"],
                f"{ans['experiment']}: posterior probability that {subject} is in the "
                f"{ans['regime']} regime, month by month (mean and 90% band); dashed: the "
                "research's shift; green: the current spell's start (median and 90% interval, "
                "from one sampled regime path per draw).",
            )
        )
    parts += _shown(study_dir, ans.get("panels", []))
    if ans.get("also"):
        parts.append(h.para("The same question asked of other models:"))
        parts.append(
            h.table(
                ["model", f"P({ans['regime']}) now (90% band)", "in it since (median, 90%)",
                 "verdict"],
                (_answer_row(row) for row in [ans, *ans["also"]]),
            )
        )  # fmt: skip
    question = study.answer.question.format(subject=subject, regime=ans["regime"])
    return h.section(f"The answer: {question}", *parts, id_="answer")


def _shown(study_dir: Path, shown: list[tuple[str, str]] | list[list[str]]) -> list[str]:
    """Figures with their captions, and statements (no file) as paragraphs, as page HTML."""
    return [
        h.figure(study_dir / f, cap) if f else h.para(cap)
        for f, cap in shown
        if not f or (study_dir / f).is_file()
    ]


def _answer_row(ans: dict) -> list[str]:
    """One model's answer as a row: the latest probability, the current spell's start, verdict."""
    name = (
        f"{ans['experiment']} ({ans['asset']}, shared chain)"
        if ans.get("asset")
        else ans["experiment"]
    )
    if "latest" not in ans:
        return [name, "—", "—", f"{ans['verdict']}: {ans['text']}"]
    now, since = ans["latest"], ans.get("since") or {}
    start = "—"
    if since.get("prob_now", 0) >= 0.5:
        start = f"{since['median']} ({since['lo']} to {since['hi']})"
    elif since:
        start = f"not now (P {since['prob_now']:.2f})"
    return [
        name,
        f"{now['p']:.2f} ({now['lo']:.2f}–{now['hi']:.2f}) at {now['month']}",
        start,
        ans["verdict"],
    ]


def write_page(ctx: PageContext, res: StudyResult, study_dir: Path) -> Path:
    """Render study.html (self-contained: figures embedded) and write it atomically."""
    study = ctx.study
    runs = list(res.runs.values())
    failed = [r for r in runs if r.status != "complete"]
    unconverged = [r for r in runs if r.status == "complete" and not r.converged]
    reasons = [f"{r.experiment}: run failed — {r.error}" for r in failed]
    reasons += [
        f"{r.experiment}: did not pass the convergence gate (see its report)" for r in unconverged
    ]
    banner = h.verdict_banner(
        not reasons, reasons, f"{len(runs) - len(failed)} of {len(runs)} runs complete"
    )
    intro = h.para(study.summary) if study.summary else ""
    mode = (
        h.para("Quick mode: small draws and few refits — a smoke test, not a result.", "warn")
        if res.quick
        else ""
    )

    brief = h.table(
        ["what", "reported", "our estimate (median, 90% interval)", "verdict", "why", "from"],
        (
            [
                r["what"],
                r["reported"],
                r["estimate"] + (f" [{r['note']}]" if r["note"] else ""),
                r["verdict"],
                r["reason"],
                r["source"],
            ]
            for r in res.brief
        ),
        row_classes=[VERDICT_CLASS.get(r["verdict"], "") for r in res.brief],
    )
    counts = (
        pd.Series([r["verdict"] for r in res.brief]).value_counts().to_dict() if res.brief else {}
    )
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())

    lfo_parts = [h.para(res.lfo_note)] if res.lfo_note else []
    if res.lfo:
        lfo_parts.append(
            h.table(
                ["model", "elpd_lfo", "se", "behind best", "se of diff", "refits", "worst k"],
                (
                    [
                        r["experiment"],
                        f"{r['elpd_lfo']:.1f}",
                        f"{r['se']:.1f}",
                        f"{r['elpd_diff']:.1f}",
                        f"{r['dse']:.1f}",
                        str(r["n_refits"]),
                        f"{r['max_k']:.2f}",
                    ]
                    for r in res.lfo
                ),
                numeric=(1, 2, 3, 4, 5, 6),
            )
        )
    fc_rows = []
    for r in res.forecasts:
        if "error" in r:
            fc_rows.append([r["experiment"], "—", "—", f"failed: {r['error']}", ""])
            continue
        lo, mid, hi = r["fair_value"]
        probs = ", ".join(f"{k} {v:.2f}" for k, v in r.get("regime_prob", {}).items())
        fc_rows.append(
            [
                r["experiment"],
                r["scenario"],
                r["month"],
                f"{mid:,.0f} ({lo:,.0f} to {hi:,.0f})",
                probs,
            ]
        )
    fc = (
        h.table(["model", "scenario", "month", "fair value (90%)", "regime probabilities"], fc_rows)
        if fc_rows
        else ""
    )

    figs = _shown(study_dir, res.figures)
    run_rows = [
        [
            r.experiment,
            r.status,
            "" if r.converged is None else ("yes" if r.converged else "NO"),
            f"{r.wall_s:.0f}",
            r.run_dir or r.error,
        ]
        for r in runs
    ]
    links = "".join(
        f'<li><a href="{html.escape(r.run_dir)}/report.html">{html.escape(r.experiment)}</a></li>'
        for r in runs
        if r.run_dir and (study_dir / r.run_dir / "report.html").is_file()
    )
    now_rows, now_left_out = _now_rows(ctx)
    left_out_note = (
        h.para("Left out, because their fair value is not an anchor the price returns to:")
        + "<ul>"
        + "".join(f"<li>{html.escape(x)}</li>" for x in now_left_out)
        + "</ul>"
        if now_left_out
        else ""
    )
    sections = [
        banner,
        intro,
        mode,
        _answer_section(study, res, study_dir),
        h.section("The source research's figures beside ours", h.para(tally), brief, id_="brief"),
        h.section("Which regime model predicts best, out of sample", *lfo_parts, id_="lfo"),
        h.section(
            "Fair value now",
            h.table(
                [
                    "run",
                    "month",
                    _observed_header(ctx),
                    "fair value (90%)",
                    "deviation",
                    "converged",
                ],
                now_rows,
                numeric=(2,),
            ),
            left_out_note,
            id_="now",
        ),
        h.section("Scenarios", fc, id_="scenarios") if fc else "",
        h.section("Figures", *figs, id_="figures"),
        h.section(
            "Runs",
            h.table(
                ["experiment", "status", "converged", "wall s", "run directory"],
                run_rows,
                numeric=(3,),
            ),
            f"<ul>{links}</ul>" if links else "",
            id_="runs",
        ),
    ]
    return write_text_atomic(study_dir / STUDY_HTML, h.page(study.title, sections))
