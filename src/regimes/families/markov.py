"""Markov-switching regression with K regimes, discrete states marginalised by the forward filter.

    y_t − μ_{s_t}(x_t) = Σ_{i=1..p} φ_i · (y_{t−i} − μ_{s_{t−i}}(x_{t−i})) + σ_{s_t} ε_t,
    μ_k(x) = a_k + x'b_k  (each term switching or shared),  s_t a Markov chain with matrix P.

With p = 0 this is a switching regression (statsmodels' MarkovRegression); with p > 0 it is
Hamilton's switching-mean MS-AR (MarkovAutoregression) and, with factors, a fair-value model with
autocorrelated errors whose anchor μ_k switches. The AR part depends on past regimes, so the
chain runs on the expanded state (s_t, …, s_{t−p}) with K^(p+1) states. The first p observations
are conditioned on, as in statsmodels.

Label switching is removed by an ordering constraint on one parameter across regimes
(`order_by`: the intercept, a switching factor's coefficient, or sigma). Regimes carry names from
the spec. Fair value under regime k is μ_k(x_t); the mixture weights it by regime probabilities
(smoothed in sample, predicted P^h out of sample).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, model_validator

from regimes import hmm
from regimes.config import ModelSpec, PriorSpec
from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.families import validate_options, validate_priors
from regimes.priors import make_prior


class Options(BaseModel):
    """Options of the Markov-switching family."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    k_regimes: int = Field(default=2, ge=1, le=4)
    regime_names: list[str] | None = None
    switching: list[str] = Field(default_factory=lambda: ["intercept"])
    switching_variance: bool = False
    ar_order: int = Field(default=0, ge=0, le=4)
    order_by: str = "intercept"
    transform: Literal["log", "level"] = "level"
    initial: Literal["stationary", "estimated"] = "stationary"
    transition: Literal["constant", "covariates", "changepoint"] = "constant"
    transition_covariates: list[str] = Field(default_factory=list)
    form: Literal["level", "ecm"] = "level"
    transition_concentration: float = Field(default=1.0, gt=0)
    sticky: float = Field(default=0.0, ge=0)
    init: Literal["multistart", "jitter"] = "multistart"
    n_starts: int = Field(default=12, ge=1, le=200)

    @model_validator(mode="after")
    def _consistent(self) -> Options:
        if self.regime_names is not None:
            if len(self.regime_names) != self.k_regimes:
                raise ValueError(
                    f"regime_names has {len(self.regime_names)} names for k_regimes = {self.k_regimes}"
                )
            if len(set(self.regime_names)) != len(self.regime_names):
                raise ValueError("regime_names must be distinct")
        if self.transition == "covariates" and not self.transition_covariates:
            raise ValueError(
                "transition = 'covariates' needs transition_covariates = [factor names]"
            )
        if self.transition != "covariates" and self.transition_covariates:
            raise ValueError("transition_covariates is used only with transition = 'covariates'")
        if self.transition in ("covariates", "changepoint") and self.k_regimes < 2:
            raise ValueError(f"transition = {self.transition!r} needs k_regimes >= 2")
        if self.form == "ecm" and self.ar_order:
            raise ValueError("form = 'ecm' already models the dynamics; set ar_order = 0")
        if self.identified_by_order:
            if self.order_by == "sigma" and not self.switching_variance:
                raise ValueError("order_by = 'sigma' needs switching_variance = true")
            if self.order_by != "sigma" and self.order_by not in self.switching:
                raise ValueError(
                    f"order_by = {self.order_by!r} must be 'sigma' or one of the switching terms "
                    f"{self.switching}"
                )
        return self

    @property
    def identified_by_order(self) -> bool:
        """Labels come from an ordering constraint (a change-point model is ordered by time)."""
        return self.k_regimes > 1 and self.transition != "changepoint"

    @property
    def n_conditioning(self) -> int:
        """Leading observations conditioned on: the AR lags, or one for the error-correction form."""
        return self.ar_order + (1 if self.form == "ecm" else 0)

    @property
    def names(self) -> list[str]:
        """Regime labels (from the spec, else regime_0, regime_1, ...)."""
        return self.regime_names or [f"regime_{k}" for k in range(self.k_regimes)]


