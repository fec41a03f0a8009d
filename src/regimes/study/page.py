"""The study report: the brief's figures beside ours, the model comparison, the anchor's dates,
fair value now and along the scenarios, and the figures a memo can take as they are."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.errors import RegimesError
from regimes.figures import quantile_band
from regimes.study import descriptive
from regimes.study.quantities import Estimate, extract, judge

if TYPE_CHECKING:
    from regimes.study.config import Study
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
    from regimes.figures import reference_view
    from regimes.results import load_derived
    from regimes.study.result import run_path

    path = run_path(res, study_dir, experiment)
    if path is None:
        return None
    derived = load_derived(path)
    return reference_view(derived) if reference else derived


def brief_rows(
    study: Study, res: StudyResult, study_dir: Path, data_dir: Path
) -> list[dict[str, str]]:
    """Each figure the brief reports, our estimate with its 90% interval, and the verdict."""
    series: descriptive.Series | None = None
    rows = []
    for row in study.brief:
        est: Estimate | None = None
        caveat = ""
        try:
            if row.compare.kind == "none" and not row.quantity and row.source != "lfo":
                pass
            elif row.source == "descriptive":
                series = series or descriptive.load(data_dir)
                est = descriptive.extract(series, row.quantity)
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


def study_figures(
    study: Study, res: StudyResult, study_dir: Path, data_dir: Path
) -> list[tuple[str, str]]:
    """Draw the study's own figures and copy the runs' key figures into `figures/`."""
    import shutil

    from regimes.figures import save_figure

    out: list[tuple[str, str]] = []
    folder = study_dir / "figures"
    derived = {e: _derived(res, study_dir, e) for e in res.runs}
    derived = {e: d for e, d in derived.items() if d is not None}

    def add(fig: Any, stem: str, caption: str) -> None:
        save_figure(fig, folder, f"study_{stem}")
        out.append((f"figures/study_{stem}.png", caption))

    markov = {e: d for e, d in derived.items() if "regime_prob" in d and d.sizes["regime"] > 1}
    if markov:
        add(
            _regime_panels(markov),
            "regime_probabilities",
            "Gold (log scale) and the posterior "
            "probability of each regime over time, one panel per regime model (posterior means; "
            "shaded: the fit window's months).",
        )
        add(
            _fair_value_by_regime(markov),
            "fair_value_by_regime",
            "Gold (orange) against each "
            "regime's fair value (its anchor if that regime held; medians) and the regime-weighted "
            "mixture (blue, 90% band), log scale, one panel per regime model.",
        )
    devs = {e: d for e, d in derived.items() if d.attrs.get("target") == "gold"}
    if devs:
        add(
            _deviation_panels(devs),
            "deviation_overview",
            "Deviation of gold from each model's "
            "fair value, % (median and 90% band); above zero: gold is dearer than the model says.",
        )
    try:
        s = descriptive.load(data_dir)
    except RegimesError:
        s = None
    if s is not None:
        add(
            _real_gold(s),
            "real_gold_price",
            "Real gold price index (gold / CPI, 1930 = 100, "
            "Jastram's method), 1871 to the latest month, with the federal debt ratio from 1970.",
        )
        add(
            _ddri(s),
            "ddri_gold",
            "Debt divergence risk index (DDRI = d(r − g) − pb, % of GDP per "
            "year) against gold (log scale).",
        )
    for exp, stem, caption in (
        (
            "gold_copper",
            "fair_value",
            "10y Treasury yield vs the yield implied by gold and copper "
            "prices (fitted 2000–2021, 90% band).",
        ),
        (
            "equity_in_gold",
            "fair_value",
            "S&P 500 measured in gold ounces vs its fit on JOLTS job openings (90% band).",
        ),
        (
            "random_walk",
            "coef_paths",
            "Random-walk coefficients (median, 90% band) against the "
            "40-month rolling OLS baseline.",
        ),
        ("changepoint", "break_dates", "Posterior of the change-point date."),
        (
            "ms2_ecm",
            "regime_ribbon",
            "Two-regime error-correction model: regime probabilities under the gold price.",
        ),
    ):
        rec = res.runs.get(exp)
        src = study_dir / rec.run_dir / "figures" / f"{stem}.png" if rec and rec.run_dir else None
        if src is not None and src.is_file():
            dest = folder / f"study_{exp}_{stem}.png"
            shutil.copyfile(src, dest)
            out.append((f"figures/{dest.name}", caption))
    return out


def _shade_fit(ax: Any, d: xr.Dataset) -> None:
    t = pd.DatetimeIndex(d["time"].values)
    fit = np.asarray(d["in_sample"].values, dtype=bool)
    if fit.any() and not fit.all():
        ax.axvspan(t[fit][0], t[fit][-1], color="0.5", alpha=0.07, lw=0)


def _panels(
    runs: dict[str, xr.Dataset],
    draw: Any,
    *,
    height: float,
    xlabel: str = "month",
    top: Any = None,
) -> Any:
    """One panel per run, stacked on a shared time axis and titled by experiment; `draw(ax, d)`
    fills a panel, `top(ax)` an optional first panel above them."""
    from regimes.figures import memo_style

    with memo_style() as plt:
        n = len(runs) + (top is not None)
        fig, axes = plt.subplots(n, 1, figsize=(9, height * n + 0.8), sharex=True, squeeze=False)
        axes = axes[:, 0]
        if top is not None:
            top(axes[0])
        for ax, (exp, d) in zip(axes[n - len(runs) :], runs.items(), strict=True):
            draw(ax, d)
            ax.set_title(exp, loc="left", fontsize=9)
        axes[-1].set_xlabel(xlabel)
        fig.tight_layout()
    return fig


def _regime_panels(markov: dict[str, xr.Dataset]) -> Any:
    first = next(iter(markov.values()))

    def price(ax: Any) -> None:
        ax.plot(pd.DatetimeIndex(first["time"].values), first["price"], color="C1", lw=1.2)
        ax.set_yscale("log")
        ax.set_ylabel("gold, USD/oz")

    def probs(ax: Any, d: xr.Dataset) -> None:
        t = pd.DatetimeIndex(d["time"].values)
        p = d["regime_prob"].transpose("regime", "time").values
        ax.stackplot(t, p, labels=[str(r) for r in d["regime"].values], alpha=0.8, lw=0)
        ax.set_ylim(0, 1)
        ax.set_ylabel("prob.")
        ax.legend(loc="upper left", fontsize=7, ncol=3, frameon=False)

    return _panels(markov, probs, height=1.6, top=price)


def _fair_value_by_regime(markov: dict[str, xr.Dataset]) -> Any:
    def draw(ax: Any, d: xr.Dataset) -> None:
        t = pd.DatetimeIndex(d["time"].values)
        fv = d["fair_value"]
        quantile_band(ax, t, fv, color="C0", alpha=0.15)
        ax.plot(t, fv.sel(quantile=0.5), color="C0", lw=1, label="mixture")
        for j, r in enumerate(d["regime"].values):
            fr = d["fair_value_by_regime"].sel(regime=r, quantile=0.5)
            label = str(r)
            by_regime = d.get("anchor_identified_by_regime")  # the price does not revert to it
            if by_regime is not None and int(by_regime.sel(regime=r)) == 0:
                label += " (no identified anchor)"
            ax.plot(t, fr, lw=0.9, ls="--", color=f"C{j + 2}", label=label)
        ax.plot(t, d["price"], color="C1", lw=1.2, label="gold")
        ax.set_yscale("log")
        ax.set_ylabel("USD/oz")
        ax.legend(loc="upper left", fontsize=7, ncol=4, frameon=False)

    return _panels(markov, draw, height=2.2)


def _deviation_panels(devs: dict[str, xr.Dataset]) -> Any:
    def draw(ax: Any, d: xr.Dataset) -> None:
        t = pd.DatetimeIndex(d["time"].values)
        dev = d["deviation_pct"]
        quantile_band(ax, t, dev, color="C0", alpha=0.2)
        ax.plot(t, dev.sel(quantile=0.5), color="C0", lw=1)
        ax.axhline(0, color="0.3", lw=0.6)
        _shade_fit(ax, d)
        ax.set_ylabel("%")
        ax.set_yscale("symlog", linthresh=100)

    return _panels(devs, draw, height=1.5, xlabel="month (shaded: fit window)")


def _twin_legend(ax: Any, ax2: Any) -> None:
    """One legend for a plot with a second y axis, holding both axes' lines."""
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, frameon=False)


