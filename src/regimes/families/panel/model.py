"""The panel PyMC model: partially pooled regime-specific sensitivities, each asset's Normal
emission around its own anchor, and the regimes marginalised by the forward filter.

    y[t, a] = α[a, s_t] + Σ_p m[a, p] β[a, s_t, p] x[t, p] + σ[a(, s_t)] ε,
    β[a, k, p] = μ[k, p] + τ[k, p] z[a, k, p],   α[a, k] = α̅[k] + ω[k] u[a, k]   (non-centred)

With one shared chain the emission log density of month t in regime k is the sum over assets of
their Normal log densities (masked where an asset is missing), so the forward filter runs on a
(T, K) array exactly as for one series. With independent chains every asset filters its own chain
(same priors) and the likelihood is the sum of the assets' marginals. The chain's initial-state
and transition parts are the Markov family's (`markov.components`), reused unchanged."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from regimes import hmm
from regimes.dataset import FitFrame
from regimes.families.markov.components import StationaryInitial, moves, parts_for
from regimes.families.markov.components import transition_concentration as concentration
from regimes.families.panel.design import PanelDesign, design
from regimes.families.panel.options import PRIORS, Options
from regimes.priors import make_prior
from regimes.spec import ModelSpec

DATA_FIELDS = ("y", "mask", "x", "dx", "term_mask", "z", "z_all")


@dataclass(frozen=True)
class PanelGraphs:
    """PyTensor graphs the outputs re-evaluate per draw (so they never disagree with the fit)."""

    log_init: Any  # (K,) shared chain, (A, K) independent chains
    log_trans: Any  # (K, K) or (n, K, K) shared; (A, K, K) independent
    log_lik: Any  # (n, A, K) each asset's masked Normal log density per regime, n = T - c
    mean: Any  # (n, A, K) standardised one-step conditional means
    sigma: Any  # (A, K) standardised innovation sds
    P_all: Any  # (K, K), (N, K, K) (covariate transitions) or (A, K, K): every month's matrix

    def outputs(self) -> list[Any]:
        """The graphs in the order `component_function` returns them."""
        return [self.log_init, self.log_trans, self.log_lik, self.mean, self.sigma, self.P_all]


@dataclass(frozen=True)
class PanelModel:
    """A built model with its design and the graphs of its HMM inputs."""

    model: Any
    design: PanelDesign
    graphs: PanelGraphs


def coords_of(frame: FitFrame, d: PanelDesign, opts: Options) -> dict[str, Any]:
    """The model's named dimensions."""
    names = opts.names
    rows, cols = moves(opts.k_regimes)
    pairs = zip(*anchor_pairs(d), strict=True)
    anchored = {"anchor_coef": [f"{names[k]}:{d.terms[p]}" for k, p in pairs]}
    return {
        **(anchored if d.regime_mask is not None else {}),
        "asset": d.assets,
        "regime": names,
        "regime_to": names,
        "term": d.terms,
        "covariate": d.covariates,
        "move": [f"{names[i]}->{names[j]}" for i, j in zip(rows, cols, strict=True)],
        "regime_stay": names[:-1],
        "time": frame.time[frame.fit.to_numpy()][opts.n_conditioning :],
    }


def anchor_pairs(d: PanelDesign) -> tuple[np.ndarray, np.ndarray]:
    """(regime, term) indices of the anchor sets' coefficients (none without `anchors`)."""
    if d.regime_mask is None:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return np.nonzero(d.regime_mask)


