"""The state space a chain model filters over: K regimes, expanded by AR lags (the regime at
each lag) or multiplied by an independent volatility chain."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StateSpace:
    """The expanded chain: state j carries the regime at lags 0..p (`lags[j]`) and, for a
    product chain, a volatility regime (`volatility[j]`)."""

    k: int
    p: int
    lags: np.ndarray  # (J, p+1): lags[j, i] = regime at lag i of expanded state j
    allowed: np.ndarray  # (J, J) bool: expanded move j_prev -> j is consistent
    volatility: np.ndarray | None = None  # (J,) volatility regime of state j (product chains)
    n_volatility: int = 1

    @property
    def n_states(self) -> int:
        """Number of expanded states J."""
        return self.lags.shape[0]

    @property
    def regime(self) -> np.ndarray:
        """(J,) the current regime of each expanded state."""
        return self.lags[:, 0]

    def to_regime(self, lag: int = 0) -> np.ndarray:
        """(J, K) one-hot map from expanded states to the regime at `lag`."""
        return np.eye(self.k)[self.lags[:, lag]]

    def dense_log_trans(self, log_trans: np.ndarray) -> np.ndarray:
        """The chain's log moves on the expanded states, (..., J, J): with AR lags the
        outputs carry the K-regime matrices (..., K, K) and the move from expanded state i to
        j is the regime move lags[i, 0] -> lags[j, 0] where the lags agree (−inf elsewhere);
        without, `log_trans` is on the states already and comes back as it is."""
        if not self.p:
            return log_trans
        moved = log_trans[..., self.lags[:, 1], self.lags[:, 0]]  # (..., J): into state j
        return np.where(self.allowed, moved[..., None, :], -np.inf)

    def to_volatility(self) -> np.ndarray | None:
        """(J, V) one-hot map to the volatility regime (None without a volatility chain)."""
        return None if self.volatility is None else np.eye(self.n_volatility)[self.volatility]


def state_space(k: int, p: int = 0, volatility: int = 1) -> StateSpace:
    """Enumerate expanded states and the consistent moves between them: the lag states of an
    AR(p) chain, or (p = 0, `volatility` > 1) the product of the anchor and volatility chains,
    state j = (anchor j // V, volatility j % V)."""
    if volatility > 1:
        if p:
            raise ValueError("a volatility chain needs p = 0")
        anchor = np.repeat(np.arange(k), volatility)[:, None]
        vol = np.tile(np.arange(volatility), k)
        allowed = np.ones((k * volatility,) * 2, dtype=bool)
        return StateSpace(k, 0, anchor, allowed, vol, volatility)
    lags = np.array(list(itertools.product(range(k), repeat=p + 1)), dtype=int)
    allowed = np.all(lags[None, :, 1:] == lags[:, None, :-1], axis=-1)  # (prev, cur)
    return StateSpace(k, p, lags, allowed)
