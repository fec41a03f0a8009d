"""The Markov-switching PyMC model: the parts of `components.py` joined into one likelihood with
the discrete regimes marginalised by the forward filter (`hmm.pt_forward_log_marginal`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from regimes import hmm
from regimes.dataset import FitFrame
from regimes.families.markov.components import Params, Parts, moves, parts_for
from regimes.families.markov.design import Design, StateSpace, design, state_space
from regimes.families.markov.options import PRIORS, Options
from regimes.spec import ModelSpec


@dataclass(frozen=True)
class HMMGraphs:
    """PyTensor graphs of the HMM inputs over the scored months (n = T − n_conditioning), on
    the J lag-expanded states, plus what posterior outputs need."""

    log_init: Any  # (J,)
    log_trans: Any  # (J, J) or (n, J, J) on the expanded states
    log_lik: Any  # (n, J)
    P_all: Any  # (K, K) or (N, K, K): transition matrices of every month of the frame
    innovations: Any  # (n, J) standardised one-step innovations behind log_lik
    scales: Any  # (J,) their sds

    def outputs(self) -> list[Any]:
        """The graphs in the order `component_function` returns them."""
        return [
            self.log_init,
            self.log_trans,
            self.log_lik,
            self.P_all,
            self.innovations,
            self.scales,
        ]


@dataclass(frozen=True)
class MarkovModel:
    """A built model with the design and state space it was built on and its HMM graphs."""

    model: Any  # pm.Model
    design: Design
    space: StateSpace
    graphs: HMMGraphs


def hmm_inputs(params: Params, d: Design, opts: Options, space: StateSpace, parts: Parts):
    """(log_init (J,), log_trans (J, J) or (n, J, J), log_lik (n, J), innovations, scales, and
    the K-regime log matrix (K, K) or (n, K, K) that log_trans expands to the lag states)."""
    import pytensor.tensor as pt

    p, c = opts.ar_order, opts.n_conditioning
    e, sig_j, log_lik = parts.emissions.log_likelihood(params, d, opts, space)
    log_p = parts.transitions.log_matrix(params, d.z[c:], opts)  # row r: move c + r -> c + r + 1
    lags = space.lags
    if p > 0:
        moved = log_p[..., lags[:, 1], lags[:, 0]]  # (J,) or (n, J)
        moved = moved[None, :] if log_p.ndim == 2 else moved[:, None, :]
        log_trans = pt.where(space.allowed, moved, -np.inf)
    else:
        log_trans = log_p
    log_p0 = log_p if log_p.ndim == 2 else log_p[0]
    init = parts.initial.probabilities(params, log_p0, opts)
    log_init = pt.log(pt.clip(init, 1e-300, 1.0))[lags[:, p]]
    for i in range(p):
        log_init = log_init + log_p0[lags[:, i + 1], lags[:, i]]
    return log_init, log_trans, log_lik, e, sig_j, log_p


DATA_FIELDS = ("y", "x_switch", "x_shared", "z", "z_all", "dx", "weight")


def data_containers(d: Design) -> Design:
    """The design's arrays that enter the likelihood as `pm.Data` containers (inside a model
    context): the compiled log density takes them as inputs, so a refit on new data of the same
    model reuses it (`regimes.compiled`)."""
    import pymc as pm

    return dataclasses.replace(
        d,
        **{
            name: pm.Data(name, getattr(d, name))
            for name in DATA_FIELDS
            if isinstance(getattr(d, name), np.ndarray)  # (symbolic inputs stay as they are)
        },
    )


def coords_of(frame: FitFrame, d: Design, opts: Options) -> dict[str, Any]:
    """The model's named dimensions."""
    names = opts.names
    rows, cols = moves(opts.k_regimes)
    return {
        "regime": names,
        "regime_to": names,
        "switch_term": d.switch_terms,
        "shared_term": d.shared_terms,
        "anchor_term": [t for t in frame.factors if t in d.switch_terms or t in d.shared_terms],
        "covariate": d.covariates,
        "move": [f"{names[i]}->{names[j]}" for i, j in zip(rows, cols, strict=True)],
        "regime_stay": names[:-1],
        "lag": list(range(1, opts.ar_order + 1)),
        "time": frame.time[frame.fit.to_numpy()][opts.n_conditioning :],
    }


def build_model(spec: ModelSpec, frame: FitFrame) -> MarkovModel:
    """Priors, identification and the marginalised HMM likelihood, with the graphs the outputs
    reuse after sampling (so derived quantities never disagree with what was sampled)."""
    import pymc as pm
    import pytensor.tensor as pt

    opts = Options.model_validate(spec.options)
    priors = {**PRIORS, **spec.priors}
    d = design(frame, opts, where=spec.path or spec.name)
    space = state_space(opts.k_regimes, opts.ar_order)
    parts = parts_for(opts)
    with pm.Model(coords=coords_of(frame, d, opts)) as model:
        data = data_containers(d)
        params = parts.emissions.declare(priors, opts, d)
        params.update(parts.transitions.declare(priors, opts))
        params.update(parts.initial.declare(opts))
        log_init, log_trans, log_lik, e, sig_j, log_p = hmm_inputs(params, data, opts, space, parts)
        if opts.ar_order:  # the lag-expanded forward pass needs K as a static shape
            k = opts.k_regimes
            log_p = pt.specify_shape(log_p, (None,) * (log_p.ndim - 2) + (k, k))
        total, _ = hmm.pt_forward_log_marginal(log_init, log_p, log_lik, lags=opts.ar_order)
        pm.Potential("hmm_loglik", total)
        p_all = pt.exp(parts.transitions.log_matrix(params, data.z_all, opts))  # every month
    graphs = HMMGraphs(log_init, log_trans, log_lik, p_all, e, sig_j)
    return MarkovModel(model=model, design=d, space=space, graphs=graphs)


def component_function(spec: ModelSpec, frame: FitFrame):
    """Compiled map from parameter values (constrained, standardised scale, in `free_RVs` order)
    to `HMMGraphs.outputs()`: the model's own likelihood graph, reused after sampling.

    Returns (function, pm.Model, Design, StateSpace)."""
    import pytensor

    built = build_model(spec, frame)
    model = built.model
    fn = pytensor.function(model.free_RVs, built.graphs.outputs(), on_unused_input="ignore")
    return fn, model, built.design, built.space
