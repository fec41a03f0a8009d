"""The parts a Markov-switching model is composed of, each with one job (as dynamax composes
`HMMInitialState`, `HMMTransitions` and `HMMEmissions`):

- an initial-state distribution over regimes (stationary, estimated, or the first regime);
- transitions (a constant matrix, covariate-driven, or left-to-right change points), giving the
  log transition matrix (K, K) or one per month (n, K, K);
- emissions (level regression, AR(p) deviations from the anchor, or error correction towards
  it), giving standardised one-step innovations per expanded state.

Each part declares its own PyMC variables (`declare`, called inside the model context, in the
order the family's parameters have always been created, so seeded runs are unchanged) and maps
parameter graphs to HMM inputs. `parts_for(opts)` picks the parts an options model asks for;
`model.py` joins them into one marginalised likelihood.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from regimes.families.markov.design import Design, StateSpace
from regimes.families.markov.options import Options
from regimes.priors import make_prior
from regimes.spec import PriorSpec

Params = dict[str, Any]


def moves(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Off-diagonal (from, to) index pairs: the moves a covariate-driven chain parametrises."""
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    return np.array([i for i, _ in pairs], dtype=int), np.array([j for _, j in pairs], dtype=int)


def transition_concentration(opts: Options) -> np.ndarray:
    """Dirichlet concentration of each transition row: base + sticky on the diagonal."""
    k = opts.k_regimes
    return opts.transition_concentration * np.ones((k, k)) + opts.sticky * np.eye(k)


# ------------------------------------------------------------------ transitions


class Transitions(ABC):
    """How the regime moves from month to month."""

    time_varying: bool = False  # one matrix per month (driven by covariates)

    @abstractmethod
    def declare(self, priors: dict[str, PriorSpec], opts: Options) -> Params:
        """Create the transition parameters (inside the PyMC model context)."""

    @abstractmethod
    def log_matrix(self, params: Params, z: Any, opts: Options) -> Any:
        """Log transition probabilities: (K, K), or (n, K, K) for covariate rows z (n, Q).
        Built in log space so impossible moves are exactly −inf without NaN gradients."""


class ConstantTransitions(Transitions):
    """One matrix P with Dirichlet rows (concentration plus `sticky` on the diagonal)."""

    def declare(self, priors: dict[str, PriorSpec], opts: Options) -> Params:
        import pymc as pm

        if opts.k_regimes == 1:
            return {}
        p = pm.Dirichlet("P", a=transition_concentration(opts), dims=("regime", "regime_to"))
        return {"P": p}

    def log_matrix(self, params: Params, z: Any, opts: Options) -> Any:
        import pytensor.tensor as pt

        return pt.zeros((1, 1)) if opts.k_regimes == 1 else pt.log(params["P"])


class CovariateTransitions(Transitions):
    """For each move i -> j ≠ i, logit against staying = bias_ij + z_t' coef_ij, so P_t[i] is
    a softmax over j with staying as the reference category (time-varying transitions)."""

    time_varying = True

    def declare(self, priors: dict[str, PriorSpec], opts: Options) -> Params:
        return {
            "transition_bias": make_prior(
                "transition_bias", priors["transition_bias"], dims="move"
            ),
            "transition_coef": make_prior(
                "transition_coef", priors["transition_coef"], dims=("move", "covariate")
            ),
        }

    def log_matrix(self, params: Params, z: Any, opts: Options) -> Any:
        import pytensor.tensor as pt
        from pytensor.tensor.special import log_softmax

        k = opts.k_regimes
        rows, cols = moves(k)
        logits = pt.zeros((z.shape[0], k, k))
        change = params["transition_bias"][None, :] + pt.dot(z, params["transition_coef"].T)
        logits = pt.set_subtensor(logits[:, rows, cols], change)
        return log_softmax(logits, axis=-1)


