"""The study's headline answer: the posterior probability that the target is in one regime month
by month, since when the current spell of it holds — a posterior, read from one sampled regime
path per draw (`spell_start_prob` and `spell_start` in derived.nc) — and a verdict on the
research's claimed shift, from one run's `derived.nc` and, where the study names one, the power
record of the design (`[answer] power`); worded with the study's own `subject` and `no_anchor`.

The verdict:

- `no_anchor` (default *no anchor found*) — the price does not revert to that regime's fair
  value while the regime holds (`anchor_identified_by_regime` = 0: no identified anchor,
  whatever its label);
- *differs* — at the latest month the 90% band of the probability lies below 0.5, or less than
  5% of the current spell's start mass lies within `tol` months of the claimed month;
- *inconclusive* — the band straddles 0.5, the run did not converge, or between 5% and 50% of
  the start mass lies within `tol` months of the claim;
- *agrees* — the band lies above 0.5 and at least half the start mass lies within `tol` months
  of the claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.anchoring import fit_months
from regimes.study.config import AnswerSettings
from regimes.study.power import power_of

LO, HI = 0.05, 0.95
AGREE, DIFFER = 0.5, 0.05  # the start mass within tol months of the claim that agrees / differs


def _month(ts: pd.Timestamp) -> str:
    return "" if pd.isna(ts) else f"{ts:%Y-%m}"


def _path(
    derived: xr.Dataset, regime: str
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray]:
    """In-sample months and the regime's smoothed probability: mean, 5% and 95% quantiles."""
    inside = fit_months(derived)
    time = pd.DatetimeIndex(derived["time"].values)[inside]
    p = derived["regime_prob"].sel(regime=regime).values[inside]
    q = derived["regime_prob_q"].sel(regime=regime)
    lo = q.sel(quantile=LO, method="nearest").values[inside]
    hi = q.sel(quantile=HI, method="nearest").values[inside]
    return time, p, lo, hi


def anchor_answer(derived: xr.Dataset, settings: AnswerSettings) -> dict[str, Any]:
    """The headline answer from the answer run's derived quantities (JSON-ready)."""
    from regimes.figures import reference_asset, reference_view

    regime, claim = settings.regime, pd.Timestamp(settings.claim)
    asset = reference_asset(derived)  # a panel answers for it, on the shared chain
    derived = reference_view(derived)
    subject = settings.subject or asset or str(derived.attrs.get("target", "")) or "the target"
    out: dict[str, Any] = {
        "asset": asset,
        "subject": subject,
        "experiment": settings.experiment,
        "regime": regime,
        "claim": settings.claim,
        "tol": settings.tol,
    }
    regimes = [str(r) for r in derived["regime"].values] if "regime" in derived.dims else []
    if regime not in regimes:
        known = ", ".join(regimes) or "none"
        return {
            **out,
            "verdict": "cannot be computed",
            "text": f"{settings.experiment} has no regime {regime!r} (its regimes: {known})",
        }
    time, p, lo, hi = _path(derived, regime)
    last = int(np.flatnonzero(np.isfinite(p))[-1])
    out["latest"] = {
        "month": _month(time[last]),
        "p": float(p[last]),
        "lo": float(lo[last]),
        "hi": float(hi[last]),
    }
    out["since"] = _since(derived, regime, pd.Timestamp(settings.claim), settings.tol)
    flags = derived.get("anchor_identified_by_regime")
    out["identified"] = int(flags.sel(regime=regime)) if flags is not None else -1
    out["converged"] = int(derived.attrs.get("converged", 0))
    out["size"] = shift_size(derived, regime)
    out["verdict"], out["text"] = _verdict(out, claim, settings, flags)
    return out


def shift_size(derived: xr.Dataset, regime: str) -> str:
    """What a shift into `regime` changes, from the run's coefficients (posterior medians, each
    other regime → `regime`): the size a power Monte Carlo at this posterior plants."""
    if "coef" not in derived or "regime" not in derived["coef"].dims:
        return ""
    coef = derived["coef"].sel(quantile=0.5, method="nearest")
    units = str(coef.attrs.get("units", ""))
    parts = []
    for term in coef["term"].values:
        row = coef.sel(term=term)
        if not np.isfinite(row.values).all():
            continue
        others = [r for r in row["regime"].values if str(r) != regime]
        moves = ", ".join(f"{float(row.sel(regime=o)):+.3g}" for o in others)
        parts.append(f"{term} {moves} → {float(row.sel(regime=regime)):+.3g}")
    return f"{'; '.join(parts)} ({units})" if parts else ""


def _since(derived: xr.Dataset, regime: str, claim: pd.Timestamp, tol: int) -> dict[str, Any]:
    """The current spell's start from the sampled paths: its median and 90% interval given the
    regime, the probability that the latest month is in the regime, and the share of the start's
    mass within `tol` months of the claim. Empty for a run written before dates from draws."""
    if "spell_start_prob" not in derived:
        return {}
    prob = derived["spell_start_prob"].sel(regime=regime)
    now = float(prob.sum())
    time = pd.DatetimeIndex(derived["time"].values)
    near = (time >= claim - pd.DateOffset(months=tol)) & (time <= claim + pd.DateOffset(months=tol))
    q = derived["spell_start"].sel(regime=regime)
    return {
        "median": _month(pd.Timestamp(q.sel(quantile=0.5, method="nearest").values)),
        "lo": _month(pd.Timestamp(q.sel(quantile=LO, method="nearest").values)),
        "hi": _month(pd.Timestamp(q.sel(quantile=HI, method="nearest").values)),
        "prob_now": now,
        "near_claim": float(prob.values[near].sum() / now) if now > 0 else 0.0,
        "first_month": _month(time[fit_months(derived)][0]),
    }