def _real_gold(s: descriptive.Series) -> Any:
    from regimes.figures import memo_style

    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(
            s.real_gold.index,
            s.real_gold.values,
            color="C1",
            lw=1.2,
            label="real gold price (1930 = 100)",
        )
        ax.set_yscale("log")
        ax.axhline(100, color="0.5", lw=0.6)
        ax.axvline(
            pd.Timestamp("1971-08-01"),
            color="0.4",
            ls="--",
            lw=0.8,
            label="end of Bretton Woods (1971-08)",
        )
        ax.set_ylabel("index, log scale")
        ax2 = ax.twinx()
        ax2.plot(
            s.debt_gdp.index,
            s.debt_gdp.values,
            color="C0",
            lw=1,
            label="federal debt held by the public, % of GDP",
        )
        ax2.set_ylabel("% of GDP")
        _twin_legend(ax, ax2)
        ax.set_xlabel("month")
        fig.tight_layout()
    return fig


def _ddri(s: descriptive.Series) -> Any:
    from regimes.figures import memo_style

    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(s.ddri.index, s.ddri.values, color="C2", lw=1.2, label="DDRI, % of GDP per year")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_ylabel("DDRI")
        ax2 = ax.twinx()
        g = s.gold[s.gold.index >= s.ddri.index[0]]
        ax2.plot(g.index, g.values, color="C1", lw=1, label="gold, USD/oz (log)")
        ax2.set_yscale("log")
        _twin_legend(ax, ax2)
        ax.set_xlabel("month")
        fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the page


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _now_rows(res: StudyResult, study_dir: Path) -> tuple[list[list[str]], list[str]]:
    """Price, fair value and deviation at the latest month, for every run whose target is gold
    and whose fair value is an identified anchor (`regimes.anchoring`); the others are listed
    with the reason they are left out."""
    rows, left_out = [], []
    for exp in res.runs:
        d = _derived(res, study_dir, exp)
        if d is None or "deviation_pct" not in d or d.attrs.get("target") != "gold":
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
        rows.append(
            [
                exp,
                f"{t:%Y-%m}",
                _num(float(d["price"].sel(time=t))),
                f"{_num(q[0])} ({_num(q[1])} to {_num(q[2])})",
                dev.text,
                "yes" if d.attrs.get("converged") else "NO",
            ]
        )
    return rows, left_out


