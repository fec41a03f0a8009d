"""How the regime starts and moves: initial-state distributions and transitions, each configured
in its constructor and declaring its parameters (inside the PyMC model context) as a NamedTuple.

Transitions give log transition probabilities: one (K, K) matrix, one per month (n, K, K) for
covariate-driven moves, or one per series (A, K, K) for independent chains. `Chain` joins an
initial state, transitions and, optionally, an independent volatility chain whose product with
the regime chain is what the filter runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from regimes.priors import make_prior
from regimes.spec import PriorSpec

# deferred to the functions that use them: PyMC, PyTensor (docs/modules.md#imports)


def moves(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Off-diagonal (from, to) index pairs: the moves a covariate-driven chain parametrises."""
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    return np.array([i for i, _ in pairs], dtype=int), np.array([j for _, j in pairs], dtype=int)


def dirichlet_rows(k: int, concentration: float, sticky: float) -> np.ndarray:
    """Dirichlet concentration of each transition row: base + sticky on the diagonal."""
    return concentration * np.ones((k, k)) + sticky * np.eye(k)


def log_clip(p: Any) -> Any:
    """log of probabilities, with zeros kept finite (a stationary solve may give −1e-17)."""
    import pytensor.tensor as pt

    return pt.log(pt.clip(p, 1e-300, 1.0))


# ------------------------------------------------------------------ transitions


class Transitions(ABC):
    """How the regime moves from month to month."""

    time_varying: ClassVar[bool] = False  # one matrix per month (driven by covariates)
    per_series: ClassVar[bool] = False  # one chain (and matrix) per series
    left_to_right: ClassVar[bool] = False  # regimes only move forward (change points)

    def __init__(self, k: int) -> None:
        self.k = k

    @abstractmethod
    def declare(self, priors: dict[str, PriorSpec]) -> Any:
        """Create the transition parameters (inside the PyMC model context)."""

    def allowed(self) -> np.ndarray | None:
        """(K, K) bool: the only moves whose probability can be nonzero, so the filter sums
        over those alone (a left-to-right chain's: stay or move one on); None: any move."""
        return forward_moves(self.k) if self.left_to_right else None

    @abstractmethod
    def log_matrix(self, params: Any, data: Any, c: int, every_month: bool = False) -> Any:
        """Log transition probabilities: (K, K), one per month (covariate-driven, break dates:
        row r moves scored month r to r + 1, the n scored months after the c the model
        conditions on; with `every_month`, row i moves month i of the frame to i + 1, N rows),
        or (A, K, K) per series. `data` is the model's `ChainData`. Built in log space so
        impossible moves are exactly −inf."""


class MatrixParams(NamedTuple):
    P: Any  # (K, K) rows of a Dirichlet, or (A, K, K) per series


class ConstantTransitions(Transitions):
    """One matrix P with Dirichlet rows (concentration plus `sticky` on the diagonal)."""

    def __init__(
        self,
        k: int,
        concentration: float = 1.0,
        sticky: float = 0.0,
        name: str = "P",
        dims: tuple[str, str] = ("regime", "regime_to"),
    ) -> None:
        super().__init__(k)
        self.rows, self.name, self.dims = dirichlet_rows(k, concentration, sticky), name, dims

    def declare(self, priors: dict[str, PriorSpec]) -> MatrixParams | None:
        import pymc as pm

        if self.k == 1:
            return None
        return MatrixParams(pm.Dirichlet(self.name, a=self.rows, dims=self.dims))

    def log_matrix(
        self, params: MatrixParams | None, data: Any, c: int, every_month: bool = False
    ) -> Any:
        import pytensor.tensor as pt

        return pt.zeros((1, 1)) if params is None else pt.log(params.P)


class SeriesTransitions(ConstantTransitions):
    """One constant matrix per series (independent chains with the same prior)."""

    per_series = True

    def __init__(self, k: int, n_series: int, concentration: float, sticky: float) -> None:
        super().__init__(k, concentration, sticky)
        self.rows = np.broadcast_to(self.rows, (n_series, k, k))
        self.dims = ("asset", "regime", "regime_to")  # type: ignore[assignment]