PRIORS: dict[str, PriorSpec] = {
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=1.5),
    "beta": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    "sigma": PriorSpec(dist="HalfNormal", sigma=1.0),
    "phi": PriorSpec(dist="Normal", mu=0.0, sigma=0.5),
    # covariate-driven transitions: logit of moving i -> j (vs staying) = bias + z_t' coef
    "transition_bias": PriorSpec(dist="Normal", mu=-3.0, sigma=1.5),
    "transition_coef": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    # change points: probability of staying in each regime but the last (which is absorbing)
    "stay": PriorSpec(dist="Beta", alpha=1.0, beta=1.0),
    # error-correction form: speed of adjustment towards the regime's anchor, short-run terms
    "speed": PriorSpec(dist="Beta", alpha=1.0, beta=5.0),
    "gamma": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
}


def validate_spec(spec: ModelSpec, where: str) -> Options:
    """Check options and prior names; return the typed options."""
    validate_priors(PRIORS, spec, where)
    return validate_options(Options, spec, where)


# ------------------------------------------------------------------ expanded state space


@dataclass(frozen=True)
class StateSpace:
    """The expanded chain on (s_t, ..., s_{t-p}): lag regimes and allowed moves."""

    k: int
    p: int
    lags: np.ndarray  # (J, p+1): lags[j, i] = regime at lag i of expanded state j
    allowed: np.ndarray  # (J, J) bool: expanded move j_prev -> j is consistent

    @property
    def n_states(self) -> int:
        """Number of expanded states, K^(p+1)."""
        return self.lags.shape[0]


def state_space(k: int, p: int) -> StateSpace:
    """Enumerate expanded states and the consistent moves between them."""
    lags = np.array(list(itertools.product(range(k), repeat=p + 1)), dtype=int)
    allowed = np.all(lags[None, :, 1:] == lags[:, None, :-1], axis=-1)  # (prev, cur)
    return StateSpace(k=k, p=p, lags=lags, allowed=allowed)


# ------------------------------------------------------------------ data preparation


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


def _transform(values: np.ndarray, transform: str) -> np.ndarray:
    if transform == "log":
        return np.log(values)
    return values


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
    both = [c for c in opts.transition_covariates if c in opts.switching]
    if both:
        raise ConfigError(
            f"{where}: {both} are listed in both options.switching and "
            "options.transition_covariates; a covariate drives the transitions only"
        )
    fit, scale = frame.fit.to_numpy(), frame.scale
    y_all = _transform(frame.y.to_numpy(), opts.transform)
    y_mean, y_sd = float(y_all[scale].mean()), float(y_all[scale].std()) or 1.0
    y = y_all[fit]
    x_all = frame.X
    x_mean = {c: float(x_all[c][scale].mean()) for c in frame.factors}
    x_sd = {c: float(x_all[c][scale].std()) or 1.0 for c in frame.factors}
    anchor = [t for t in frame.factors if t not in opts.transition_covariates]
    switch_terms = [t for t in anchor if t in opts.switching]
    shared_terms = [t for t in anchor if t not in opts.switching]
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
    )


# ------------------------------------------------------------------ model


def _transition_concentration(opts: Options):
    """Dirichlet concentration of each transition row: base + sticky on the diagonal."""
    k = opts.k_regimes
    return opts.transition_concentration * np.ones((k, k)) + opts.sticky * np.eye(k)


def _anchor_graph(params: dict, x_switch, x_shared, k: int):
    """μ_k(x_t) on the standardised scale for every row of the given factor matrices: (n, K)."""
    import pytensor.tensor as pt

    n = x_switch.shape[0]
    mu = pt.broadcast_to(params["intercept"] * pt.ones((1, k)), (n, k))
    if x_switch.shape[1]:
        mu = mu + pt.dot(x_switch, params["beta_switch"].T)  # beta_switch (K, Ps)
    if x_shared.shape[1]:
        mu = mu + pt.dot(x_shared, params["beta_shared"])[:, None]
    return mu