def _verdict(
    ans: dict[str, Any], claim: pd.Timestamp, settings: AnswerSettings, flags: xr.DataArray | None
) -> tuple[str, str]:
    """The verdict and its sentence (see the module docstring)."""
    regime, latest, tol = ans["regime"], ans["latest"], settings.tol
    subject = ans["subject"]
    subject_ = subject[:1].upper() + subject[1:]  # at the start of a sentence
    now = (
        f"P({regime}) at {latest['month']}: {latest['p']:.2f} "
        f"(90% band {latest['lo']:.2f}–{latest['hi']:.2f})"
    )
    if ans["identified"] == 0:
        own = f"{ans['asset']} {regime}:" if ans["asset"] else f"{regime}:"  # a panel: its asset
        notes = [n for n in flags.attrs.get("notes", "").split("; ") if n.startswith(own)]
        why = notes[0] if notes else f"{regime}: no identified anchor"
        return (
            settings.no_anchor,
            f"The price does not return to the {regime} regime's fair value while it holds "
            f"({why}), so that regime is no anchor, whatever its label; {now}.",
        )
    if latest["hi"] < 0.5:
        return "differs", f"{subject_} is not in the {regime} regime now: {now}."
    since = ans["since"]
    if latest["lo"] < 0.5:
        text = f"The data do not tell whether {subject} is in the {regime} regime: {now}."
        if since and since.get("median"):  # given that it is: since when (the draws that say so)
            text += (
                f" If it is, its current spell began {since['median']} (posterior median; 90% "
                f"interval {since['lo']} to {since['hi']}), and {since['near_claim']:.0%} of that "
                f"start's mass lies within ± {tol} months of the research's {claim:%Y-%m}."
            )
        return "inconclusive", text
    if not since:
        return "cannot be computed", "the run predates dates from draws: run it again"
    start = since["median"]
    if start == since["first_month"]:
        start = f"at least {start} (the start of the window)"
    text = (
        f"{subject_} has been in the {regime} regime since {start} (posterior median of the "
        f"current spell's start; 90% interval {since['lo']} to {since['hi']}); {now}. The "
        f"research dates the shift to {claim:%Y-%m}: {since['near_claim']:.0%} of the start's "
        f"posterior mass lies within ± {tol} months of it"
    )
    if not ans["converged"]:
        return "inconclusive", text + "; but the run did not converge, so no verdict."
    if since["near_claim"] >= AGREE:
        return "agrees", text + "."
    if since["near_claim"] < DIFFER:
        return "differs", text + "."
    return "inconclusive", text + "."


def answer_figure(derived: xr.Dataset, ans: dict[str, Any], folder: Path) -> list[Path]:
    """P(regime) month by month with its 90% band, the claimed month, and the current spell's
    start: its posterior median and 90% interval (PNG + SVG)."""
    from regimes.figures import memo_style, save_figure

    regime = ans["regime"]
    time, p, lo, hi = _path(derived, regime)
    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(10, 3.4))
        ax.fill_between(time, lo, hi, color="C0", alpha=0.25, lw=0, label="90% band")
        ax.plot(time, p, color="C0", lw=1.2, label=f"P({regime})")
        ax.axhline(0.5, color="0.5", lw=0.6, ls=":")
        ax.axvline(pd.Timestamp(ans["claim"]), color="C3", lw=1, ls="--", label="research's shift")
        since = ans.get("since") or {}
        if since.get("median") and since.get("prob_now", 0) >= 0.5:
            ax.axvspan(pd.Timestamp(since["lo"]), pd.Timestamp(since["hi"]), color="C2",
                       alpha=0.12, lw=0, label="current spell began (90%)")  # fmt: skip
            ax.axvline(pd.Timestamp(since["median"]), color="C2", lw=1, label="… its median")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"{ans['experiment']}: posterior probability of {regime}, month by month")
        ax.legend(loc="upper left", fontsize=8, ncol=4, frameon=False)
        return save_figure(fig, folder, "study_answer")


def study_answer(
    settings: AnswerSettings | None,
    runs: dict[str, Path | None],
    figures: Path,
    study_dir: Path = Path("."),
) -> dict[str, Any]:
    """The answer of a study (`{}` without an `[answer]` section) from its answer run, its
    figure drawn into `figures`, the design's power from the record `settings.power` names
    (relative to the study's folder `study_dir`), and under "also" the same answer from each
    run of `settings.also`. `runs` maps an experiment to its run directory (None: failed)."""
    from regimes.results import load_derived

    if settings is None:
        return {}

    def one(name: str) -> tuple[dict[str, Any], xr.Dataset | None]:
        run_dir = runs.get(name)
        if run_dir is None:
            failed = {"experiment": name, "regime": settings.regime, "claim": settings.claim,
                      "subject": settings.subject or name}  # fmt: skip
            text = f"the run {name} failed, so there is no answer"
            return {**failed, "verdict": "cannot be computed", "text": text}, None
        derived = load_derived(run_dir)
        return anchor_answer(derived, settings.model_copy(update={"experiment": name})), derived

    ans, derived = one(settings.experiment)
    if derived is not None and "latest" in ans:
        answer_figure(derived, ans, figures)
        ans["figure"] = f"{figures.name}/study_answer.png"
    if settings.power:  # what the design could have detected: the power Monte Carlo's record
        ans["power"] = power_of(study_dir / settings.power, settings.experiment)
        ans["text"] += " " + ans["power"]["text"]
        if ans.get("size"):
            ans["text"] += f" The planted shift moves the coefficients: {ans['size']}."
    ans["also"] = [one(name)[0] for name in settings.also]
    return ans