class CovariateParams(NamedTuple):
    transition_bias: Any  # (moves,)
    transition_coef: Any  # (moves, Q)


class CovariateTransitions(Transitions):
    """For each move i -> j ≠ i, logit against staying = bias_ij + z_t' coef_ij, so P_t[i] is
    a softmax over j with staying as the reference category (time-varying transitions)."""

    time_varying = True

    def declare(self, priors: dict[str, PriorSpec]) -> CovariateParams:
        return CovariateParams(
            make_prior("transition_bias", priors["transition_bias"], dims="move"),
            make_prior("transition_coef", priors["transition_coef"], dims=("move", "covariate")),
        )

    def log_matrix(
        self, params: CovariateParams, data: Any, c: int, every_month: bool = False
    ) -> Any:
        import pytensor.tensor as pt
        from pytensor.tensor.special import log_softmax

        z = data.z_all if every_month else data.z[c:]
        k = self.k
        rows, cols = moves(k)
        logits = pt.zeros((z.shape[0], k, k))
        change = params.transition_bias[None, :] + pt.dot(z, params.transition_coef.T)
        logits = pt.set_subtensor(logits[:, rows, cols], change)
        return log_softmax(logits, axis=-1)


class StayParams(NamedTuple):
    stay: Any  # (K - 1,)


def forward_moves(k: int) -> np.ndarray:
    """(K, K) bool: stay, or move one regime on (a left-to-right chain's only moves)."""
    return np.eye(k, dtype=bool) | np.eye(k, k=1, dtype=bool)


class ChangePointTransitions(Transitions):
    """Left to right: regime k stays with probability stay_k or moves to k + 1; the last
    regime is absorbing."""

    left_to_right = True

    def declare(self, priors: dict[str, PriorSpec]) -> StayParams:
        return StayParams(make_prior("stay", priors["stay"], dims="regime_stay"))

    def log_matrix(self, params: StayParams, data: Any, c: int, every_month: bool = False) -> Any:
        import pytensor.tensor as pt

        k = self.k
        idx = np.arange(k - 1)
        log_p = pt.full((k, k), -np.inf, dtype="float64")
        log_p = pt.set_subtensor(log_p[idx, idx], pt.log(params.stay))
        log_p = pt.set_subtensor(log_p[idx, idx + 1], pt.log1p(-params.stay))
        return pt.set_subtensor(log_p[k - 1, k - 1], 0.0)


class UniformBreaks(Transitions):
    """Exactly K − 1 breaks, left to right, with a uniform prior over their months: every set of
    K − 1 months among the scored months the likelihood trains on (the reference series' mask)
    is equally likely. In regime k before the move out of scored month r, with R trained moves
    left and b = K − 1 − k breaks to place, the break happens with probability b / R — a fixed,
    parameter-free hazard that makes the prior on the dates exactly uniform (a `stay`
    probability instead gives a geometric prior, which favours early breaks)."""

    time_varying = True
    left_to_right = True

    def declare(self, priors: dict[str, PriorSpec]) -> None:
        return None

    def log_matrix(self, params: None, data: Any, c: int, every_month: bool = False) -> Any:
        import pytensor.tensor as pt

        k = self.k
        moves = data.mask[c + 1 :, 0]  # 1 where the move into scored month r + 1 is trained
        left = pt.cumsum(moves[::-1])[::-1]  # trained moves from scored month r on
        needed = np.arange(k - 1, -1, -1, dtype=float)  # breaks still to place in regime k
        hazard = (
            pt.switch(
                left[:, None] > 0,
                pt.clip(needed[None, :] / pt.maximum(left[:, None], 1.0), 0, 1),
                0,
            )
            * moves[:, None]
        )
        hazard = pt.concatenate([hazard, pt.zeros((1, k))], axis=0)  # the last scored month
        if every_month:  # no break in the months conditioned on, nor after the window
            after = data.z_all.shape[0] - hazard.shape[0] - c
            hazard = pt.concatenate([pt.zeros((c, k)), hazard, pt.zeros((after, k))], axis=0)
        idx = np.arange(k)
        log_p = pt.full((hazard.shape[0], k, k), -np.inf, dtype="float64")
        # finite logs of the certain and impossible moves (a hazard of 1 empties a regime's
        # column: −inf there turns the filter's gradient into NaN, and NUTS cannot move)
        log_p = pt.set_subtensor(log_p[:, idx, idx], log_clip(1.0 - hazard))
        return pt.set_subtensor(log_p[:, idx[:-1], idx[:-1] + 1], log_clip(hazard[:, :-1]))