def _anchor_hierarchy(priors: dict, d: PanelDesign, n_regimes: int) -> dict[str, Any]:
    """μ, τ and β of regime-specific anchor sets: one population mean, spread and asset
    deviation per (regime, term) pair of a set; zero elsewhere, by structure."""
    import pymc as pm
    import pytensor.tensor as pt

    rows, cols = anchor_pairs(d)
    shape = (n_regimes, len(d.terms))

    def scatter(values: Any, lead: tuple[int, ...] = ()) -> Any:
        return pt.set_subtensor(pt.zeros((*lead, *shape))[..., rows, cols], values)

    mu = make_prior("mu_anchor", priors["mu"], dims="anchor_coef")
    tau = make_prior("tau_anchor", priors["tau"], dims="anchor_coef")
    z = pm.Normal("beta_z", 0.0, 1.0, dims=("asset", "anchor_coef"))
    n_assets = len(d.assets)
    return {
        "mu": pm.Deterministic("mu", scatter(mu), dims=("regime", "term")),
        "tau": pm.Deterministic("tau", scatter(tau), dims=("regime", "term")),
        "beta": pm.Deterministic(
            "beta", scatter(mu[None] + tau[None] * z, (n_assets,)), dims=("asset", "regime", "term")
        ),
    }


def _ordered(opts: Options, name: str) -> dict[str, Any]:
    """Identification: the population mean named by `order_by` increases across regimes."""
    from pymc.distributions.transforms import ordered

    if not (opts.ordered and opts.order_by == name):
        return {}
    return {"transform": ordered, "initval": np.linspace(-1.0, 1.0, opts.k_regimes)}


def declare_emissions(priors: dict, opts: Options, d: PanelDesign) -> dict[str, Any]:
    """The hierarchy (inside the model context): population means and spreads, non-centred
    asset deviations, asset sds. Returns α (A, K), β (A, K, P) and σ (A, K) graphs."""
    import pymc as pm
    import pytensor.tensor as pt

    k, n_assets = opts.k_regimes, len(d.assets)
    regime = "regime" if k > 1 else None
    a_pop = make_prior("intercept", priors["intercept"], dims=regime, **_ordered(opts, "intercept"))
    a_sd = make_prior("intercept_sd", priors["intercept_sd"], dims=regime)
    a_z = pm.Normal("intercept_z", 0.0, 1.0, dims=("asset", "regime"))
    alpha = pm.Deterministic(
        "alpha", a_pop * pt.ones(k) + a_sd * pt.ones(k) * a_z, dims=("asset", "regime")
    )
    out: dict[str, Any] = {"alpha": alpha}
    if d.terms and d.regime_mask is not None:
        out.update(_anchor_hierarchy(priors, d, k))
    elif d.terms:
        columns = [
            make_prior(f"mu_{t}", priors["mu"], dims="regime", **_ordered(opts, t)) for t in d.terms
        ]
        mu = pm.Deterministic("mu", pt.stack(columns, axis=1), dims=("regime", "term"))
        tau = make_prior("tau", priors["tau"], dims=("regime", "term"))
        z = pm.Normal("beta_z", 0.0, 1.0, dims=("asset", "regime", "term"))
        out["beta"] = pm.Deterministic(
            "beta", mu[None] + tau[None] * z, dims=("asset", "regime", "term")
        )
    dims = ("asset", "regime") if opts.switching_variance else "asset"
    sigma = make_prior("sigma", priors["sigma"], dims=dims)
    out["sigma"] = sigma if opts.switching_variance else sigma[:, None] * pt.ones((n_assets, k))
    if opts.form == "ecm":  # each asset's speed back to its regime's anchor; short-run terms
        out["speed"] = make_prior("speed", priors["speed"], dims=("asset", "regime"))
        if d.terms:
            out["gamma"] = make_prior("gamma", priors["gamma"], dims=("asset", "term"))
    return out