class ChangePointTransitions(Transitions):
    """Left to right: regime k stays with probability stay_k or moves to k + 1; the last
    regime is absorbing."""

    def declare(self, priors: dict[str, PriorSpec], opts: Options) -> Params:
        return {"stay": make_prior("stay", priors["stay"], dims="regime_stay")}

    def log_matrix(self, params: Params, z: Any, opts: Options) -> Any:
        import pytensor.tensor as pt

        k = opts.k_regimes
        stay = params["stay"]
        idx = np.arange(k - 1)
        log_p = pt.full((k, k), -np.inf, dtype="float64")
        log_p = pt.set_subtensor(log_p[idx, idx], pt.log(stay))
        log_p = pt.set_subtensor(log_p[idx, idx + 1], pt.log1p(-stay))
        return pt.set_subtensor(log_p[k - 1, k - 1], 0.0)


# ------------------------------------------------------------------ initial state


class InitialState(ABC):
    """The distribution of the regime in the first modelled month."""

    def declare(self, opts: Options) -> Params:
        """Create the initial-state parameters, if any (inside the PyMC model context)."""
        return {}

    @abstractmethod
    def probabilities(self, params: Params, log_p0: Any, opts: Options) -> Any:
        """Initial regime probabilities (K,), given the first month's log transition matrix."""


class StationaryInitial(InitialState):
    """The chain's stationary distribution: solve π(I − P) = 0 with Σπ = 1."""

    def probabilities(self, params: Params, log_p0: Any, opts: Options) -> Any:
        import pytensor.tensor as pt

        p = pt.exp(log_p0)
        k = p.shape[-1]
        a = pt.eye(k) - p.T
        a = pt.set_subtensor(a[-1, :], 1.0)
        b = pt.set_subtensor(pt.zeros(k)[-1], 1.0)
        return pt.linalg.solve(a, b)


class EstimatedInitial(InitialState):
    """A Dirichlet(1, ..., 1) distribution estimated with the other parameters."""

    def declare(self, opts: Options) -> Params:
        import pymc as pm

        return {"p0": pm.Dirichlet("p0", a=np.ones(opts.k_regimes), dims="regime")}

    def probabilities(self, params: Params, log_p0: Any, opts: Options) -> Any:
        return params["p0"]


class FirstRegimeInitial(InitialState):
    """A change-point chain starts in its first regime."""

    def probabilities(self, params: Params, log_p0: Any, opts: Options) -> Any:
        import pytensor.tensor as pt

        return pt.set_subtensor(pt.zeros(opts.k_regimes)[0], 1.0)


# ------------------------------------------------------------------ emissions


def anchor_graph(params: Params, x_switch: Any, x_shared: Any, k: int) -> Any:
    """μ_k(x_t) on the standardised scale for every row of the given factor matrices: (n, K)."""
    import pytensor.tensor as pt

    n = x_switch.shape[0]
    mu = pt.broadcast_to(params["intercept"] * pt.ones((1, k)), (n, k))
    if "beta_switch" in params:  # declared when the anchor has switching terms
        mu = mu + pt.dot(x_switch, params["beta_switch"].T)  # beta_switch (K, Ps)
    if "beta_shared" in params:
        mu = mu + pt.dot(x_shared, params["beta_shared"])[:, None]
    return mu


def _switching_slope(term: str, priors: dict[str, PriorSpec], opts: Options) -> Any:
    """One regime-specific slope `beta_<term>` (regime): independent per regime, ordered where it
    identifies the regimes, or with `pool_regimes` partially pooled (non-centred):
    beta = beta_pop + beta_tau · z, one population slope and spread per term."""
    import pymc as pm

    ordered = _ordered_kwargs(opts, term)
    if not opts.pool_regimes or ordered or opts.k_regimes < 2:
        return make_prior(f"beta_{term}", priors["beta"], dims="regime", **ordered)
    pop = make_prior(f"beta_pop_{term}", priors["beta"])
    tau = make_prior(f"beta_tau_{term}", priors["beta_tau"])
    z = pm.Normal(f"beta_z_{term}", 0.0, 1.0, dims="regime")
    return pm.Deterministic(f"beta_{term}", pop + tau * z, dims="regime")


def _ordered_kwargs(opts: Options, name: str) -> dict[str, Any]:
    """Identification: the parameter named by `order_by` is ordered across regimes."""
    from pymc.distributions.transforms import ordered

    if not (opts.identified_by_order and opts.order_by == name):
        return {}
    if name == "sigma":
        return _ordered_scales(opts.k_regimes)
    return {"transform": ordered, "initval": np.linspace(-1.0, 1.0, opts.k_regimes)}