# ------------------------------------------------------------------ initial state


class InitialState(ABC):
    """The distribution of the regime in the first modelled month."""

    def __init__(self, k: int) -> None:
        self.k = k

    def declare(self) -> Any:
        """Create the initial-state parameters, if any (inside the PyMC model context)."""
        return None

    @abstractmethod
    def probabilities(self, params: Any, log_p0: Any) -> Any:
        """Initial regime probabilities (K,), given the first month's log transition matrix."""


class StationaryInitial(InitialState):
    """The chain's stationary distribution: solve π(I − P) = 0 with Σπ = 1."""

    def probabilities(self, params: Any, log_p0: Any) -> Any:
        import pytensor.tensor as pt

        p = pt.exp(log_p0)
        k = p.shape[-1]
        a = pt.eye(k) - p.T
        a = pt.set_subtensor(a[-1, :], 1.0)
        b = pt.set_subtensor(pt.zeros(k)[-1], 1.0)
        return pt.linalg.solve(a, b)


class InitialParams(NamedTuple):
    p0: Any  # (K,)


class EstimatedInitial(InitialState):
    """A Dirichlet(1, ..., 1) distribution estimated with the other parameters."""

    def declare(self) -> InitialParams:
        import pymc as pm

        return InitialParams(pm.Dirichlet("p0", a=np.ones(self.k), dims="regime"))

    def probabilities(self, params: InitialParams, log_p0: Any) -> Any:
        return params.p0


class FirstRegimeInitial(InitialState):
    """A change-point chain starts in its first regime."""

    def probabilities(self, params: Any, log_p0: Any) -> Any:
        import pytensor.tensor as pt

        return pt.set_subtensor(pt.zeros(self.k)[0], 1.0)


# ------------------------------------------------------------------ the chain


class ChainParams(NamedTuple):
    transitions: Any
    initial: Any
    volatility: MatrixParams | None


@dataclass(frozen=True)
class Chain:
    """The regime chain: an initial state and transitions, and optionally an independent
    volatility chain (constant transitions, stationary start) multiplied with it."""

    initial: InitialState
    transitions: Transitions
    volatility: ConstantTransitions | None = None

    def declare(self, priors: dict[str, PriorSpec]) -> ChainParams:
        """Transitions, initial state, then the volatility chain (the order seeded runs keep)."""
        transitions = self.transitions.declare(priors)
        initial = self.initial.declare()
        volatility = self.volatility.declare(priors) if self.volatility is not None else None
        return ChainParams(transitions, initial, volatility)

    def log_matrix(self, params: ChainParams, data: Any, c: int, every_month: bool = False) -> Any:
        """The regime chain's log matrices (see `Transitions.log_matrix`)."""
        return self.transitions.log_matrix(params.transitions, data, c, every_month)

    def log_initial(self, params: ChainParams, log_p: Any) -> Any:
        """Log initial probabilities of the regime chain: (K,), or (A, K) per series."""
        import pytensor.tensor as pt

        if self.transitions.per_series:
            n = self.transitions.rows.shape[0]  # type: ignore[attr-defined]
            rows = [self.initial.probabilities(params.initial, log_p[a]) for a in range(n)]
            return log_clip(pt.stack(rows))
        log_p0 = log_p if log_p.ndim == 2 else log_p[0]
        return log_clip(self.initial.probabilities(params.initial, log_p0))
