"""The Markov-switching PyMC model: the parts of `components.py` joined into one likelihood with
the discrete regimes marginalised by the forward filter (`hmm.pt_forward_log_marginal`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from regimes import hmm
from regimes.dataset import FitFrame
from regimes.families.markov.components import (
    Params,
    Parts,
    StationaryInitial,
    moves,
    parts_for,
)
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
    if space.volatility is not None:  # product chain: log P_a[a, a'] + log P_v[v, v']
        a, v = lags[:, 0], space.volatility
        log_pv = pt.log(params["P_volatility"])
        moved = log_p[..., a[:, None], a[None, :]]
        log_trans = moved + log_pv[v[:, None], v[None, :]]
        log_p0 = log_p if log_p.ndim == 2 else log_p[0]
        init = parts.initial.probabilities(params, log_p0, opts)
        init_v = StationaryInitial().probabilities(params, log_pv, opts)
        log_init = pt.log(pt.clip(init, 1e-300, 1.0))[a] + pt.log(pt.clip(init_v, 1e-300, 1.0))[v]
        return log_init, log_trans, log_lik, e, sig_j, log_p
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
        "volatility": opts.volatility_labels,
        "volatility_to": opts.volatility_labels,
        "sr_lag": list(range(1, opts.short_run_lags + 1)),
        "anchor_coef": [
            f"{names[k]}:{d.switch_terms[p]}"
            for k, p in zip(*np.nonzero(d.anchor_mask), strict=True)
        ]
        if d.anchor_mask is not None
        else [],
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
    space = state_space(opts.k_regimes, opts.ar_order, opts.volatility_regimes)
    parts = parts_for(opts)
    with pm.Model(coords=coords_of(frame, d, opts)) as model:
        data = data_containers(d)
        params = parts.emissions.declare(priors, opts, d)
        params.update(parts.transitions.declare(priors, opts))
        params.update(parts.initial.declare(opts))
        if opts.volatility_regimes > 1:
            kv = opts.volatility_regimes
            concentration = opts.transition_concentration * np.ones((kv, kv))
            concentration = concentration + opts.sticky * np.eye(kv)
            params["P_volatility"] = pm.Dirichlet(
                "P_volatility", a=concentration, dims=("volatility", "volatility_to")
            )
        log_init, log_trans, log_lik, e, sig_j, log_p = hmm_inputs(params, data, opts, space, parts)
        if opts.ar_order:  # the lag-expanded forward pass needs K as a static shape
            k = opts.k_regimes
            log_p = pt.specify_shape(log_p, (None,) * (log_p.ndim - 2) + (k, k))
        # AR lags: the K-regime matrix, expanded inside the filter; else the (J, J) matrix
        chain = log_p if opts.ar_order else log_trans
        total, _ = hmm.pt_forward_log_marginal(log_init, chain, log_lik, lags=opts.ar_order)
        pm.Potential("hmm_loglik", total)
        p_all = pt.exp(parts.transitions.log_matrix(params, data.z_all, opts))  # every month
    graphs = HMMGraphs(log_init, log_trans, log_lik, p_all, e, sig_j)
    return MarkovModel(model=model, design=d, space=space, graphs=graphs)


_FUNCTIONS: dict[str, tuple[Any, Any]] = {}  # structure -> (compiled function, its model)


def component_function(spec: ModelSpec, frame: FitFrame):
    """Compiled map from parameter values (constrained, standardised scale, in `free_RVs` order)
    to `HMMGraphs.outputs()`: the model's own likelihood graph, reused after sampling.

    Compiled once per structure (spec, data shapes and the graph's constants) in this process:
    a refit's posterior on new data of the same shapes sets the cached function's data
    containers instead of compiling again (as `regimes.compiled` does for the log density).

    Returns (function, pm.Model, Design, StateSpace)."""
    from regimes.graphs import compile_function, constants_digest, data_shapes

    built = build_model(spec, frame)
    outputs = built.graphs.outputs()
    key = f"{spec.model_dump_json()}|{data_shapes(built.model)}|{constants_digest(outputs)}"
    if key not in _FUNCTIONS:
        fn = compile_function(built.model.free_RVs, outputs)
        _FUNCTIONS[key] = (fn, built.model)
    fn, model = _FUNCTIONS[key]
    if model is not built.model:  # the cached function reads its own model's containers
        for var in built.model.data_vars:
            model[var.name].set_value(var.get_value(borrow=True))
    return fn, model, built.design, built.space
