"""Convergence checks on a posterior DataTree (the full gate comes with the review workflow)."""

from __future__ import annotations

from typing import Any

import numpy as np

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


def quick_verdict(tree) -> dict[str, Any]:
    """R-hat, bulk ESS and divergences over all posterior variables, and whether they pass."""
    import arviz as az

    rhat = az.rhat(tree)
    ess = az.ess(tree, method="bulk")
    max_rhat = float(max(np.nanmax(v.values) for v in rhat.data_vars.values()))
    min_ess = float(min(np.nanmin(v.values) for v in ess.data_vars.values()))
    stats = tree["sample_stats"]
    divergences = int(stats["diverging"].values.sum()) if "diverging" in stats else 0
    chains = int(tree["posterior"].sizes["chain"])
    converged = max_rhat <= RHAT_MAX and min_ess >= ESS_PER_CHAIN_MIN * chains and divergences == 0
    return {
        "converged": bool(converged),
        "max_rhat": round(max_rhat, 4),
        "min_ess_bulk": round(min_ess, 1),
        "divergences": divergences,
        "thresholds": {"rhat_max": RHAT_MAX, "ess_bulk_min_per_chain": ESS_PER_CHAIN_MIN},
    }
