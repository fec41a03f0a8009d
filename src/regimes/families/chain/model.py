"""The parts joined once: `ChainModel` (chain × emissions over an expanded state space) builds the
PyMC model with the discrete states marginalised by the forward filter, and the per-draw graphs
the outputs re-evaluate (`ChainGraphs`), so derived quantities never disagree with what was
sampled. `component_function` compiles those graphs once per structure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regimes.families.chain.data import ChainData
from regimes.families.chain.emissions import EmissionParams, Emissions
from regimes.families.chain.space import StateSpace
from regimes.families.chain.transitions import Chain, ChainParams, StationaryInitial, log_clip
from regimes.graphs import (
    CompiledFunction,
    cached,
    compile_function,
    constants_digest,
    data_shapes,
)
from regimes.spec import PriorSpec

# deferred to the functions that use them: PyMC, PyTensor (docs/modules.md#imports)


@dataclass(frozen=True)
class ChainGraphs:
    """PyTensor graphs of one draw's HMM inputs and what the outputs need (n scored months)."""

    log_init: Any  # (J,), or (A, K) with one chain per series
    log_trans: Any  # (J, J) or (n, J, J) on the states, (K, K) or (n, K, K) regime matrices
    # with AR lags (`StateSpace.dense_log_trans` expands them), or (A, K, K) per series
    log_lik: Any  # (n, A, J) each series' log density per state (zero where not scored)
    P_all: Any  # (K, K), (N, K, K) (covariate transitions, every month) or (A, K, K)
    innovations: Any  # (n, A, J) standardised one-step innovations behind log_lik
    scales: Any  # (A, J) their scales
    alpha: Any  # (A, K) the anchors' intercepts
    beta: Any  # (A, K, P) and loadings (model scale)
    log_joint: Any  # (n, J) the month's log density of every series jointly
    log_p: Any = None  # the regime chain's own log matrices of the scored months (not an output)

    def outputs(self) -> list[Any]:
        """The graphs in the order `component_function` returns them."""
        return [
            self.log_init,
            self.log_trans,
            self.log_lik,
            self.P_all,
            self.innovations,
            self.scales,
            self.alpha,
            self.beta,
            self.log_joint,
        ]


OUTPUT_NAMES = (
    "log_init",
    "log_trans",
    "log_lik",
    "P_all",
    "innovations",
    "scales",
    "alpha",
    "beta",
)


@dataclass(frozen=True)
class ChainModel:
    """HMM(initial, transitions, emissions): the regime chain (with its volatility chain) and
    the emissions of every series, on the state space they expand to."""

    chain: Chain
    emissions: Emissions
    space: StateSpace

    @property
    def per_series(self) -> bool:
        """One chain per series (independent chains) instead of one shared chain."""
        return self.chain.transitions.per_series

    @property
    def n_conditioning(self) -> int:
        """Leading months the emissions condition on."""
        return self.emissions.n_conditioning

    def allowed_moves(self) -> Any:
        """(J, J) bool: the only moves between the filtered states whose probability can be
        nonzero (the regime chain's `Transitions.allowed`; a volatility chain moves freely),
        None for any move, or with AR lags (the filter expands the regime matrices itself)."""
        regime = self.chain.transitions.allowed()
        if regime is None or self.per_series:  # per series: each chain on its own K regimes
            return regime
        if self.space.p:
            return None
        a = self.space.regime
        return regime[a[:, None], a[None, :]]

    def declare(self, priors: dict[str, PriorSpec]) -> tuple[EmissionParams, ChainParams]:
        """Every parameter, emissions first (the order seeded runs have always used)."""
        return self.emissions.declare(priors), self.chain.declare(priors)

    def graphs(self, params: tuple[EmissionParams, ChainParams], data: ChainData) -> ChainGraphs:
        """The HMM inputs of the scored months and the graphs the outputs reuse."""
        import pytensor.tensor as pt

        emission, chain = params
        space, c = self.space, self.n_conditioning
        e, sig, log_lik, log_joint = self.emissions.log_likelihood(emission, data, space)
        log_p = self.chain.log_matrix(chain, data, c)  # row r: move c + r -> c + r + 1
        p_all = pt.exp(self.chain.log_matrix(chain, data, c, every_month=True))  # every month
        log_init = self.chain.log_initial(chain, log_p)
        if self.per_series:
            log_trans = log_p
        elif space.volatility is not None:  # product chain: log P_a[a, a'] + log P_v[v, v']
            a, v = space.regime, space.volatility
            log_pv = self.chain.volatility.log_matrix(chain.volatility, data, c)  # type: ignore[union-attr]
            log_trans = log_p[..., a[:, None], a[None, :]] + log_pv[v[:, None], v[None, :]]
            init_v = log_clip(StationaryInitial(space.n_volatility).probabilities(None, log_pv))
            log_init = log_init[a] + init_v[v]
        elif space.p > 0:  # the K-regime matrices: the passes expand them step by step
            lags, p = space.lags, space.p
            log_trans = log_p
            log_p0 = log_p if log_p.ndim == 2 else log_p[0]
            log_init = log_init[lags[:, p]]
            for i in range(p):
                log_init = log_init + log_p0[lags[:, i + 1], lags[:, i]]
        else:
            log_trans = log_p
        alpha, beta = emission.anchor
        return ChainGraphs(
            log_init, log_trans, log_lik, p_all, e, sig, alpha, beta, log_joint, log_p
        )