def emission_log_lik(params: dict[str, Any], data: Any, opts: Options) -> tuple[Any, Any]:
    """Each asset's Normal log density per scored month and regime, zero where masked:
    (T - c, A, K), and the one-step conditional means (T - c, A, K).

    level: y[t] ~ N(anchor[t], σ); ecm: Δy[t] = −speed (y[t−1] − anchor[t−1]) + Δx[t]'γ + σ ε,
    scored where the asset is observed in both months."""
    import pytensor.tensor as pt

    anchor = params["alpha"][None, :, :] * pt.ones((data.y.shape[0], 1, 1))
    if "beta" in params:  # (A, K, P) * (A, 1, P) masked terms, then x (T, P)
        beta = params["beta"] * data.term_mask[:, None, :]
        anchor = anchor + pt.einsum("tp,akp->tak", data.x, beta)
    if opts.form == "ecm":
        prev = data.y[:-1, :, None]
        mean = prev - params["speed"][None] * (prev - anchor[:-1])
        if "gamma" in params:
            short = pt.dot(data.dx, (params["gamma"] * data.term_mask).T)  # (T-1, A)
            mean = mean + short[:, :, None]
        y, mask = data.y[1:], data.mask[1:] * data.mask[:-1]
    else:
        mean, y, mask = anchor, data.y, data.mask
    sig = params["sigma"][None, :, :]
    resid = (y[:, :, None] - mean) / sig
    log_lik = -0.5 * np.log(2 * np.pi) - pt.log(sig) - 0.5 * resid**2
    return log_lik * mask[:, :, None], mean


def data_containers(d: PanelDesign) -> PanelDesign:
    """The design's likelihood arrays as `pm.Data` containers (compile once, refit on new data)."""
    import pymc as pm

    return dataclasses.replace(d, **{name: pm.Data(name, getattr(d, name)) for name in DATA_FIELDS})


def build_model(spec: ModelSpec, frame: FitFrame) -> PanelModel:
    """Priors, identification, the pooled emissions and the marginalised chain(s)."""
    import pymc as pm
    import pytensor.tensor as pt

    opts = Options.model_validate(spec.options)
    priors = {**PRIORS, **spec.priors}
    d = design(frame, opts, where=spec.path or spec.name)
    chain_opts = opts.chain_options()
    k = opts.k_regimes
    with pm.Model(coords=coords_of(frame, d, opts)) as model:
        data = data_containers(d)
        params = declare_emissions(priors, opts, d)
        log_lik, mean = emission_log_lik(params, data, opts)
        c = opts.n_conditioning
        if opts.chain == "shared":
            parts = parts_for(chain_opts)
            params.update(parts.transitions.declare(priors, chain_opts))
            params.update(parts.initial.declare(chain_opts))
            log_p = parts.transitions.log_matrix(params, data.z[c:], chain_opts)
            log_p0 = log_p if log_p.ndim == 2 else log_p[0]
            init = parts.initial.probabilities(params, log_p0, chain_opts)
            log_init = pt.log(pt.clip(init, 1e-300, 1.0))
            total, _ = hmm.pt_forward_log_marginal(log_init, log_p, log_lik.sum(axis=1))
            p_all = pt.exp(parts.transitions.log_matrix(params, data.z_all, chain_opts))
        else:  # one chain per asset, same priors: the sum of the assets' marginals
            conc = np.broadcast_to(concentration(chain_opts), (len(d.assets), k, k))
            P = pm.Dirichlet("P", a=conc, dims=("asset", "regime", "regime_to"))
            log_p = pt.log(P)
            stationary = StationaryInitial()
            inits = [
                stationary.probabilities({}, log_p[a], chain_opts) for a in range(len(d.assets))
            ]
            log_init = pt.log(pt.clip(pt.stack(inits), 1e-300, 1.0))
            total = sum(
                hmm.pt_forward_log_marginal(log_init[a], log_p[a], log_lik[:, a, :])[0]
                for a in range(len(d.assets))
            )
            p_all = P
        pm.Potential("hmm_loglik", total)
    graphs = PanelGraphs(log_init, log_p, log_lik, mean, params["sigma"], p_all)
    return PanelModel(model=model, design=d, graphs=graphs)


def component_function(spec: ModelSpec, frame: FitFrame):
    """Compiled map from parameter values (constrained, `free_RVs` order) to
    `PanelGraphs.outputs()`. Returns (function, pm.Model, PanelDesign)."""
    from regimes.graphs import compile_function

    built = build_model(spec, frame)
    model = built.model
    fn = compile_function(model.free_RVs, built.graphs.outputs())
    return fn, model, built.design