def _ordered_scales(n: int) -> dict[str, Any]:
    """`n` positive scales in increasing order (regimes by sigma; the volatility chain's calm <
    turbulent): log, then ordered."""
    from pymc.distributions.transforms import ChainedTransform, log, ordered

    return {
        "transform": ChainedTransform([log, ordered]),
        "default_transform": None,  # else PyMC applies its own log on top of this chain
        "initval": np.exp(np.linspace(-1.0, 1.0, n)) * 0.5,
    }


class Emissions(ABC):
    """The regime-conditional density of the target: a Normal innovation around the regime's
    anchor μ_k(x_t) = a_k + x_t'b_k (each term switching or shared), scale σ_k or σ."""

    def declare(self, priors: dict[str, PriorSpec], opts: Options, d: Design) -> Params:
        """Create the anchor's and the scale's parameters, then the form's own."""
        import pymc as pm
        import pytensor.tensor as pt

        k = opts.k_regimes
        params: Params = {}
        intercept_dims = "regime" if "intercept" in opts.switching and k > 1 else None
        params["intercept"] = make_prior(
            "intercept",
            priors["intercept"],
            dims=intercept_dims,
            **_ordered_kwargs(opts, "intercept"),
        )
        if d.switch_terms and d.anchor_mask is not None:
            # one coefficient per (regime, term) of the anchor sets; zeros elsewhere, by structure
            rows, cols = np.nonzero(d.anchor_mask)
            coefs = make_prior("beta_anchor", priors["beta"], dims="anchor_coef")
            matrix = pt.zeros(d.anchor_mask.shape)
            matrix = pt.set_subtensor(matrix[rows, cols], coefs)
            params["beta_switch"] = pm.Deterministic(
                "beta_switch", matrix, dims=("regime", "switch_term")
            )
        elif d.switch_terms:
            columns = [_switching_slope(t, priors, opts) for t in d.switch_terms]
            params["beta_switch"] = pm.Deterministic(
                "beta_switch", pt.stack(columns, axis=1), dims=("regime", "switch_term")
            )
        if d.shared_terms:
            params["beta_shared"] = make_prior("beta_shared", priors["beta"], dims="shared_term")
        if opts.volatility_regimes > 1:  # the volatility chain's scales, calmest first
            params["sigma"] = make_prior(
                "sigma",
                priors["sigma"],
                dims="volatility",
                **_ordered_scales(opts.volatility_regimes),
            )
            params.update(self.declare_form(priors, opts, d))
            return params
        sigma_dims = "regime" if opts.switching_variance and k > 1 else None
        params["sigma"] = make_prior(
            "sigma", priors["sigma"], dims=sigma_dims, **_ordered_kwargs(opts, "sigma")
        )
        if opts.switching_variance and k == 1:
            params["sigma"] = params["sigma"] * pt.ones(1)
        params.update(self.declare_form(priors, opts, d))
        return params

    def declare_form(self, priors: dict[str, PriorSpec], opts: Options, d: Design) -> Params:
        """Parameters of the form's dynamics (none for a plain level regression)."""
        return {}

    @abstractmethod
    def innovations(self, params: Params, d: Design, opts: Options, space: StateSpace) -> Any:
        """Standardised one-step innovations per expanded state, (T − n_conditioning, J)."""

    def scales(self, params: Params, opts: Options, space: StateSpace) -> Any:
        """Innovation sd per expanded state (J,): σ of the current regime, or one σ."""
        import pytensor.tensor as pt

        sigma = params["sigma"]
        if space.volatility is not None:
            return sigma[space.volatility]
        if opts.switching_variance:
            return sigma[space.lags[:, 0]]
        return sigma * pt.ones(space.n_states)

    def log_likelihood(self, params: Params, d: Design, opts: Options, space: StateSpace):
        """(innovations e (n, J), scales (J,), Normal log densities (n, J))."""
        import pytensor.tensor as pt

        e = self.innovations(params, d, opts, space)
        sig = self.scales(params, opts, space)
        log_lik = -0.5 * pt.log(2 * np.pi) - pt.log(sig)[None, :] - 0.5 * (e / sig[None, :]) ** 2
        if d.weight is not None:  # months outside the training window count zero (padded refits)
            log_lik = log_lik * d.weight[opts.n_conditioning :, None]
        return e, sig, log_lik


