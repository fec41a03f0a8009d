"""Hierarchical multi-asset regime model: several assets share one regime chain and their
regime-specific sensitivities are partially pooled (Hamilton & Owyang 2012; Kaufmann 2010).

    y[t, a] = α[a, s_t] + x_t'β[a, s_t] + σ_a ε,   β[a, k] = μ[k] + τ[k] ⊙ z[a, k]

The emission log density of month t in regime k is the sum over the assets observed that month,
so `regimes.hmm`'s forward filter, smoother, FFBS and Viterbi run unchanged on (T, K); missing
months are masked (contribute exactly zero), never filled. `chain = "independent"` gives each
asset its own chain with the same priors, for comparison.

A configuration of the chain parts (`families.chain`), the Markov family's emissions over every
asset with pooled priors: `options.py` → `parts.py` → `outputs.py` → `family.py`.
"""

from __future__ import annotations

from regimes.families.panel.family import FAMILY, PanelFamily
from regimes.families.panel.options import PRIORS, Options
from regimes.families.panel.parts import assemble

__all__ = ["FAMILY", "PRIORS", "Options", "PanelFamily", "assemble"]
