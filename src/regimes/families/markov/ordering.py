"""`order_by = "auto"`: which parameter orders the regimes, chosen on the data once per run.

An ordering constraint names the regimes (regime 0 has the smallest intercept, ...). It is
harmless when the ordered parameter's regime values lie far apart, and it cuts through the
posterior — divergences, a mode split in two — when two regimes overlap in it. So among the
candidates (the switching intercept and factors, σ when it switches) the run takes the one whose
regime values are furthest apart at the multi-start optimum, on the model's standardised scale
(log σ for σ): the optimum itself does not depend on which candidate orders it, since an
ordering only relabels the regimes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from regimes.dataset import FitFrame
from regimes.families.base import Family
from regimes.families.markov.options import AUTO
from regimes.spec import ModelSpec


def regime_values(point: dict[str, np.ndarray], candidate: str, k: int) -> np.ndarray | None:
    """The candidate's K regime values at `point` (`intercept`, `sigma`, or a switching
    factor's `beta_<factor>`); None where the point has no such free variable."""
    for name in (candidate, f"beta_{candidate}"):
        value = point.get(name)
        if value is not None and np.shape(value) == (k,):
            return np.log(value) if candidate == "sigma" else np.asarray(value, dtype=float)
    return None


def closest_gap(values: np.ndarray) -> float:
    """The smallest distance between two regimes' values."""
    return float(np.min(np.diff(np.sort(values))))


def resolve_order_by(
    family: Family,
    spec: ModelSpec,
    frame: FitFrame,
    optimum: Callable[[Any, int], dict[str, np.ndarray] | None],
) -> tuple[ModelSpec, dict[str, Any]]:
    """`spec` with `order_by = "auto"` replaced by the best-separating candidate, and the record
    of the choice (every candidate's closest gap at the optimum that `optimum(model, n_starts)`
    finds); other specs unchanged."""
    opts = family.options(spec)
    if opts.order_by != AUTO:
        return spec, {}
    candidates = opts.order_candidates
    gaps: dict[str, float] = {}
    if opts.identified_by_order and len(candidates) > 1:
        trial = with_order(spec, candidates[0])
        best = optimum(family.build(trial, frame), opts.n_starts) or {}
        for candidate in candidates:
            values = regime_values(best, candidate, opts.k_regimes)
            if values is not None:
                gaps[candidate] = round(closest_gap(values), 4)
    chosen = max(gaps, key=lambda c: gaps[c]) if gaps else candidates[0]
    record = {
        "order_by": {
            "asked": AUTO,
            "chosen": chosen,
            "closest_gap_at_optimum": gaps,
            "scale": "model's standardised scale (log sigma for sigma)",
        }
    }
    return with_order(spec, chosen), record


def with_order(spec: ModelSpec, order_by: str) -> ModelSpec:
    """`spec` with options.order_by set."""
    return spec.model_copy(update={"options": {**spec.options, "order_by": order_by}})