class LevelEmissions(Emissions):
    """y_t − μ_{s_t}(x_t) = Σ_i φ_i (y_{t−i} − μ_{s_{t−i}}(x_{t−i})) + σ ε_t: a switching
    regression (p = 0) or Hamilton's switching-mean MS-AR(p), on the lag-expanded states."""

    def declare_form(self, priors: dict[str, PriorSpec], opts: Options, d: Design) -> Params:
        if not opts.ar_order:
            return {}
        return {"phi": make_prior("phi", priors["phi"], dims="lag")}

    def innovations(self, params: Params, d: Design, opts: Options, space: StateSpace) -> Any:
        k, p = opts.k_regimes, opts.ar_order
        resid = d.y[:, None] - anchor_graph(params, d.x_switch, d.x_shared, k)  # (T, K)
        lags = space.lags
        e = resid[p:, lags[:, 0]]  # (T-p, J)
        for i in range(1, p + 1):  # lag i: rows p-i .. T-1-i (static bounds, any T)
            e = e - params["phi"][i - 1] * resid[p - i : -i, lags[:, i]]
        return e


class ErrorCorrectionEmissions(Emissions):
    """Δy_t = −speed_s (y_{t−1} − μ_s(x_{t−1})) + Δx_t'γ + Σ_i ψ_i Δy_{t−i} + σ ε_t: the regime
    owns the anchor and the speed at which the target returns to it; the lagged changes (option
    `short_run_lags`) absorb the autocorrelation monthly averaging puts into monthly changes."""

    def declare_form(self, priors: dict[str, PriorSpec], opts: Options, d: Design) -> Params:
        k = opts.k_regimes
        out = {"speed": make_prior("speed", priors["speed"], dims="regime" if k > 1 else None)}
        if d.switch_terms or d.shared_terms:
            out["gamma"] = make_prior("gamma", priors["gamma"], dims="anchor_term")
        if opts.short_run_lags:
            out["psi"] = make_prior("psi", priors["psi"], dims="sr_lag")
        return out

    def innovations(self, params: Params, d: Design, opts: Options, space: StateSpace) -> Any:
        import pytensor.tensor as pt

        k = opts.k_regimes
        mu_prev = anchor_graph(params, d.x_switch[:-1], d.x_shared[:-1], k)
        gap = d.y[:-1, None] - mu_prev
        dy = d.y[1:] - d.y[:-1]  # row t - 1 holds Δy_t
        e = dy[:, None] + params["speed"] * pt.ones(k) * gap
        if "gamma" in params:  # short-run terms of the anchor factors' changes
            e = e - pt.dot(d.dx, params["gamma"])[:, None]
        lags = opts.short_run_lags
        if lags:  # Δy_t also moves with Δy_{t-1..t-L}: months 1 + L.. are scored
            e = e[lags:]
            for i in range(1, lags + 1):
                e = e - params["psi"][i - 1] * dy[lags - i : -i][:, None]
        if space.volatility is not None:  # product states: the anchor regime of each
            e = e[:, space.lags[:, 0]]
        return e


# ------------------------------------------------------------------ choosing the parts


@dataclass(frozen=True)
class Parts:
    """The three parts one Markov-switching model is made of."""

    initial: InitialState
    transitions: Transitions
    emissions: Emissions


_TRANSITIONS: dict[str, type[Transitions]] = {
    "constant": ConstantTransitions,
    "covariates": CovariateTransitions,
    "changepoint": ChangePointTransitions,
}
_EMISSIONS: dict[str, type[Emissions]] = {"level": LevelEmissions, "ecm": ErrorCorrectionEmissions}


def parts_for(opts: Options) -> Parts:
    """The parts the options ask for (`transition`, `form`, `initial`)."""
    if opts.transition == "changepoint":
        initial: InitialState = FirstRegimeInitial()
    elif opts.initial == "estimated" and opts.k_regimes > 1:
        initial = EstimatedInitial()
    else:
        initial = StationaryInitial()
    return Parts(
        initial=initial,
        transitions=_TRANSITIONS[opts.transition](),
        emissions=_EMISSIONS[opts.form](),
    )
