"""The data a Markov-switching model sees: standardised arrays of the fit window, the factor
split into switching and shared anchor terms and transition covariates, and the expanded state
space of the AR form."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from regimes.dataset import FitFrame
from regimes.draws import transform
from regimes.errors import ConfigError
from regimes.families.markov.options import Options


@dataclass(frozen=True)
class StateSpace:
    """The expanded chain on (s_t, ..., s_{t-p}): lag regimes and allowed moves."""

    k: int
    p: int
    lags: np.ndarray  # (J, p+1): lags[j, i] = regime at lag i of expanded state j
    allowed: np.ndarray  # (J, J) bool: expanded move j_prev -> j is consistent
    volatility: np.ndarray | None = None  # (J,) volatility regime of state j (factorial chains)

    @property
    def n_states(self) -> int:
        """Number of expanded states, K^(p+1)."""
        return self.lags.shape[0]


def state_space(k: int, p: int, volatility: int = 1) -> StateSpace:
    """Enumerate expanded states and the consistent moves between them: the lag states of an
    AR(p) chain, or (p = 0, `volatility` > 1) the product of the anchor and volatility chains,
    state j = (anchor j // V, volatility j % V)."""
    if volatility > 1:
        if p:
            raise ValueError("factorial chains need p = 0")
        anchor = np.repeat(np.arange(k), volatility)[:, None]
        vol = np.tile(np.arange(volatility), k)
        allowed = np.ones((k * volatility,) * 2, dtype=bool)
        return StateSpace(k=k, p=0, lags=anchor, allowed=allowed, volatility=vol)
    lags = np.array(list(itertools.product(range(k), repeat=p + 1)), dtype=int)
    allowed = np.all(lags[None, :, 1:] == lags[:, None, :-1], axis=-1)  # (prev, cur)
    return StateSpace(k=k, p=p, lags=lags, allowed=allowed)


@dataclass(frozen=True)
class Design:
    """Standardised arrays for the fit window plus what is needed to go back to natural units."""

    y: np.ndarray  # (T,) standardised (transformed) target in the fit window
    x_switch: np.ndarray  # (T, Ps)
    x_shared: np.ndarray  # (T, Pc)
    x_switch_all: np.ndarray  # (N, Ps) over every month (for fair value)
    x_shared_all: np.ndarray  # (N, Pc)
    switch_terms: list[str]
    shared_terms: list[str]
    z: np.ndarray  # (T, Q) standardised transition covariates (covariate-driven transitions)
    z_all: np.ndarray  # (N, Q)
    dx: np.ndarray  # (T-1, P) changes of the anchor factors (error-correction short-run terms)
    covariates: list[str]
    y_mean: float
    y_sd: float
    x_mean: dict[str, float]
    x_sd: dict[str, float]
    weight: np.ndarray | None = None  # (T,) 1 where the month's observation counts, else 0
    anchor_mask: np.ndarray | None = None  # (K, Ps) bool: term p prices the target in regime k


def design(frame: FitFrame, opts: Options, where: str = "model options") -> Design:
    """Split factors into switching and shared terms and standardise on the fit window."""
    unknown = [t for t in opts.switching if t != "intercept" and t not in frame.factors]
    if unknown:
        raise ConfigError(
            f"{where}: key 'options.switching': {unknown} are not factors of this experiment "
            f"(factors: {list(frame.factors)}; 'intercept' is always available)"
        )
    missing = [c for c in opts.transition_covariates if c not in frame.factors]
    if missing:
        raise ConfigError(
            f"{where}: key 'options.transition_covariates': {missing} are not factors of this "
            f"experiment; add them to data.factors (factors: {list(frame.factors)})"
        )
    if opts.anchors is not None:
        for regime, terms in opts.anchors.items():
            bad = [t for t in terms if t not in frame.factors or t in opts.transition_covariates]
            if bad:
                raise ConfigError(
                    f"{where}: key 'options.anchors.{regime}': {bad} are not anchor factors of "
                    f"this experiment (factors: {list(frame.factors)}, minus transition "
                    "covariates); add them to data.factors"
                )
    both = [c for c in opts.transition_covariates if c in opts.switching]
    if both:
        raise ConfigError(
            f"{where}: {both} are listed in both options.switching and "
            "options.transition_covariates; a covariate drives the transitions only"
        )
    fit, scale = frame.fit.to_numpy(), frame.scale
    y_all = transform(frame.y.to_numpy(), opts.transform)
    y_mean, y_sd = float(y_all[scale].mean()), float(y_all[scale].std()) or 1.0
    y = y_all[fit]
    x_all = frame.X
    x_mean = {c: float(x_all[c][scale].mean()) for c in frame.factors}
    x_sd = {c: float(x_all[c][scale].std()) or 1.0 for c in frame.factors}
    anchor = [t for t in frame.factors if t not in opts.transition_covariates]
    switching = opts.anchor_terms if opts.anchors is not None else opts.switching
    switch_terms = [t for t in anchor if t in switching]
    shared_terms = [t for t in anchor if t not in switching]
    mask = None
    if opts.anchors is not None:
        mask = np.array([[t in opts.anchors[n] for t in switch_terms] for n in opts.names])
    covariates = list(opts.transition_covariates)

    def std(cols: list[str]) -> np.ndarray:
        if not cols:
            return np.zeros((len(frame.time), 0))
        return np.column_stack([(x_all[c].to_numpy() - x_mean[c]) / x_sd[c] for c in cols])

    xs, xc, z = std(switch_terms), std(shared_terms), std(covariates)
    return Design(
        y=(y - y_mean) / y_sd,
        x_switch=xs[fit],
        x_shared=xc[fit],
        x_switch_all=xs,
        x_shared_all=xc,
        switch_terms=switch_terms,
        shared_terms=shared_terms,
        z=z[fit],
        z_all=z,
        dx=np.diff(std(anchor)[fit], axis=0),
        covariates=covariates,
        y_mean=y_mean,
        y_sd=y_sd,
        x_mean=x_mean,
        x_sd=x_sd,
        weight=frame.train[fit].astype(float),
        anchor_mask=mask,
    )
