"""Advice that helps when a run fails the convergence gate, added to its verdict (`with_advice`).

Two cases have a better remedy than the gate's generic one:
- divergences while the parameter that orders the regimes (`order_by`) leaves two neighbouring
  regimes overlapping: the ordering constraint cuts through the posterior, and raising
  `target_accept` (the generic advice) makes the sampler slower without curing it. The advice
  names the ordered parameter, the overlapping regimes, and the regime parameter that separates
  the regimes best (any posterior variable with one value per regime);
- R-hat or ESS alone (no divergences, no low E-BFMI, chains in one mode): more draws cure it, and
  how many follows from the ESS per draw measured and R-hat's fall with the draws.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from regimes.diagnostics import DIVERGENCE_HINT

REGIME = "regime"
SAMPLE_DIMS = ("chain", "draw")


def regime_draws(post: xr.Dataset) -> dict[str, np.ndarray]:
    """Posterior variables with exactly one value per regime, as (draws, regimes) arrays."""
    out = {}
    for name, da in post.data_vars.items():
        if set(da.dims) == {*SAMPLE_DIMS, REGIME} and da.sizes[REGIME] > 1:
            values = da.transpose(*SAMPLE_DIMS, REGIME).values
            out[str(name)] = values.reshape(-1, values.shape[-1]).astype(float)
    return out


def ordered_variable(draws: dict[str, np.ndarray], order_by: str) -> str | None:
    """The posterior variable the ordering acts on: `order_by` itself or a variable named
    `<prefix>_<order_by>` (a switching term's coefficient) whose draws increase across the
    regimes in every draw (None when no ordering is in effect, e.g. regimes ordered by time)."""
    for name, values in draws.items():
        named = name == order_by or name.endswith(f"_{order_by}")
        if named and bool(np.all(np.diff(values, axis=1) > 0)):
            return name
    return None


def separation(draws: np.ndarray) -> float:
    """How well a parameter tells the regimes apart: the smallest distance between two regimes'
    posterior medians in units of their pooled posterior sd (larger separates better)."""
    med, sd = np.median(draws, axis=0), draws.std(axis=0)
    k = draws.shape[1]
    gaps = [
        abs(med[i] - med[j]) / max(math.sqrt((sd[i] ** 2 + sd[j] ** 2) / 2), 1e-12)
        for i in range(k)
        for j in range(i + 1, k)
    ]
    return float(min(gaps))


def overlapping(
    draws: np.ndarray,
) -> list[tuple[int, int, tuple[float, float], tuple[float, float]]]:
    """Neighbouring regimes (in the ordered order) whose 90% intervals overlap."""
    lo, hi = np.quantile(draws, 0.05, axis=0), np.quantile(draws, 0.95, axis=0)
    return [
        (r, r + 1, (float(lo[r]), float(hi[r])), (float(lo[r + 1]), float(hi[r + 1])))
        for r in range(draws.shape[1] - 1)
        if hi[r] >= lo[r + 1]
    ]


def identification_advice(post: xr.Dataset, order_by: str) -> str | None:
    """The advice when the regimes ordered by `order_by` overlap (None when they do not)."""
    draws = regime_draws(post)
    ordered = ordered_variable(draws, order_by)
    if ordered is None:
        return None
    overlaps = overlapping(draws[ordered])
    if not overlaps:
        return None
    labels = [str(r) for r in post[REGIME].values]
    pairs = "; ".join(
        f"{labels[a]} [{lo_a:.3g}, {hi_a:.3g}] and {labels[b]} [{lo_b:.3g}, {hi_b:.3g}]"
        for a, b, (lo_a, hi_a), (lo_b, hi_b) in overlaps
    )
    named = order_by if ordered == order_by else f"{order_by} ({ordered})"
    text = (
        f"the regimes are ordered by {named}, but neighbouring regimes overlap in "
        f"it (90% intervals {pairs}): the ordering cuts through the posterior, which causes the "
        "divergences, and raising target_accept will not help"
    )
    scores = {name: separation(d) for name, d in draws.items()}
    best = max(scores, key=lambda n: scores[n])
    if best != ordered and scores[best] > scores[ordered]:
        text += (
            f"; order the regimes by the parameter that separates them best, {best} (regime "
            f"medians {scores[best]:.1f} posterior sd apart at the closest, against "
            f"{scores[ordered]:.1f} for {ordered}): set options.order_by to it, or to "
            '"auto" (the run picks the best-separating parameter at the optimum)'
        )
    else:
        text += "; no other regime parameter separates them better: try fewer regimes"
    return text


def draws_advice(verdict: dict[str, Any], chains: int, draws: int) -> str | None:
    """How many draws per chain the R-hat and ESS limits need, from the ESS per draw measured
    (ESS grows in proportion to the draws) and R-hat's fall with them (R-hat² − 1 shrinks as
    1/draws once the chains sample one posterior); None when something else failed."""
    th = verdict.get("thresholds") or {}
    bfmi_ok = all(b >= th.get("bfmi_min", 0.0) for b in verdict.get("bfmi") or [])
    if (
        verdict.get("converged", True)
        or verdict.get("divergences", 0) > th.get("divergences_max", 0)
        or not bfmi_ok
        or not verdict.get("chains_agree", True)
    ):
        return None
    need = th.get("ess_bulk_min_per_chain", 100) * chains
    ess = min(verdict.get("min_ess_bulk", np.nan), verdict.get("min_ess_tail", np.nan))
    rhat, rhat_max = verdict.get("max_rhat", np.nan), th.get("rhat_max", 1.01)
    wanted = [draws]
    parts = []
    if np.isfinite(ess) and ess > 0:
        per_draw = ess / (chains * draws)
        wanted.append(math.ceil(need / (per_draw * chains)))
        parts.append(f"the worst element has {per_draw:.2f} effective draws per draw")
    if np.isfinite(rhat) and rhat > rhat_max:
        wanted.append(math.ceil(draws * (rhat**2 - 1) / (rhat_max**2 - 1)))
        parts.append(f"R-hat {rhat:.3f}")
    target = int(math.ceil(max(wanted) * 1.2 / 100) * 100)  # a margin, in hundreds
    if target <= draws or not parts:
        return None
    return (
        f"only R-hat or ESS failed ({', '.join(parts)} over {chains} chains x {draws} draws): "
        f"about {max(wanted)} draws per chain would reach ESS {need:g} and R-hat {rhat_max}; "
        f"set [sampler] draws = {target}"
    )


def with_advice(verdict: dict[str, Any], tree: xr.DataTree, order_by: str | None) -> dict:
    """The verdict with `advice` (a list of sentences) where one of the two cases applies; when
    the ordering is the cause of divergences, the divergence reason no longer says to raise
    target_accept."""
    if verdict.get("converged", True) or "posterior" not in tree.children:
        return verdict
    post = tree["posterior"].to_dataset()
    advice = []
    identification = None
    if order_by and verdict.get("divergences", 0) > 0 and REGIME in post.dims:
        identification = identification_advice(post, order_by)
    if identification:
        advice.append(identification)
    more = draws_advice(verdict, int(post.sizes["chain"]), int(post.sizes["draw"]))
    if more:
        advice.append(more)
    if not advice:
        return verdict
    reasons = [
        r.replace(DIVERGENCE_HINT, "reparametrise (see the advice)") if identification else r
        for r in verdict.get("reasons") or []
    ]
    return {**verdict, "reasons": reasons, "advice": advice}
