"""The Markov-switching family as a configuration of chain parts: the options pick the initial
state, transitions (with an optional volatility chain), the anchor (switching or shared terms,
anchor sets, pooling across regimes), the scale, the noise law and the form; the frame gives the
anchor terms and transition covariates."""

from __future__ import annotations

from typing import Any

import numpy as np

from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.families.chain.data import ChainData, chain_data
from regimes.families.chain.emissions import (
    NOISE,
    Anchor,
    Emissions,
    ErrorCorrectionEmissions,
    LevelEmissions,
    LoadingsEmissions,
    RegimeAnchor,
    Scales,
    SignedAnchor,
)
from regimes.families.chain.family import Assembled
from regimes.families.chain.model import ChainModel
from regimes.families.chain.space import state_space
from regimes.families.chain.transitions import (
    Chain,
    ChangePointTransitions,
    ConstantTransitions,
    CovariateTransitions,
    EstimatedInitial,
    FirstRegimeInitial,
    InitialState,
    StationaryInitial,
    Transitions,
    UniformBreaks,
    moves,
)
from regimes.families.markov.options import AUTO, PRIORS, Options
from regimes.spec import ModelSpec


def check_terms(frame: FitFrame, opts: Options, where: str) -> None:
    """The options' factor names against the experiment's factors."""
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
    for regime, terms in (opts.anchors or {}).items():
        bad = [t for t in terms if t not in frame.factors or t in opts.transition_covariates]
        if bad:
            raise ConfigError(
                f"{where}: key 'options.anchors.{regime}': {bad} are not anchor factors of "
                f"this experiment (factors: {list(frame.factors)}, minus transition "
                "covariates); add them to data.factors"
            )
    for regime, table in (opts.signs or {}).items():
        bad = [t for t in table if t not in frame.factors or t in opts.transition_covariates]
        if bad:
            raise ConfigError(
                f"{where}: key 'options.signs.{regime}': {bad} are not anchor factors of this "
                f"experiment (factors: {list(frame.factors)}, minus transition covariates)"
            )
    both = [c for c in opts.transition_covariates if c in opts.switching]
    if both:
        raise ConfigError(
            f"{where}: {both} are listed in both options.switching and "
            "options.transition_covariates; a covariate drives the transitions only"
        )


def anchor_terms(frame: FitFrame, opts: Options) -> tuple[list[str], list[str], list[str]]:
    """(anchor terms, the switching ones among them, the shared ones), in factor order."""
    terms = [t for t in frame.factors if t not in opts.transition_covariates]
    if opts.signs is not None:  # every loading switches (its sign is a regime's definition)
        return terms, list(terms), []
    switching = opts.anchor_terms if opts.anchors is not None else opts.switching
    switch = [t for t in terms if t in switching]
    return terms, switch, [t for t in terms if t not in switch]


def chain_of(opts: Options) -> Chain:
    """Initial state and transitions the options ask for, and the volatility chain."""
    k = opts.k_regimes
    if opts.transition in ("changepoint", "breaks"):
        initial: InitialState = FirstRegimeInitial(k)
    elif opts.initial == "estimated" and k > 1:
        initial = EstimatedInitial(k)
    else:
        initial = StationaryInitial(k)
    transitions: Transitions = {
        "constant": lambda: ConstantTransitions(k, opts.transition_concentration, opts.sticky),
        "covariates": lambda: CovariateTransitions(k),
        "changepoint": lambda: ChangePointTransitions(k),
        "breaks": lambda: UniformBreaks(k),
    }[opts.transition]()
    volatility = None
    if opts.volatility_regimes > 1:
        volatility = ConstantTransitions(
            opts.volatility_regimes,
            opts.transition_concentration,
            opts.sticky,
            name="P_volatility",
            dims=("volatility", "volatility_to"),
        )
    return Chain(initial, transitions, volatility)


def emissions_of(opts: Options, terms: list[str], switch: list[str]) -> Emissions:
    """The anchor, scale, noise law and form the options ask for."""
    k = opts.k_regimes
    order_by = opts.order_by if opts.identified_by_order else None
    if order_by == AUTO:
        raise ConfigError(
            "options.order_by = 'auto' is chosen once per run, on its data (a run resolves it "
            "and stores the choice in config.toml); outside a run, resolve the spec first with "
            "family.resolve_spec(spec, frame, seed)"
        )
    mask = None
    if opts.anchors is not None:
        mask = np.array([[t in opts.anchors[n] for t in switch] for n in opts.names])
    anchor: Anchor = RegimeAnchor(
        k=k,
        terms=terms,
        switch_terms=switch,
        intercept_switches="intercept" in opts.switching,
        order_by=order_by,
        anchor_mask=mask,
        pool_regimes=opts.pool_regimes,
    )
    if opts.signs is not None:
        anchor = SignedAnchor(k=k, terms=terms, names=opts.names, signs=opts.signs)
    if opts.volatility_regimes > 1:
        scales = Scales(by="volatility", n=opts.volatility_regimes)
    else:
        by = "regime" if opts.switching_variance else "none"
        scales = Scales(by=by, n=k, ordered=order_by == "sigma")
    noise = NOISE[opts.noise]()
    if opts.form == "ecm":
        return ErrorCorrectionEmissions(
            anchor,
            scales,
            noise,
            short_run_lags=opts.short_run_lags,
            k=k,
            n_terms=len(terms),
        )
    if opts.form == "loadings":
        return LoadingsEmissions(anchor, scales, noise)
    return LevelEmissions(anchor, scales, noise, ar_order=opts.ar_order)


def coords_of(
    frame: FitFrame, opts: Options, data: ChainData, switch: list[str], shared: list[str]
) -> dict[str, Any]:
    """The model's named dimensions."""
    names = opts.names
    rows, cols = moves(opts.k_regimes)
    pairs = []
    if opts.anchors is not None:
        pairs = [f"{n}:{t}" for n in names for t in switch if t in opts.anchors[n]]
    signed: list[str] = []
    free: list[str] = []
    if opts.signs is not None:
        signed, free = SignedAnchor(opts.k_regimes, data.terms, names, opts.signs).labels()
    return {
        "regime": names,
        "regime_to": names,
        "switch_term": switch,
        "shared_term": shared,
        "anchor_term": data.terms,
        "covariate": data.covariates,
        "move": [f"{names[i]}->{names[j]}" for i, j in zip(rows, cols, strict=True)],
        "regime_stay": names[:-1],
        "lag": list(range(1, opts.ar_order + 1)),
        "volatility": opts.volatility_labels,
        "volatility_to": opts.volatility_labels,
        "sr_lag": list(range(1, opts.short_run_lags + 1)),
        "anchor_coef": pairs,
        "signed_coef": signed,
        "free_coef": free,
        "time": frame.time[frame.fit.to_numpy()][opts.n_conditioning :],
    }


def assemble(spec: ModelSpec, frame: FitFrame) -> Assembled:
    """Parts, data, coordinates and priors of a Markov-switching spec on a frame."""
    opts = Options.model_validate(spec.options)
    where = spec.path or spec.name or "model options"
    check_terms(frame, opts, where)
    terms, switch, shared = anchor_terms(frame, opts)
    data = chain_data(frame, opts.transform, terms, opts.transition_covariates, where=where)
    parts = ChainModel(
        chain=chain_of(opts),
        emissions=emissions_of(opts, terms, switch),
        space=state_space(opts.k_regimes, opts.ar_order, opts.volatility_regimes),
    )
    return Assembled(
        parts, data, coords_of(frame, opts, data, switch, shared), {**PRIORS, **spec.priors}
    )