def _innovations(params: dict, d: Design, opts: Options, space: StateSpace):
    """Standardised one-step innovations per expanded state, (T - n_conditioning, J).

    Level form: the AR(p) filter of y − μ_s (Hamilton). Error-correction form:
    Δy_t + speed_s (y_{t−1} − μ_s(x_{t−1})) − Δx_t'γ, the regime owning anchor and speed."""
    import pytensor.tensor as pt

    k, p = opts.k_regimes, opts.ar_order
    if opts.form == "ecm":
        mu_prev = _anchor_graph(params, d.x_switch[:-1], d.x_shared[:-1], k)
        gap = d.y[:-1, None] - mu_prev
        e = (d.y[1:] - d.y[:-1])[:, None] + params["speed"] * pt.ones(k) * gap
        if d.dx.shape[1]:
            e = e - pt.dot(d.dx, params["gamma"])[:, None]
        return e
    resid = d.y[:, None] - _anchor_graph(params, d.x_switch, d.x_shared, k)  # (T, K)
    n = d.y.shape[0] - p
    lags = space.lags
    e = resid[p:, lags[:, 0]]  # (T-p, J)
    for i in range(1, p + 1):
        e = e - params["phi"][i - 1] * resid[p - i : p - i + n, lags[:, i]]
    return e


def log_transition_graph(params: dict, z, opts: Options):
    """Log transition probabilities: (K, K) constant, or (n, K, K) driven by covariate rows z.

    Covariates: for each move i -> j ≠ i, logit against staying = bias_ij + z_t' coef_ij, so
    P_t[i] = softmax over j (staying is the reference category). Change points: regime k stays
    with probability stay_k or moves to k + 1; the last regime is absorbing. Built in log space
    so impossible moves are exactly −inf without NaN gradients."""
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    k = opts.k_regimes
    if k == 1:
        return pt.zeros((1, 1))
    if opts.transition == "constant":
        return pt.log(params["P"])
    if opts.transition == "changepoint":
        stay = params["stay"]
        idx = np.arange(k - 1)
        logP = pt.full((k, k), -np.inf, dtype="float64")
        logP = pt.set_subtensor(logP[idx, idx], pt.log(stay))
        logP = pt.set_subtensor(logP[idx, idx + 1], pt.log1p(-stay))
        return pt.set_subtensor(logP[k - 1, k - 1], 0.0)
    rows, cols = _moves(k)
    logits = pt.zeros((z.shape[0], k, k))
    moves = params["transition_bias"][None, :] + pt.dot(z, params["transition_coef"].T)  # (n, M)
    logits = pt.set_subtensor(logits[:, rows, cols], moves)
    return log_softmax(logits, axis=-1)


