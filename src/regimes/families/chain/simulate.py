"""Data drawn from a chain model's own one-step predictive: the states from the chain, then each
month's value as its conditional mean under the drawn state plus a noise draw, where the mean is
read off the model's innovations (e = y − mean, whatever y[t] holds), so a simulation follows
exactly the likelihood a fit scores — for every form, noise law and chain the parts compose."""

from __future__ import annotations

from typing import Any

import numpy as np

from regimes.families.chain.emissions import Noise
from regimes.families.chain.model import ComponentFunction
from regimes.families.chain.space import StateSpace


def _draw_states(rng: np.random.Generator, log_init: np.ndarray, log_trans: np.ndarray, n: int):
    """One path of n states from the initial distribution and (n-1 | n, J, J) or (J, J) moves."""

    def pick(log_p: np.ndarray) -> int:
        p = np.exp(log_p - np.max(log_p))
        return int(rng.choice(len(p), p=p / p.sum()))

    states = np.empty(n, dtype=int)
    states[0] = pick(log_init)
    for t in range(1, n):
        step = log_trans if log_trans.ndim == 2 else log_trans[t - 1]
        states[t] = pick(step[states[t - 1]])
    return states


def simulate_chain(
    fn: ComponentFunction,
    owner: Any,
    values: list[np.ndarray],
    space: StateSpace,
    noise: Noise,
    params: dict[str, np.ndarray],
    *,
    n_conditioning: int,
    per_series: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated targets (T, A) on the model's scale and the (reference) regime path (T,) of
    the fit window, given one draw's free-variable `values` (`free_RVs` order). The first
    `n_conditioning` months keep the data's values (the model conditions on them); `owner` is
    the model whose `y` container `fn` reads, rewritten month by month (and left so: every
    user of a cached function sets its own data first)."""
    c = n_conditioning
    y = np.array(owner["y"].get_value(), dtype=float)
    out = fn(*values)
    log_init, log_trans, scales = out[0], out[1], out[5]
    n, n_series = out[4].shape[:2]
    if per_series:  # one chain per series over K states
        states = np.stack(
            [_draw_states(rng, log_init[a], log_trans[a], n) for a in range(n_series)], axis=1
        )
    else:
        states = np.repeat(_draw_states(rng, log_init, log_trans, n)[:, None], n_series, 1)
    cols = np.arange(n_series)
    eps = noise.draw(rng, params, (n, n_series))
    e = out[4]
    for r in range(n):  # month c + r given the months before it
        if c > 0:  # the mean depends on earlier months (a level form without lags: it does not)
            owner["y"].set_value(y)
            e = fn(*values)[4]
        t = c + r
        y[t] = y[t] - e[r, cols, states[r]] + scales[cols, states[r]] * eps[r]
    regime = space.regime[states[:, 0]] if not per_series else states[:, 0]
    path = np.concatenate([np.full(c, regime[0]), regime])
    return y, path
