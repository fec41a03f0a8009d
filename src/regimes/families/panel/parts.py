"""The panel family as a configuration of chain parts: the same emissions as the Markov family
over every asset (a `series` dimension), with intercepts and sensitivities pooled across assets
(`PooledAnchor`), a scale per asset, and the regime chain shared by every asset or one per asset
with the same priors."""

from __future__ import annotations

from typing import Any

import numpy as np

from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.families.chain.data import chain_data
from regimes.families.chain.emissions import (
    NOISE,
    Emissions,
    ErrorCorrectionEmissions,
    LevelEmissions,
    PooledAnchor,
    Scales,
)
from regimes.families.chain.family import Assembled
from regimes.families.chain.model import ChainModel
from regimes.families.chain.space import state_space
from regimes.families.chain.transitions import Chain, SeriesTransitions, StationaryInitial, moves
from regimes.families.markov.parts import chain_of
from regimes.families.panel.options import PRIORS, Options
from regimes.spec import ModelSpec


def anchor_sets(opts: Options, terms: list[str], where: str) -> np.ndarray | None:
    """(K, P) mask of each regime's anchor set (None without `anchors`); every listed term must
    be an anchor term, and every anchor term must price some regime."""
    if opts.anchors is None:
        return None
    for name, listed in opts.anchors.items():
        unknown = [t for t in listed if t not in terms]
        if unknown:
            raise ConfigError(
                f"{where}: key 'options.anchors.{name}': {unknown} are not anchor terms of this "
                f"experiment; use factors from {terms} (add others to data.factors)"
            )
    unused = [t for t in terms if not any(t in v for v in opts.anchors.values())]
    if unused:
        raise ConfigError(
            f"{where}: key 'options.anchors': the factors {unused} price no regime; list them in "
            "a regime's anchor set or drop them from data.factors"
        )
    return np.array([[float(t in opts.anchors[n]) for t in terms] for n in opts.names])


def anchor_terms(frame: FitFrame, opts: Options, where: str) -> list[str]:
    """The factors that anchor the assets (every factor but the transition covariates)."""
    missing = [c for c in opts.transition_covariates if c not in frame.factors]
    if missing:
        raise ConfigError(
            f"{where}: key 'options.transition_covariates': {missing} are not factors of this "
            f"experiment; add them to data.factors (factors: {list(frame.factors)})"
        )
    terms = [t for t in frame.factors if t not in opts.transition_covariates]
    if opts.ordered and opts.order_by != "intercept" and opts.order_by not in terms:
        raise ConfigError(
            f"{where}: key 'options.order_by': {opts.order_by!r} must be 'intercept' or an anchor "
            f"term {terms}"
        )
    return terms


def emissions_of(
    opts: Options, n_assets: int, terms: list[str], mask: np.ndarray | None
) -> Emissions:
    """The pooled anchor, each asset's scale, the noise law and the form."""
    k = opts.k_regimes
    anchor = PooledAnchor(
        k=k,
        n_series=n_assets,
        terms=terms,
        order_by=opts.order_by if opts.ordered else None,
        regime_mask=mask,
    )
    scales = Scales(by="regime" if opts.switching_variance else "none", n=k, per_series=True)
    noise = NOISE[opts.noise]()
    if opts.form == "ecm":
        return ErrorCorrectionEmissions(
            anchor, scales, noise, per_series=True, k=k, n_terms=len(terms)
        )
    return LevelEmissions(anchor, scales, noise)


def coords_of(
    frame: FitFrame, opts: Options, assets: list[str], terms: list[str], mask: np.ndarray | None
) -> dict[str, Any]:
    """The model's named dimensions."""
    names = opts.names
    rows, cols = moves(opts.k_regimes)
    coords: dict[str, Any] = {}
    if mask is not None:
        coords["anchor_coef"] = [
            f"{names[k]}:{terms[p]}" for k, p in zip(*np.nonzero(mask), strict=True)
        ]
    return {
        **coords,
        "asset": assets,
        "asset_rest": assets[1:],
        "regime": names,
        "regime_to": names,
        "term": terms,
        "covariate": list(opts.transition_covariates),
        "move": [f"{names[i]}->{names[j]}" for i, j in zip(rows, cols, strict=True)],
        "regime_stay": names[:-1],
        "time": frame.time[frame.fit.to_numpy()][opts.n_conditioning :],
    }


def assemble(spec: ModelSpec, frame: FitFrame) -> Assembled:
    """Parts, data, coordinates and priors of a panel spec on a frame."""
    opts = Options.model_validate(spec.options)
    where = spec.path or spec.name or "model options"
    terms = anchor_terms(frame, opts, where)
    mask = anchor_sets(opts, terms, where)
    data = chain_data(frame, opts.transform, terms, opts.transition_covariates, where=where)
    k, n_assets = opts.k_regimes, data.n_series
    chain_opts = opts.chain_options()
    if opts.chain == "shared":
        chain = chain_of(chain_opts)
    else:
        transitions = SeriesTransitions(k, n_assets, opts.transition_concentration, opts.sticky)
        chain = Chain(StationaryInitial(k), transitions)
    parts = ChainModel(chain, emissions_of(opts, n_assets, terms, mask), state_space(k))
    coords = coords_of(frame, opts, data.series, terms, mask)
    return Assembled(parts, data, coords, {**PRIORS, **spec.priors})