def _moves(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Off-diagonal (from, to) index pairs: the moves a covariate-driven chain parametrises."""
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    return np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])


def _stationary(P):
    """Stationary distribution of a (K, K) transition matrix (solve π(I − P) = 0, Σπ = 1)."""
    import pytensor.tensor as pt

    k = P.shape[-1]
    a = pt.eye(k) - P.T
    a = pt.set_subtensor(a[-1, :], 1.0)
    b = pt.set_subtensor(pt.zeros(k)[-1], 1.0)
    return pt.linalg.solve(a, b)


def hmm_components(params: dict, d: Design, opts: Options, space: StateSpace):
    """PyTensor graphs (log_init (J,), log_trans (J, J) or (n, J, J), log_lik (n, J)), plus the
    innovations e (n, J) and scales (J,) behind log_lik, for posterior predictive draws, and the
    K-regime log matrix (K, K) or (n, K, K) that log_trans expands to the J lag states (the
    likelihood's forward pass uses it directly: `hmm.pt_forward_log_marginal(..., lags=p)`)."""
    import pytensor.tensor as pt

    k, p, c = opts.k_regimes, opts.ar_order, opts.n_conditioning
    e = _innovations(params, d, opts, space)
    sigma = params["sigma"]
    sig_j = sigma[space.lags[:, 0]] if opts.switching_variance else sigma * pt.ones(space.n_states)
    log_lik = -0.5 * pt.log(2 * np.pi) - pt.log(sig_j)[None, :] - 0.5 * (e / sig_j[None, :]) ** 2

    logP = log_transition_graph(params, d.z[c:], opts)  # row r: move from time c + r to c + r + 1
    lags = space.lags
    if p > 0:
        moved = logP[..., lags[:, 1], lags[:, 0]]  # (J,) or (n, J)
        moved = moved[None, :] if logP.ndim == 2 else moved[:, None, :]
        log_trans = pt.where(space.allowed, moved, -np.inf)
    else:
        log_trans = logP
    logP0 = logP if logP.ndim == 2 else logP[0]
    if opts.transition == "changepoint":
        init = pt.set_subtensor(pt.zeros(k)[0], 1.0)
    elif opts.initial == "estimated":
        init = params["p0"]
    else:
        init = _stationary(pt.exp(logP0))
    log_init = pt.log(pt.clip(init, 1e-300, 1.0))[lags[:, p]]
    for i in range(p):
        log_init = log_init + logP0[lags[:, i + 1], lags[:, i]]
    return log_init, log_trans, log_lik, e, sig_j, logP


def build(spec: ModelSpec, frame: FitFrame):
    """The PyMC model: priors, identification and the marginalised HMM likelihood."""
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.transforms import ordered

    opts = Options.model_validate(spec.options)
    priors = {**PRIORS, **spec.priors}
    d = design(frame, opts, where=spec.path or spec.name)
    k = opts.k_regimes
    space = state_space(k, opts.ar_order)
    fit = frame.fit.to_numpy()
    names = opts.names
    rows, cols = _moves(k)
    anchor_terms = [t for t in frame.factors if t in d.switch_terms or t in d.shared_terms]
    coords = {
        "regime": names,
        "regime_to": names,
        "switch_term": d.switch_terms,
        "shared_term": d.shared_terms,
        "anchor_term": anchor_terms,
        "covariate": d.covariates,
        "move": [f"{names[i]}->{names[j]}" for i, j in zip(rows, cols, strict=True)],
        "regime_stay": names[:-1],
        "lag": list(range(1, opts.ar_order + 1)),
        "time": frame.time[fit][opts.n_conditioning :],
    }

    def ordered_kwargs(name: str) -> dict:
        if opts.identified_by_order and opts.order_by == name:
            start = np.linspace(-1.0, 1.0, k)
            if name == "sigma":
                from pymc.distributions.transforms import ChainedTransform, log

                return {
                    "transform": ChainedTransform([log, ordered]),
                    "initval": np.exp(start) * 0.5,
                }
            return {"transform": ordered, "initval": start}
        return {}

    with pm.Model(coords=coords) as model:
        params: dict = {}
        intercept_dims = "regime" if "intercept" in opts.switching and k > 1 else None
        params["intercept"] = make_prior(
            "intercept", priors["intercept"], dims=intercept_dims, **ordered_kwargs("intercept")
        )
        if d.switch_terms:
            cols_b = []
            for term in d.switch_terms:
                cols_b.append(
                    make_prior(
                        f"beta_{term}", priors["beta"], dims="regime", **ordered_kwargs(term)
                    )
                )
            params["beta_switch"] = pm.Deterministic(
                "beta_switch", pt.stack(cols_b, axis=1), dims=("regime", "switch_term")
            )
        if d.shared_terms:
            params["beta_shared"] = make_prior("beta_shared", priors["beta"], dims="shared_term")
        sigma_dims = "regime" if opts.switching_variance and k > 1 else None
        params["sigma"] = make_prior(
            "sigma", priors["sigma"], dims=sigma_dims, **ordered_kwargs("sigma")
        )
        if opts.switching_variance and k == 1:
            params["sigma"] = params["sigma"] * pt.ones(1)
        if opts.ar_order:
            params["phi"] = make_prior("phi", priors["phi"], dims="lag")
        if opts.form == "ecm":
            params["speed"] = make_prior("speed", priors["speed"], dims="regime" if k > 1 else None)
            if anchor_terms:
                params["gamma"] = make_prior("gamma", priors["gamma"], dims="anchor_term")
        if k > 1 and opts.transition == "constant":
            params["P"] = pm.Dirichlet(
                "P", a=_transition_concentration(opts), dims=("regime", "regime_to")
            )
        elif opts.transition == "changepoint":
            params["stay"] = make_prior("stay", priors["stay"], dims="regime_stay")
        elif opts.transition == "covariates":
            params["transition_bias"] = make_prior(
                "transition_bias", priors["transition_bias"], dims="move"
            )
            params["transition_coef"] = make_prior(
                "transition_coef", priors["transition_coef"], dims=("move", "covariate")
            )
        if opts.initial == "estimated" and k > 1 and opts.transition != "changepoint":
            params["p0"] = pm.Dirichlet("p0", a=np.ones(k), dims="regime")
        log_init, log_trans, log_lik, e, sig_j, logP = hmm_components(params, d, opts, space)
        if opts.ar_order:  # the lag-expanded forward pass needs K as a static shape
            logP = pt.specify_shape(logP, (None,) * (logP.ndim - 2) + (k, k))
        total, _ = hmm.pt_forward_log_marginal(log_init, logP, log_lik, lags=opts.ar_order)
        pm.Potential("hmm_loglik", total)
        P_all = pt.exp(log_transition_graph(params, d.z_all, opts))  # every month, for outputs
    graphs = (log_init, log_trans, log_lik, P_all, e, sig_j)
    model.regimes_parts = (d, space, graphs)  # type: ignore[attr-defined]
    return model


# ------------------------------------------------------------------ after sampling

CHUNK = 500  # draws per batch of HMM passes (bounds memory at large T and K^(p+1))


@dataclass
class PosteriorHMM:
    """Per-draw HMM results over the fit window, computed once and shared by the outputs."""

    regime_prob: np.ndarray  # (D, T_fit, K) smoothed, first p months from the lag components
    last_filtered: np.ndarray  # (D, K) p(s_T | y) at the end of the fit window
    log_pred: np.ndarray  # (D, T_fit - c) one-step-ahead log predictive densities
    switch_prob: np.ndarray  # (T_fit,) posterior probability that the regime changed at t (FFBS)
    viterbi_path: np.ndarray  # (T_fit,) most likely path at the posterior-median parameters
    P: np.ndarray  # (D, K, K), or (D, N, K, K) for covariate-driven transitions (every month)


def stack_draws(post: xr.Dataset, name: str) -> np.ndarray:
    """One posterior variable as (draws, ...) with chains and draws stacked into one axis."""
    da = post[name].stack(sample=("chain", "draw")).transpose("sample", ...)
    return np.asarray(da.values)


_MEMO: dict[str, object] = {}


def posterior_hmm(tree, frame: FitFrame, spec: ModelSpec, seed: int = 0) -> PosteriorHMM:
    """Per-draw HMM passes, memoised for the last posterior (derive and log_likelihood share it).

    The memo holds the tree and frame themselves (not their ids, which Python may reuse)."""
    key = (spec.model_dump_json(), seed)
    if not (_MEMO.get("tree") is tree and _MEMO.get("frame") is frame and _MEMO.get("key") == key):
        _MEMO.clear()
        _MEMO.update(
            tree=tree, frame=frame, key=key, result=_posterior_hmm(tree, frame, spec, seed)
        )
    return _MEMO["result"]  # type: ignore[return-value]


def component_function(spec: ModelSpec, frame: FitFrame):
    """Compiled map from parameter values (constrained, standardised scale, in `free_RVs` order)
    to the HMM inputs (log_init, log_trans, log_lik) and the transition matrices of every month
    (P_all), then the innovations and scales behind log_lik: the model's own likelihood graph, reused
    after sampling so derived quantities can never disagree with what was sampled."""
    import pytensor

    model = build(spec, frame)
    d, space, graphs = model.regimes_parts
    fn = pytensor.function(model.free_RVs, list(graphs), on_unused_input="ignore")
    return fn, model, d, space


def _posterior_hmm(tree, frame: FitFrame, spec: ModelSpec, seed: int) -> PosteriorHMM:
    """Run the forward filter, smoother and FFBS for every posterior draw."""
    opts = Options.model_validate(spec.options)
    fn, model, d, space = component_function(spec, frame)
    post = tree["posterior"].to_dataset()
    values = [stack_draws(post, rv.name) for rv in model.free_RVs]
    n_draws = values[0].shape[0]
    k, p, c = opts.k_regimes, opts.ar_order, opts.n_conditioning
    t_fit = d.y.shape[0]
    rng = np.random.default_rng(seed)
    regime_prob = np.empty((n_draws, t_fit, k))
    last_filtered = np.empty((n_draws, k))
    log_pred = np.empty((n_draws, t_fit - c))
    P = np.empty((n_draws, *(() if opts.transition != "covariates" else (len(d.z_all),)), k, k))
    switches = np.zeros(t_fit)
    to_regime = np.eye(k)[space.lags]  # (J, p+1, K) one-hot regime at each lag
    for lo in range(0, n_draws, CHUNK):
        hi = min(lo + CHUNK, n_draws)
        parts = [fn(*[v[i] for v in values]) for i in range(lo, hi)]
        li = np.stack([q[0] for q in parts])
        lt = np.stack([q[1] for q in parts])
        ll = np.stack([q[2] for q in parts])
        P[lo:hi] = np.stack([q[3] for q in parts])
        log_pred_c, filt, smoothed, paths = hmm.posterior_draws(rng, li, lt, ll)
        log_pred[lo:hi] = log_pred_c
        last_filtered[lo:hi] = filt[:, -1] @ to_regime[:, 0]
        regime_prob[lo:hi, c:] = smoothed @ to_regime[:, 0]  # (n, T-c, J) -> (n, T-c, K)
        for t in range(c):  # conditioning months: regime at lag c - t of the first state if kept
            lag = min(c - t, p)
            regime_prob[lo:hi, t] = smoothed[:, 0] @ to_regime[:, lag]
        path = space.lags[paths, 0]
        switches[c + 1 :] += (path[:, 1:] != path[:, :-1]).sum(axis=0)
    med = [np.median(v, axis=0) for v in values]
    li, lt, ll = fn(*med)[:3]
    viterbi = space.lags[hmm.viterbi(li, lt, ll), 0]
    viterbi = np.concatenate([np.full(c, viterbi[0]), viterbi])
    return PosteriorHMM(
        regime_prob=regime_prob,
        last_filtered=last_filtered,
        log_pred=log_pred,
        switch_prob=switches / n_draws,
        viterbi_path=viterbi,
        P=P,
    )


def fair_value_draws(post: xr.Dataset, d: Design, opts: Options) -> np.ndarray:
    """μ_k(x_t) in natural units for every draw, month and regime: (D, N, K)."""
    k = opts.k_regimes
    a = stack_draws(post, "intercept")
    a = a.reshape(a.shape[0], -1) * np.ones((1, k))  # (D, K)
    mu = np.broadcast_to(a[:, None, :], (a.shape[0], d.x_switch_all.shape[0], k)).copy()
    if d.switch_terms:
        mu += np.einsum("tp,dkp->dtk", d.x_switch_all, stack_draws(post, "beta_switch"))
    if d.shared_terms:
        mu += np.einsum("tp,dp->dt", d.x_shared_all, stack_draws(post, "beta_shared"))[:, :, None]
    level = d.y_mean + d.y_sd * mu
    return np.exp(level) if opts.transform == "log" else level


def regime_prob_all(ph: PosteriorHMM, fit: np.ndarray) -> np.ndarray:
    """Regime probabilities for every month: smoothed in the fit window, P^h-predicted after it."""
    n_draws, _, k = ph.regime_prob.shape
    out = np.full((n_draws, len(fit), k), np.nan)
    idx = np.flatnonzero(fit)
    out[:, idx] = ph.regime_prob
    after = np.arange(len(fit)) > idx[-1]
    prob = ph.last_filtered
    for t in np.flatnonzero(after):
        P = ph.P if ph.P.ndim == 3 else ph.P[:, t - 1]  # the move t-1 -> t uses month t-1's P
        prob = np.einsum("dk,dkj->dj", prob, P)
        out[:, t] = prob
    return out


def _break_outputs(prob: np.ndarray, names: list[str], time: pd.DatetimeIndex, q: np.ndarray):
    """Change-point outputs from left-to-right regime probabilities (D, N, K).

    Regimes only move forward, so P(break m by t) = P(s_t >= m) and the probability the break
    happened at t is its increase from t-1. Returns break labels, break_prob (N, M) and the
    break-date quantiles (M, Q) read off the posterior-mean cumulative probability."""
    reached = np.cumsum(prob[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # (D, N, M): P(s_t >= m)
    cdf = np.nan_to_num(reached.mean(axis=0))  # (N, M)
    at = np.diff(cdf, axis=0, prepend=0.0)
    dates = np.full((cdf.shape[1], len(q)), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    for m in range(cdf.shape[1]):
        for i, level in enumerate(q):
            hit = np.flatnonzero(cdf[:, m] >= level)
            if hit.size:
                dates[m, i] = time.values[hit[0]]
    labels = [f"{names[m]}->{names[m + 1]}" for m in range(len(names) - 1)]
    return labels, at, dates


def derive(tree, frame: FitFrame, spec: ModelSpec, quantiles: list[float]) -> xr.Dataset:
    """Regime probabilities, fair value by regime and mixed, durations, transition matrix, paths."""
    opts = Options.model_validate(spec.options)
    post = tree["posterior"].to_dataset()
    d = design(frame, opts)
    ph = posterior_hmm(tree, frame, spec)
    q = np.asarray(quantiles)
    fit = frame.fit.to_numpy()
    names = opts.names
    prob = regime_prob_all(ph, fit)  # (D, N, K)
    fv_k = fair_value_draws(post, d, opts)  # (D, N, K)
    fv_mix = np.einsum("dnk,dnk->dn", prob, fv_k)
    price = frame.y.to_numpy()
    dev = 100.0 * (price[None, :] / fv_mix - 1.0)
    with np.errstate(divide="ignore"):
        durations = 1.0 / (1.0 - np.diagonal(ph.P, axis1=-2, axis2=-1))  # (D, [N,] K)
    time_varying = ph.P.ndim == 4
    # the transition matrix reported: constant P, or its average over the fit window
    P_report = ph.P[:, fit].mean(axis=1) if time_varying else ph.P
    dur_dims = ("time", "regime", "quantile") if time_varying else ("regime", "quantile")
    absorbing = np.isinf(durations).all(axis=0)  # a change point's last regime never ends
    durations = np.where(np.isinf(durations), 0.0, durations)
    path = np.full(len(fit), "", dtype=object)
    path[np.flatnonzero(fit)] = np.asarray(names, dtype=object)[ph.viterbi_path]
    switch = np.full(len(fit), np.nan)
    switch[np.flatnonzero(fit)] = ph.switch_prob

    def qs(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(np.quantile(a, q, axis=0), 0, -1)

    ds = xr.Dataset(
        {
            "price": ("time", price, {"units": frame.units, "long_name": frame.target}),
            "fair_value": (("time", "quantile"), qs(fv_mix), {"units": frame.units}),
            "deviation_pct": (("time", "quantile"), qs(dev), {"units": "%"}),
            "regime_prob": (("time", "regime"), prob.mean(axis=0)),
            "regime_prob_q": (("time", "regime", "quantile"), qs(prob)),
            "fair_value_by_regime": (
                ("time", "regime", "quantile"),
                qs(fv_k),
                {"units": frame.units},
            ),
            "expected_duration": (
                dur_dims,
                np.where(absorbing[..., None], np.inf, qs(durations)),
                {"units": "periods"},
            ),
            "transition": (("regime", "regime_to", "quantile"), qs(P_report)),
            "most_likely_regime": ("time", path.astype(str)),
            "switch_prob": ("time", switch),
            "in_sample": ("time", fit.astype(np.int8)),
            "factor": (("time", "term"), frame.X.to_numpy()),
        },
        coords={
            "time": pd.DatetimeIndex(frame.time).values,
            "quantile": q,
            "regime": names,
            "regime_to": names,
            "term": list(frame.factors),
        },
    )
    ds["regime_prob"].attrs["note"] = (
        "smoothed p(s_t | all data) in the fit window; P^h-predicted after it"
    )
    ds["most_likely_regime"].attrs["note"] = "Viterbi path at the posterior-median parameters"
    ds["switch_prob"].attrs["note"] = (
        "posterior probability that the regime changed at t (FFBS paths)"
    )
    if time_varying:
        ds["transition"].attrs["note"] = "average over the fit window of the monthly matrices"
        ds["transition_t"] = (
            ("time", "regime", "regime_to"),
            np.median(ph.P, axis=0),
            {"note": "posterior median of the month-t matrix (move from t to t+1)"},
        )
        ds["expected_duration"].attrs["note"] = "1 / (1 − P_t[k, k]) at month t's covariates"
    if opts.transition == "changepoint":
        labels, at, dates = _break_outputs(prob, names, frame.time, q)
        ds = ds.assign_coords({"break": labels})
        ds["break_prob"] = (
            ("time", "break"),
            at,
            {"note": "posterior probability that the break happened in month t"},
        )
        ds["break_date"] = (("break", "quantile"), dates, {"note": "posterior quantiles"})
    ds.attrs.update(
        {
            "k_regimes": opts.k_regimes,
            "ar_order": opts.ar_order,
            "order_by": opts.order_by,
            "transform": opts.transform,
            "regime_names": ",".join(names),
            "transition": opts.transition,
            "form": opts.form,
            "log_marginal_mean": float(ph.log_pred.sum(axis=1).mean()),
        }
    )
    return ds


def log_likelihood(tree, frame: FitFrame, spec: ModelSpec) -> xr.Dataset:
    """Pointwise one-step-ahead log predictive densities per draw, for LOO/LFO (group log_likelihood)."""
    opts = Options.model_validate(spec.options)
    ph = posterior_hmm(tree, frame, spec)
    post = tree["posterior"]
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    fit_time = frame.time[frame.fit.to_numpy()][opts.n_conditioning :]
    values = ph.log_pred.reshape(n_chain, n_draw, -1)
    return xr.Dataset(
        {"y": (("chain", "draw", "time"), values)},
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "time": fit_time.values,
        },
    )


def posterior_predictive(tree, frame: FitFrame, spec: ModelSpec, seed: int = 0) -> xr.Dataset:
    """One-step-ahead replicates y_rep_t ~ p(y_t | y_1..t-1, θ) per draw, in natural units.

    The regime is drawn from its one-step prediction p(s_t | y_1..t-1) (the forward filter), then
    y_rep_t = y_t − e_t(s) + σ_s ε: the component's conditional mean plus noise — the same
    predictive the pointwise log-likelihood scores, so PPCs and LOO/LFO judge one model."""
    opts = Options.model_validate(spec.options)
    fn, model, d, _ = component_function(spec, frame)
    post = tree["posterior"]
    values = [stack_draws(post.to_dataset(), rv.name) for rv in model.free_RVs]
    n_draws = values[0].shape[0]
    c = opts.n_conditioning
    rng = np.random.default_rng(seed)
    y_obs = d.y[c:]
    out = np.empty((n_draws, len(y_obs)))
    for lo in range(0, n_draws, CHUNK):
        hi = min(lo + CHUNK, n_draws)
        parts = [fn(*[v[i] for v in values]) for i in range(lo, hi)]
        li, lt, ll, _, e, sig = (np.stack([q[j] for q in parts]) for j in range(6))
        pred = hmm.filter_draws(li, lt, ll).predicted  # (n, T-c, J)
        u = rng.random(pred.shape[:2])[..., None]
        state = np.minimum((np.cumsum(pred, axis=-1) < u).sum(axis=-1), pred.shape[-1] - 1)
        e_s = np.take_along_axis(e, state[..., None], axis=-1)[..., 0]
        sig_s = np.take_along_axis(np.broadcast_to(sig[:, None, :], e.shape), state[..., None], -1)
        out[lo:hi] = y_obs[None, :] - e_s + sig_s[..., 0] * rng.standard_normal(e_s.shape)
    level = d.y_mean + d.y_sd * out
    natural = np.exp(level) if opts.transform == "log" else level
    time = frame.time[frame.fit.to_numpy()][c:]
    return xr.Dataset(
        {
            "y": (
                ("chain", "draw", "time"),
                natural.reshape(post.sizes["chain"], post.sizes["draw"], -1),
            )
        },
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "time": time.values},
    )


def sampling_init(spec: ModelSpec) -> tuple[str, int]:
    """How to start chains: a multi-start optimisation by default (see `sampling.multistart`)."""
    opts = Options.model_validate(spec.options)
    return opts.init, opts.n_starts


def log_jacobian(frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
    """Add to `log_likelihood` (standardised, transformed target; fit months from `n_conditioning`
    on) to get densities of y_t in natural units: −log(y_sd), and −log(y_t) for a log target."""
    opts = Options.model_validate(spec.options)
    d = design(frame, opts)
    fit = frame.fit.to_numpy()
    y = frame.y.to_numpy(dtype=float)[fit][opts.n_conditioning :]
    jac = np.full(len(y), -np.log(d.y_sd))
    if opts.transform == "log":
        jac = jac - np.log(y)
    time = frame.time[fit][opts.n_conditioning :]
    return xr.DataArray(jac, dims="time", coords={"time": time.values})
