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


def _draw_states(
    rng: np.random.Generator,
    log_init: np.ndarray,
    log_trans: np.ndarray,
    n: int,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """One path of n states from the initial distribution and (n-1 | n, J, J) or (J, J) moves;
    with `allowed` (n, J) bool, each month's state is drawn among the allowed ones only (a
    planted regime path: the expanded states consistent with it, in proportion to the chain)."""

    def pick(log_p: np.ndarray, ok: np.ndarray | None) -> int:
        if ok is not None:
            log_p = np.where(ok, log_p, -np.inf)
        p = np.exp(log_p - np.max(log_p))
        return int(rng.choice(len(p), p=p / p.sum()))

    states = np.empty(n, dtype=int)
    states[0] = pick(log_init, None if allowed is None else allowed[0])
    for t in range(1, n):
        step = log_trans if log_trans.ndim == 2 else log_trans[t - 1]
        states[t] = pick(step[states[t - 1]], None if allowed is None else allowed[t])
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
    regimes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated targets (T, A) on the model's scale and the (reference) regime path (T,) of
    the fit window, given one draw's free-variable `values` (`free_RVs` order). The first
    `n_conditioning` months keep the data's values (the model conditions on them); `regimes`
    (T,) plants the regime path of the fit window (the chain's other states, a volatility
    chain's, are drawn given it); `owner` is
    the model whose `y` container `fn` reads, rewritten month by month (and left so: every
    user of a cached function sets its own data first)."""
    c = n_conditioning
    y = np.array(owner["y"].get_value(), dtype=float)
    out = fn(*values)
    log_init, log_trans, scales = out[0], space.dense_log_trans(out[1]), out[5]
    n, n_series = out[4].shape[:2]
    if per_series:  # one chain per series over K states
        allowed = None if regimes is None else np.eye(space.k, dtype=bool)[regimes[c:]]
        draws = [_draw_states(rng, log_init[a], log_trans[a], n, allowed) for a in range(n_series)]
        states = np.stack(draws, axis=1)
    else:
        allowed = None if regimes is None else space.regime[None, :] == regimes[c:, None]
        path = _draw_states(rng, log_init, log_trans, n, allowed)
        states = np.repeat(path[:, None], n_series, 1)
    cols = np.arange(n_series)
    eps = noise.draw_joint(rng, params, n, n_series)
    e = out[4]
    for r in range(n):  # month c + r given the months before it
        if c > 0:  # the mean depends on earlier months (a level form without lags: it does not)
            owner["y"].set_value(y)
            e = fn(*values)[4]
        t = c + r
        y[t] = y[t] - e[r, cols, states[r]] + scales[cols, states[r]] * eps[r]
    regime = space.regime[states[:, 0]] if not per_series else states[:, 0]
    path = np.concatenate([np.full(c, regime[0]), regime]) if regimes is None else regimes
    return y, path