def _answer_section(res: StudyResult, study_dir: Path) -> str:
    """The headline: the verdict on the claimed anchor shift, its sentence and the probability
    month by month (empty without an `[answer]` in study.toml)."""
    from regimes.report import html as h

    ans = res.answer
    if not ans:
        return ""
    verdict = ans["verdict"]
    parts = [
        h.para(f"Verdict on the research's shift to {ans['regime']} from {ans['claim']}: "
               f"{verdict}.", VERDICT_CLASS.get(verdict, "")),
        h.para(ans["text"]),
    ]  # fmt: skip
    if "passes" in ans:
        parts.append(
            h.table(
                ["threshold", "in the regime since", "90% interval"],
                (
                    [
                        f"P ≥ {level}",
                        row["month"] or "not now",
                        f"{row['early'] or '?'} to {row['late'] or 'not yet'}",
                    ]
                    for level, row in ans["passes"].items()
                ),
            )
        )
    if ans.get("figure") and (study_dir / ans["figure"]).is_file():
        parts.append(
            h.figure(
                study_dir / ans["figure"],
                f"{ans['experiment']}: posterior probability that gold is in the {ans['regime']} "
                "regime, month by month (mean and 90% band); dashed: the research's shift.",
            )
        )
    if ans.get("also"):
        parts.append(h.para("The same question asked of other models:"))
        parts.append(
            h.table(
                ["model", f"P({ans['regime']}) now (90% band)", "mean P ≥ 0.5 since (90%)",
                 "verdict"],
                (_answer_row(row) for row in [ans, *ans["also"]]),
            )
        )  # fmt: skip
    return h.section(f"The answer: is gold priced on {ans['regime']}?", *parts, id_="answer")


def _answer_row(ans: dict) -> list[str]:
    """One model's answer as a row: the latest probability, the current spell's start, verdict."""
    name = (
        f"{ans['experiment']} ({ans['asset']}, shared chain)"
        if ans.get("asset")
        else ans["experiment"]
    )
    if "latest" not in ans:
        return [name, "—", "—", f"{ans['verdict']}: {ans['text']}"]
    now, since = ans["latest"], ans["passes"]["0.5"]
    band = f"{since['early'] or '?'} to {since['late'] or 'not yet'}"
    return [
        name,
        f"{now['p']:.2f} ({now['lo']:.2f}–{now['hi']:.2f}) at {now['month']}",
        f"{since['month']} ({band})" if since["month"] else "not now",
        ans["verdict"],
    ]


def write_page(study: Study, res: StudyResult, study_dir: Path) -> Path:
    """Render study.html (self-contained: figures embedded) and write it atomically."""
    from regimes.report import html as h
    from regimes.report.write import atomic_write_bytes
    from regimes.study.result import STUDY_HTML

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

    figs = [h.figure(study_dir / f, cap) for f, cap in res.figures if (study_dir / f).is_file()]
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
    now_rows, now_left_out = _now_rows(res, study_dir)
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
        _answer_section(res, study_dir),
        h.section("The source research's figures beside ours", h.para(tally), brief, id_="brief"),
        h.section("Which regime model predicts best, out of sample", *lfo_parts, id_="lfo"),
        h.section(
            "Fair value now",
            h.table(
                ["run", "month", "gold, USD/oz", "fair value (90%)", "deviation %", "converged"],
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
    path = study_dir / STUDY_HTML
    atomic_write_bytes(path, h.page(study.title, sections).encode("utf-8"))
    return path
