"""Convergence checks on a posterior DataTree (the full gate comes with the review workflow)."""

from __future__ import annotations

from typing import Any

import numpy as np

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
LP_GAP_MIN = 2.0  # log-density units: a chain this far below the best sits in another mode


def chain_agreement(tree) -> dict[str, Any]:
    """Do all chains explore the same mode? Compares per-chain mean log density.

    A chain stuck in a degenerate mode of a mixture (two regimes with nearly equal means) has a
    clearly lower log density than the others; it is named, never silently averaged in.
    """
    stats = tree["sample_stats"]
    if "lp" not in stats:
        return {"agree": True, "chain_mean_lp": [], "off_chains": []}
    lp = np.asarray(stats["lp"].values, dtype=float)  # (chain, draw)
    means = lp.mean(axis=1)
    n_draw = lp.shape[1]
    se = lp.std(axis=1).max() / np.sqrt(max(n_draw / 20.0, 1.0))
    threshold = LP_GAP_MIN + 4.0 * se
    best = means.max()
    off = [int(c) for c in np.flatnonzero(best - means > threshold)]
    return {
        "agree": not off,
        "chain_mean_lp": [round(float(m), 2) for m in means],
        "off_chains": off,
        "lp_gap_threshold": round(float(threshold), 2),
    }


def quick_verdict(tree) -> dict[str, Any]:
    """R-hat, bulk ESS, divergences and chain agreement over all posterior variables."""
    import arviz as az

    rhat = az.rhat(tree)
    ess = az.ess(tree, method="bulk")
    max_rhat = float(max(np.nanmax(v.values) for v in rhat.data_vars.values()))
    min_ess = float(min(np.nanmin(v.values) for v in ess.data_vars.values()))
    stats = tree["sample_stats"]
    divergences = int(stats["diverging"].values.sum()) if "diverging" in stats else 0
    chains = int(tree["posterior"].sizes["chain"])
    agreement = chain_agreement(tree)
    converged = (
        max_rhat <= RHAT_MAX
        and min_ess >= ESS_PER_CHAIN_MIN * chains
        and divergences == 0
        and agreement["agree"]
    )
    return {
        "converged": bool(converged),
        "status": "ok"
        if converged
        else ("chains_disagree" if not agreement["agree"] else "not_converged"),
        "max_rhat": round(max_rhat, 4),
        "min_ess_bulk": round(min_ess, 1),
        "divergences": divergences,
        "chains_agree": agreement["agree"],
        "chain_agreement": agreement,
        "thresholds": {"rhat_max": RHAT_MAX, "ess_bulk_min_per_chain": ESS_PER_CHAIN_MIN},
    }