def build_chain(
    parts: ChainModel,
    data: ChainData,
    priors: dict[str, PriorSpec],
    coords: dict[str, Any],
) -> tuple[Any, ChainGraphs]:
    """The PyMC model: data containers, every part's parameters, the marginalised likelihood
    as one potential; returns (model, graphs)."""
    import pymc as pm
    import pytensor.tensor as pt

    from regimes import hmm  # deferred: PyTensor, kept off regimes.config's path (the family loads)

    with pm.Model(coords={**data.coords, **coords}) as model:
        containers = data.containers()
        params = parts.declare(priors)
        graphs = parts.graphs(params, containers)
        joint = graphs.log_joint  # (n, J): every series' month, jointly
        space = parts.space
        allowed = parts.allowed_moves()  # left-to-right chains: only the possible moves summed
        if parts.per_series:
            total = sum(
                hmm.pt_forward_log_marginal(
                    graphs.log_init[a],
                    graphs.log_trans[a],
                    graphs.log_lik[:, a, :],
                    allowed=allowed,
                )[0]
                for a in range(len(data.series))
            )
        elif space.p > 0:  # the K-regime matrix, expanded inside the filter: O(J K) a step
            k, log_p = space.k, graphs.log_p
            log_p = pt.specify_shape(log_p, (None,) * (log_p.ndim - 2) + (k, k))
            total = hmm.pt_forward_log_marginal(graphs.log_init, log_p, joint, lags=space.p)[0]
        else:
            total = hmm.pt_forward_log_marginal(
                graphs.log_init, graphs.log_trans, joint, allowed=allowed
            )[0]
        pm.Potential("hmm_loglik", total)
    return model, graphs


# ------------------------------------------------------------------ compiled once


ComponentFunction = CompiledFunction  # one draw's values -> outputs; `.batched` for many


def component_function(key: str, model: Any, graphs: ChainGraphs) -> tuple[ComponentFunction, Any]:
    """Compiled map from one draw's free-variable values (constrained, `free_RVs` order) to
    `ChainGraphs.outputs()`, made once per structure (`key`, data shapes and constants) in this
    process. Returns (function, the model whose data containers it reads): a later model of the
    same structure on new data copies its data into that model's containers, so the function
    computes on the new data without compiling again."""
    outputs = graphs.outputs()
    full = f"chain|{key}|{data_shapes(model)}|{constants_digest(outputs)}"
    fn, owner = cached(full, lambda: (compile_function(model.free_RVs, outputs), model))
    if owner is not model:  # the cached function reads its own model's containers
        for var in model.data_vars:
            owner[var.name].set_value(var.get_value(borrow=True))
    return fn, owner
