"""Markov-switching regression with K regimes, discrete states marginalised by the forward filter.

    y_t − μ_{s_t}(x_t) = Σ_{i=1..p} φ_i · (y_{t−i} − μ_{s_{t−i}}(x_{t−i})) + σ_{s_t} ε_t,
    μ_k(x) = a_k + x'b_k  (each term switching or shared),  s_t a Markov chain with matrix P.

With p = 0 this is a switching regression (statsmodels' MarkovRegression); with p > 0 it is
Hamilton's switching-mean MS-AR (MarkovAutoregression) and, with factors, a fair-value model with
autocorrelated errors whose anchor μ_k switches. The AR part depends on past regimes, so the
chain runs on the expanded state (s_t, …, s_{t−p}) with K^(p+1) states. The first p observations
are conditioned on, as in statsmodels.

Label switching is removed by an ordering constraint on one parameter across regimes
(`order_by`: the intercept, a switching factor's coefficient, or sigma). Regimes carry names from
the spec. Fair value under regime k is μ_k(x_t); the mixture weights it by regime probabilities
(smoothed in sample, predicted P^h out of sample).

The family is a configuration of the chain parts (`families.chain`): `options.py` (options,
priors) → `parts.py` (which initial state, transitions, anchor, scale, noise and form) →
`outputs.py` (derived.nc from the per-draw passes) → `family.py`.
"""

from __future__ import annotations

from regimes.families.markov.family import FAMILY, MarkovFamily
from regimes.families.markov.options import PRIORS, Options
from regimes.families.markov.parts import assemble

__all__ = ["FAMILY", "PRIORS", "MarkovFamily", "Options", "assemble"]
