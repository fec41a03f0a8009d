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
        if self.order_by == "sigma" and not self.switching_variance:
            raise ValueError("order_by = 'sigma' needs switching_variance = true")
        if self.order_by != "sigma" and self.order_by not in self.switching and self.k_regimes > 1:
            raise ValueError(
                f"order_by = {self.order_by!r} must be 'sigma' or one of the switching terms {self.switching}"
            )
        return self

    @property
    def names(self) -> list[str]:
        """Regime labels (from the spec, else regime_0, regime_1, ...)."""
        return self.regime_names or [f"regime_{k}" for k in range(self.k_regimes)]


PRIORS: dict[str, PriorSpec] = {
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=1.5),
    "beta": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    "sigma": PriorSpec(dist="HalfNormal", sigma=1.0),
    "phi": PriorSpec(dist="Normal", mu=0.0, sigma=0.5),
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
    fit = frame.fit.to_numpy()
    y = _transform(frame.y.to_numpy()[fit], opts.transform)
    y_mean, y_sd = float(y.mean()), float(y.std()) or 1.0
    x_all = frame.X
    x_mean = {c: float(x_all[c][fit].mean()) for c in frame.factors}
    x_sd = {c: float(x_all[c][fit].std()) or 1.0 for c in frame.factors}
    switch_terms = [t for t in frame.factors if t in opts.switching]
    shared_terms = [t for t in frame.factors if t not in opts.switching]

    def std(cols: list[str]) -> np.ndarray:
        if not cols:
            return np.zeros((len(frame.time), 0))
        return np.column_stack([(x_all[c].to_numpy() - x_mean[c]) / x_sd[c] for c in cols])

    xs, xc = std(switch_terms), std(shared_terms)
    return Design(
        y=(y - y_mean) / y_sd,
        x_switch=xs[fit],
        x_shared=xc[fit],
        x_switch_all=xs,
        x_shared_all=xc,
        switch_terms=switch_terms,
        shared_terms=shared_terms,
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


def hmm_components(params: dict, d: Design, opts: Options, space: StateSpace):
    """PyTensor graphs (log_init (J,), log_trans (J, J), log_lik (T-p, J)) from parameter tensors."""
    import pytensor.tensor as pt

    k, p = opts.k_regimes, opts.ar_order
    mu = pt.broadcast_to(params["intercept"] * pt.ones((1, k)), (d.y.shape[0], k))
    if d.switch_terms:
        mu = mu + pt.dot(d.x_switch, params["beta_switch"].T)  # beta_switch (K, Ps)
    if d.shared_terms:
        mu = mu + pt.dot(d.x_shared, params["beta_shared"])[:, None]
    resid = d.y[:, None] - mu  # (T, K)
    n = d.y.shape[0] - p
    lags = space.lags
    e = resid[p:, lags[:, 0]]  # (T-p, J)
    for i in range(1, p + 1):
        e = e - params["phi"][i - 1] * resid[p - i : p - i + n, lags[:, i]]
    sigma = params["sigma"]
    sig_j = sigma[lags[:, 0]] if opts.switching_variance else sigma * pt.ones(space.n_states)
    log_lik = -0.5 * pt.log(2 * np.pi) - pt.log(sig_j)[None, :] - 0.5 * (e / sig_j[None, :]) ** 2

    P = params["P"]  # (K, K) rows sum to one
    logP = pt.log(P)
    log_trans = (
        pt.where(space.allowed, logP[lags[:, 1], lags[:, 0]][None, :], -np.inf) if p > 0 else logP
    )
    if opts.initial == "estimated":
        init = params["p0"]
    else:
        a = pt.eye(k) - P.T
        a = pt.set_subtensor(a[-1, :], 1.0)
        b = pt.set_subtensor(pt.zeros(k)[-1], 1.0)
        init = pt.linalg.solve(a, b)
    log_init = pt.log(pt.clip(init, 1e-300, 1.0))[lags[:, p]]
    for i in range(p):
        log_init = log_init + logP[lags[:, i + 1], lags[:, i]]
    return log_init, log_trans, log_lik


def build(spec: ModelSpec, frame: FitFrame):
    """The PyMC model: priors, ordered identification and the marginalised HMM likelihood."""
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.transforms import ordered

    opts = Options.model_validate(spec.options)
    priors = {**PRIORS, **spec.priors}
    d = design(frame, opts, where=spec.path or spec.name)
    k = opts.k_regimes
    space = state_space(k, opts.ar_order)
    fit = frame.fit.to_numpy()
    coords = {
        "regime": opts.names,
        "regime_to": opts.names,
        "switch_term": d.switch_terms,
        "shared_term": d.shared_terms,
        "lag": list(range(1, opts.ar_order + 1)),
        "time": frame.time[fit][opts.ar_order :],
    }

    def ordered_kwargs(name: str) -> dict:
        if k > 1 and opts.order_by == name:
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
            cols = []
            for term in d.switch_terms:
                cols.append(
                    make_prior(
                        f"beta_{term}", priors["beta"], dims="regime", **ordered_kwargs(term)
                    )
                )
            params["beta_switch"] = pm.Deterministic(
                "beta_switch", pt.stack(cols, axis=1), dims=("regime", "switch_term")
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
        if k > 1:
            params["P"] = pm.Dirichlet(
                "P", a=_transition_concentration(opts), dims=("regime", "regime_to")
            )
        else:
            params["P"] = pt.ones((1, 1))
        if opts.initial == "estimated" and k > 1:
            params["p0"] = pm.Dirichlet("p0", a=np.ones(k), dims="regime")
        log_init, log_trans, log_lik = hmm_components(params, d, opts, space)
        total, _ = hmm.pt_forward_log_marginal(log_init, log_trans, log_lik)
        pm.Potential("hmm_loglik", total)
    model.regimes_parts = (d, space, (log_init, log_trans, log_lik))  # type: ignore[attr-defined]
    return model


# ------------------------------------------------------------------ after sampling

CHUNK = 500  # draws per batch of HMM passes (bounds memory at large T and K^(p+1))


@dataclass
class PosteriorHMM:
    """Per-draw HMM results over the fit window, computed once and shared by the outputs."""

    regime_prob: np.ndarray  # (D, T_fit, K) smoothed, first p months from the lag components
    last_filtered: np.ndarray  # (D, K) p(s_T | y) at the end of the fit window
    log_pred: np.ndarray  # (D, T_fit - p) one-step-ahead log predictive densities
    switch_prob: np.ndarray  # (T_fit,) posterior probability that the regime changed at t (FFBS)
    viterbi_path: np.ndarray  # (T_fit,) most likely path at the posterior-median parameters
    P: np.ndarray  # (D, K, K)


def _stack(post: xr.Dataset, name: str) -> np.ndarray:
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
    to the HMM inputs (log_init, log_trans, log_lik): the model's own likelihood graph, reused
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
    values = [_stack(post, rv.name) for rv in model.free_RVs]
    n_draws = values[0].shape[0]
    k, p = opts.k_regimes, opts.ar_order
    t_fit = d.y.shape[0]
    rng = np.random.default_rng(seed)
    regime_prob = np.empty((n_draws, t_fit, k))
    last_filtered = np.empty((n_draws, k))
    log_pred = np.empty((n_draws, t_fit - p))
    switches = np.zeros(t_fit)
    to_regime = np.eye(k)[space.lags]  # (J, p+1, K) one-hot regime at each lag
    for lo in range(0, n_draws, CHUNK):
        hi = min(lo + CHUNK, n_draws)
        parts = [fn(*[v[i] for v in values]) for i in range(lo, hi)]
        li = np.stack([q[0] for q in parts])
        lt = np.stack([q[1] for q in parts])
        ll = np.stack([q[2] for q in parts])
        log_pred_c, filt, smoothed, paths = hmm.posterior_draws(rng, li, lt, ll)
        log_pred[lo:hi] = log_pred_c
        last_filtered[lo:hi] = filt[:, -1] @ to_regime[:, 0]
        regime_prob[lo:hi, p:] = smoothed @ to_regime[:, 0]  # (n, T-p, J) -> (n, T-p, K)
        for t in range(p):  # the conditioning months: regime at lag p - t of the first state
            regime_prob[lo:hi, t] = smoothed[:, 0] @ to_regime[:, p - t]
        path = space.lags[paths, 0]
        switches[p + 1 :] += (path[:, 1:] != path[:, :-1]).sum(axis=0)
    med = [np.median(v, axis=0) for v in values]
    li, lt, ll = fn(*med)
    viterbi = space.lags[hmm.viterbi(li, lt, ll), 0]
    viterbi = np.concatenate([np.full(p, viterbi[0]), viterbi])
    P = _stack(post, "P") if k > 1 else np.ones((n_draws, 1, 1))
    return PosteriorHMM(
        regime_prob=regime_prob,
        last_filtered=last_filtered,
        log_pred=log_pred,
        switch_prob=switches / n_draws,
        viterbi_path=viterbi,
        P=P,
    )


def _fair_value_draws(post: xr.Dataset, d: Design, opts: Options) -> np.ndarray:
    """μ_k(x_t) in natural units for every draw, month and regime: (D, N, K)."""
    k = opts.k_regimes
    a = _stack(post, "intercept")
    a = a.reshape(a.shape[0], -1) * np.ones((1, k))  # (D, K)
    mu = np.broadcast_to(a[:, None, :], (a.shape[0], d.x_switch_all.shape[0], k)).copy()
    if d.switch_terms:
        mu += np.einsum("tp,dkp->dtk", d.x_switch_all, _stack(post, "beta_switch"))
    if d.shared_terms:
        mu += np.einsum("tp,dp->dt", d.x_shared_all, _stack(post, "beta_shared"))[:, :, None]
    level = d.y_mean + d.y_sd * mu
    return np.exp(level) if opts.transform == "log" else level


def _regime_prob_all(ph: PosteriorHMM, fit: np.ndarray) -> np.ndarray:
    """Regime probabilities for every month: smoothed in the fit window, P^h-predicted after it."""
    n_draws, _, k = ph.regime_prob.shape
    out = np.full((n_draws, len(fit), k), np.nan)
    idx = np.flatnonzero(fit)
    out[:, idx] = ph.regime_prob
    after = np.arange(len(fit)) > idx[-1]
    prob = ph.last_filtered
    for t in np.flatnonzero(after):
        prob = np.einsum("dk,dkj->dj", prob, ph.P)
        out[:, t] = prob
    return out


def derive(tree, frame: FitFrame, spec: ModelSpec, quantiles: list[float]) -> xr.Dataset:
    """Regime probabilities, fair value by regime and mixed, durations, transition matrix, paths."""
    opts = Options.model_validate(spec.options)
    post = tree["posterior"].to_dataset()
    d = design(frame, opts)
    ph = posterior_hmm(tree, frame, spec)
    q = np.asarray(quantiles)
    fit = frame.fit.to_numpy()
    names = opts.names
    prob = _regime_prob_all(ph, fit)  # (D, N, K)
    fv_k = _fair_value_draws(post, d, opts)  # (D, N, K)
    fv_mix = np.einsum("dnk,dnk->dn", prob, fv_k)
    price = frame.y.to_numpy()
    dev = 100.0 * (price[None, :] / fv_mix - 1.0)
    with np.errstate(divide="ignore"):
        durations = 1.0 / (1.0 - np.diagonal(ph.P, axis1=1, axis2=2))  # (D, K)
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
            "expected_duration": (("regime", "quantile"), qs(durations), {"units": "periods"}),
            "transition": (("regime", "regime_to", "quantile"), qs(ph.P)),
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
    ds.attrs.update(
        {
            "k_regimes": opts.k_regimes,
            "ar_order": opts.ar_order,
            "order_by": opts.order_by,
            "transform": opts.transform,
            "regime_names": ",".join(names),
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
    fit_time = frame.time[frame.fit.to_numpy()][opts.ar_order :]
    values = ph.log_pred.reshape(n_chain, n_draw, -1)
    return xr.Dataset(
        {"y": (("chain", "draw", "time"), values)},
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "time": fit_time.values,
        },
    )


def sampling_init(spec: ModelSpec) -> tuple[str, int]:
    """How to start chains: a multi-start optimisation by default (see `sampling.multistart`)."""
    opts = Options.model_validate(spec.options)
    return opts.init, opts.n_starts
