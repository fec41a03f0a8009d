"""Random-walk coefficients: a Bayesian time-varying-coefficient regression.

    y_t = a_t + x_t'b_t + e_t,   e_t ~ Normal(0, σ) iid,
    b_{k,t} = b_{k,0} + τ_k · Σ_{s≤t} z_{k,s},   z ~ Normal(0, 1)   (Gaussian random walks).

The principled version of the rolling regression the source research used: each coefficient
(intercept and factors; option `varying`, default all) drifts as a random walk whose per-period
step sd τ is estimated, so the data decide how much drift there is and every month gets a
posterior band. The 40-month rolling OLS is computed alongside as the baseline.

Two exact treatments of the walks (option `states`):
- "marginal" (default): the walks and b_0 are integrated out by a Kalman filter, NUTS samples
  only τ and σ, and coefficient paths are drawn afterwards per draw by forward-filtering
  backward-sampling (the kernels are `regimes.kalman`). On the flagship study's price (σ ≪ τ:
  the walks pin the data) this is the one that converges.
- "noncentred": NUTS samples b_0, τ and the innovations z (b_t = b_0 + τ·cumsum(z)); fine when
  the data are weak per period, but it fails on the flagship study's price (tree depth 10, R-hat ≈ 2).
Fitted on standardised variables (scale-window mean and sd, as the static family); coefficients
are reported back in natural units. After the fit window each draw's last coefficients are held
fixed (the random walk's expectation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, field_validator

from regimes.dataset import FitFrame
from regimes.draws import by_chain, per_draw, stack_draws
from regimes.draws import quantiles as quantiles_of
from regimes.errors import ConfigError
from regimes.families.base import Family, Fit, Simulation
from regimes.families.schema import fair_value_variables
from regimes.families.static import bayes_r2, ols_r2, target_log_jacobian, with_target
from regimes.figures import save_figure
from regimes.kalman import kalman_filter, pt_kalman_loglik, sample_states
from regimes.priors import make_prior
from regimes.scaling import Scaling
from regimes.spec import ModelSpec, PriorSpec

# deferred to the functions that use them: PyMC, PyTensor, matplotlib, Pillow (docs/modules.md#imports)

INTERCEPT = "intercept"


class Options(BaseModel):
    """Options of the random-walk-coefficient family."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    transform: Literal["log", "level"] = "log"
    states: Literal["marginal", "noncentred"] = "marginal"
    varying: list[str] | None = None  # terms whose coefficients drift; None: all (with intercept)
    rolling_window: int = Field(default=40, ge=3)

    @field_validator("varying")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("varying must not repeat a term")
        return value


PRIORS: dict[str, PriorSpec] = {
    "coef0": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),  # coefficients at the first month
    "tau": PriorSpec(dist="HalfNormal", sigma=0.05),  # per-period innovation sd (standardised)
    "sigma": PriorSpec(dist="HalfNormal", sigma=1.0),
}


@dataclass(frozen=True)
class Design:
    """Standardised design over every month, the fit-window mask and the standardisation."""

    terms: list[str]  # intercept first, then the factors
    varying: list[str]
    y_all: np.ndarray  # (N,) the target on the model's scale (NaN where unobserved)
    x_all: np.ndarray  # (N, K) standardised regressors, first column ones
    fit: np.ndarray  # (N,) bool
    scaling: Scaling

    @property
    def varying_idx(self) -> np.ndarray:
        """Column positions of the drifting terms."""
        return np.array([self.terms.index(t) for t in self.varying], dtype=int)

    @property
    def y_fit_std(self) -> np.ndarray:
        """The standardised target over the fit window (the observed data)."""
        return self.y_all[self.fit]


def design(frame: FitFrame, opts: Options, where: str = "model options") -> Design:
    """Check the options against the experiment's factors and standardise the data."""
    terms = [INTERCEPT, *frame.factors]
    varying = terms if opts.varying is None else list(opts.varying)
    unknown = [t for t in varying if t not in terms]
    if unknown:
        raise ConfigError(
            f"{where}: key 'options.varying': {unknown} are not terms of this experiment; "
            f"use any of {terms} (factors from data.factors, plus 'intercept')"
        )
    if opts.rolling_window < len(terms) + 2:
        raise ConfigError(
            f"{where}: key 'options.rolling_window' = {opts.rolling_window} is too short for "
            f"{len(terms)} regression terms; use at least {len(terms) + 2} (default 40)"
        )
    varying = [t for t in terms if t in varying]  # model order
    scaling = frame.scaling(opts.transform)
    x = scaling.factors(frame.X.to_numpy(dtype=float), list(frame.factors))
    return Design(
        terms=terms,
        varying=varying,
        y_all=scaling.target(frame.y.to_numpy(dtype=float)),
        x_all=np.column_stack([np.ones(len(x)), x]),
        fit=frame.fit.to_numpy().astype(bool),
        scaling=scaling,
    )


def _prior_moments(prior: PriorSpec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and diagonal covariance of the Normal prior on the first month's coefficients."""
    params = prior.params
    mu = np.broadcast_to(np.asarray(params.get("mu", 0.0), dtype=float), (k,)).copy()
    sd = np.broadcast_to(np.asarray(params.get("sigma", 1.0), dtype=float), (k,))
    return mu, np.diag(sd**2)


def _tau_full(post: xr.Dataset, d: Design) -> np.ndarray:
    """Per-draw step sd of every term, zero for constant ones, shape (S, K)."""
    out = np.zeros((post.sizes["chain"] * post.sizes["draw"], len(d.terms)))
    if d.varying:
        out[:, d.varying_idx] = stack_draws(post, "tau")
    return out


def _filter_draws(post: xr.Dataset, d: Design, spec: ModelSpec):
    """Kalman filter of every posterior draw on the fit window (marginal states)."""
    m0, p0 = _prior_moments({**PRIORS, **spec.priors}["coef0"], len(d.terms))
    tau_full = _tau_full(post, d)
    x = d.x_all[d.fit]
    return kalman_filter(d.y_fit_std, x, tau_full, stack_draws(post, "sigma"), m0, p0), tau_full


def coef_paths(post: xr.Dataset, d: Design, spec: ModelSpec, seed: int = 0) -> np.ndarray:
    """Standardised coefficient paths per draw over the fit window, shape (S, T_fit, K): drawn
    by backward sampling (marginal states) or rebuilt from b_0, τ and z (non-centred)."""
    if Options.model_validate(spec.options).states == "marginal":
        (means, covs, _), tau_full = _filter_draws(post, d, spec)
        return sample_states(means, covs, tau_full, np.random.default_rng(seed))
    coef0 = stack_draws(post, "coef0")  # (S, K)
    n = int(d.fit.sum())
    paths = np.repeat(coef0[:, None, :], n, axis=1)
    if d.varying:
        tau = stack_draws(post, "tau")  # (S, V)
        z = stack_draws(post, "z")  # (S, T-1, V)
        paths[:, 1:, d.varying_idx] += np.cumsum(z * tau[:, None, :], axis=1)
    return paths


def extend_paths(paths: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Coefficients for every month: the fit-window path, held at its last value afterwards
    (and at its first value before the window), shape (S, N, K)."""
    pos = np.clip(np.cumsum(fit) - 1, 0, int(fit.sum()) - 1)
    return paths[:, pos, :]


def natural_units(
    coef_std: np.ndarray, scaling: Scaling, factors: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised coefficients (..., K; intercept first) to natural units: the factor slopes
    b·sd_y/sd_x (..., K−1) and the intercept on the transformed scale,
    y_mean + sd_y·(a − Σ b·mean_x/sd_x) (...)."""
    slopes = scaling.slope(coef_std[..., 1:], factors)
    intercept = scaling.intercept(coef_std[..., 0], coef_std[..., 1:], factors)
    return slopes, intercept


def rolling_ols(y: np.ndarray, x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """OLS of y on [1, x] over each trailing `window` months: coefficients (N, 1+P) and R² (N,),
    NaN where the window is not yet full or holds a missing value."""
    n, p = x.shape
    coef = np.full((n, p + 1), np.nan)
    r2 = np.full(n, np.nan)
    design_ = np.column_stack([np.ones(n), x])
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    for t in range(window - 1, n):
        sl = slice(t - window + 1, t + 1)
        if not ok[sl].all():
            continue
        yy, xx = y[sl], design_[sl]
        b, *_ = np.linalg.lstsq(xx, yy, rcond=None)
        coef[t] = b
        sst = ((yy - yy.mean()) ** 2).sum()
        r2[t] = 1.0 - ((yy - xx @ b) ** 2).sum() / sst if sst > 0 else np.nan
    return coef, r2


def _fair_value(post: xr.Dataset, d: Design, opts: Options, spec: ModelSpec, seed: int = 0):
    """Per-draw fair value x_t'b_t over every month (natural units, (S, N)), the standardised
    regression part mu (S, N) and the coefficient paths (S, N, K) it came from."""
    paths = extend_paths(coef_paths(post, d, spec, seed=seed), d.fit)  # (S, N, K) standardised
    mu_std = np.einsum("snk,nk->sn", paths, d.x_all)
    return d.scaling.natural(mu_std), mu_std, paths


class RandomWalkFamily(Family):
    """Time-varying-coefficient regression with Gaussian random-walk coefficients."""

    name = "random_walk"
    options_model = Options
    priors = PRIORS

    def validate_spec(self, spec: ModelSpec, where: str) -> Options:
        """Check options and prior names, and that marginal states have a Normal coef0 prior."""
        opts = super().validate_spec(spec, where)
        coef0 = spec.priors.get("coef0")
        not_normal = coef0 is not None and (
            coef0.dist != "Normal" or bool(set(coef0.params) - {"mu", "sigma"})
        )
        if opts.states == "marginal" and not_normal:
            raise ConfigError(
                f"{where}: key 'priors.coef0': states = 'marginal' integrates b_0 out exactly, "
                f"so its prior must be Normal(mu, sigma); found {coef0.dist} {coef0.params}. "
                "Use a Normal prior or options.states = 'noncentred'"
            )
        return opts

    def build(self, spec: ModelSpec, frame: FitFrame):
        """The PyMC model on the fit window: random-walk coefficients (marginalised by a Kalman
        filter, or sampled non-centred), iid errors."""
        import pymc as pm
        import pytensor.tensor as pt

        opts = self.options(spec)
        priors = {**PRIORS, **spec.priors}
        d = design(frame, opts, where=spec.path or spec.name or "model spec")
        fit_time = frame.time[d.fit]
        coords = {
            "time": fit_time,
            "term": d.terms,
            "varying_term": d.varying,
            "step": fit_time[1:],
        }
        n, k = int(d.fit.sum()), len(d.terms)
        select = np.eye(k)[d.varying_idx]  # (V, K) one-hot rows: varying term -> column
        with pm.Model(coords=coords) as model:
            x = pm.Data("x", d.x_all[d.fit], dims=("time", "term"))
            y_obs = pm.Data("y_obs", d.y_fit_std, dims="time")  # data: refits reuse the compile
            tau = make_prior("tau", priors["tau"], dims="varying_term") if d.varying else None
            sigma = make_prior("sigma", priors["sigma"])
            if opts.states == "marginal":
                m0, p0 = _prior_moments(priors["coef0"], k)
                tau_full = pt.dot(tau, select) if d.varying else pt.zeros(k)
                loglik = pt_kalman_loglik(y_obs, x, tau_full, sigma, m0, p0)
                pm.Potential("kalman_loglik", loglik.sum())
            else:
                coef0 = make_prior("coef0", priors["coef0"], dims="term")
                coef = coef0[None, :] * pt.ones((n, 1))
                if d.varying:
                    z = pm.Normal("z", 0.0, 1.0, dims=("step", "varying_term"))
                    steps = pt.cumsum(z * tau[None, :], axis=0)
                    walk = pt.concatenate([pt.zeros((1, len(d.varying))), steps], axis=0)
                    coef = coef + pt.dot(walk, select)
                mu = (x * coef).sum(axis=1)
                pm.Normal("y", mu=mu, sigma=sigma, observed=y_obs, dims="time")
        return model

    def simulate(
        self,
        spec: ModelSpec,
        frame: FitFrame,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        latent: dict[str, np.ndarray] | None = None,
    ) -> Simulation:
        """Coefficient walks b_t = b_{t−1} + τ ε_t from b_0 (the given `coef0` and steps `z` of
        a non-centred model, else drawn from their priors), then y_t = x_t'b_t + σ ε_t, on the
        model's scale."""
        opts = self.options(spec)
        d = design(frame, opts)
        x = d.x_all[d.fit]
        n, k = x.shape
        tau = np.zeros(k)
        if d.varying:
            tau[d.varying_idx] = np.asarray(params["tau"], dtype=float)
        if "coef0" in params:  # a non-centred model's own b_0 and steps
            coef0 = np.asarray(params["coef0"], dtype=float)
            steps = np.zeros((n - 1, k))
            if d.varying:
                steps[:, d.varying_idx] = np.asarray(params["z"], dtype=float)
        else:
            m0, p0 = _prior_moments({**PRIORS, **spec.priors}["coef0"], k)
            coef0 = rng.normal(m0, np.sqrt(np.diag(p0)))
            steps = rng.standard_normal((n - 1, k))
        walk = coef0[None, :] + np.vstack([np.zeros((1, k)), np.cumsum(steps * tau, axis=0)])
        z = (x * walk).sum(axis=1) + float(params["sigma"]) * rng.standard_normal(n)
        return Simulation(with_target(frame, z, opts.transform), dict(params), {"coef": walk})

    def derive(self, fit: Fit, quantiles: list[float]) -> xr.Dataset:
        """Fair value, deviation, coefficient paths (natural units) with bands, and the rolling
        OLS."""
        frame, spec = fit.frame, fit.spec
        opts = self.options(spec)
        post = fit.posterior
        d = design(frame, opts)
        scaling = d.scaling
        q = np.asarray(quantiles)
        fit_mask = d.fit
        fv_draws, mu_std, paths = _fair_value(post, d, opts, spec)
        slopes, intercept = natural_units(paths, scaling, list(frame.factors))  # (S, N, P), (S, N)
        r2 = bayes_r2(mu_std[:, fit_mask], d.y_fit_std)
        roll_coef, roll_r2 = rolling_ols(
            scaling.transformed(d.y_all), frame.X.to_numpy(dtype=float), opts.rolling_window
        )

        log = opts.transform == "log"
        y_name = f"{'log ' if log else ''}{frame.target}"
        coef_units = f"change in {y_name} per unit of the factor"
        tau_nat = np.full((paths.shape[0], len(frame.factors)), np.nan)
        if d.varying:
            tau = stack_draws(post, "tau")
            for j, term in enumerate(d.varying):
                if term != INTERCEPT:
                    k = frame.factors.index(term)
                    tau_nat[:, k] = scaling.slope(tau[:, j], [term])
        held = "each draw's last fit-window coefficients held fixed (random-walk expectation)"
        ds = xr.Dataset(
            {
                **fair_value_variables(frame, fv_draws, q),
                "coef": (
                    ("time", "term", "quantile"),
                    quantiles_of(slopes, q),
                    {
                        "long_name": f"time-varying coefficient of {y_name} on each factor",
                        "units": coef_units,
                        "out_of_sample": held,
                    },
                ),
                "coef_prob_positive": (
                    ("time", "term"),
                    (slopes > 0).mean(axis=0),
                    {"long_name": "posterior probability that the coefficient is positive"},
                ),
                "intercept": (
                    ("time", "quantile"),
                    quantiles_of(intercept, q),
                    {"long_name": f"time-varying intercept of {y_name}", "units": y_name},
                ),
                "coef_innovation_sd": (
                    ("term", "quantile"),
                    quantiles_of(tau_nat, q),
                    {
                        "long_name": "per-period sd of the coefficient's random-walk steps "
                        "(NaN: held constant)",
                        "units": coef_units,
                    },
                ),
                "rolling_coef": (
                    ("time", "term"),
                    roll_coef[:, 1:],
                    {
                        "long_name": f"{opts.rolling_window}-period trailing rolling OLS "
                        "coefficient (baseline)",
                        "units": coef_units,
                    },
                ),
                "rolling_r2": (
                    "time",
                    roll_r2,
                    {"long_name": f"R² of the {opts.rolling_window}-period trailing rolling OLS"},
                ),
                "r2_draws_q": ("quantile", np.quantile(r2, q)),
            },
            coords={
                "time": pd.DatetimeIndex(frame.time).values,
                "quantile": q,
                "term": list(frame.factors),
            },
        )
        ds.attrs.update(
            {
                "r2_bayes": float(np.median(r2)),
                "r2_ols": ols_r2(frame, opts.transform),
                "transform": opts.transform,
                "varying": ",".join(d.varying),
                "rolling_window": opts.rolling_window,
                "out_of_sample_coef": held,
                "sigma_median": float(np.median(stack_draws(post, "sigma")) * scaling.y_sd_of()),
            }
        )
        return ds

    def log_likelihood(self, fit: Fit) -> xr.Dataset:
        """Pointwise log-likelihood `y` (chain, draw, time) of the standardised target: the
        one-step-ahead predictive densities log p(y_t | y_<t) from the Kalman filter (marginal
        states), or PyMC's log p(y_t | b_t, σ) as recorded (non-centred)."""
        frame, spec = fit.frame, fit.spec
        opts = self.options(spec)
        if opts.states == "noncentred":
            return fit.tree["log_likelihood"].to_dataset()
        post = fit.posterior
        d = design(frame, opts)
        (_, _, ll), _ = _filter_draws(post, d, spec)
        values = ll.reshape(post.sizes["chain"], post.sizes["draw"], -1)
        return xr.Dataset(
            {"y": (("chain", "draw", "time"), values)},
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "time": frame.time[d.fit].values,
            },
            attrs={"note": "one-step-ahead predictive densities log p(y_t | y_<t) (Kalman filter)"},
        )

    def log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """−log(y_sd), and −log(y_t) for a log target, per fit-window month (the static
        family's standardisation)."""
        return target_log_jacobian(frame, self.options(spec).transform)

    def natural_posterior(self, fit: Fit) -> xr.Dataset:
        """σ and each drifting coefficient's monthly step sd τ in natural units, per draw (the
        paths themselves are derived.nc's `coef`)."""
        frame, opts, post = fit.frame, self.options(fit.spec), fit.posterior
        d = design(frame, opts)
        log = opts.transform == "log"
        y_name = f"{'log ' if log else ''}{frame.target}"
        out = {
            "sigma": by_chain(
                stack_draws(post, "sigma") * d.scaling.y_sd_of(),
                post,
                units="log points" if log else frame.units,
                long_name="sd of the observation noise",
            )
        }
        if d.varying:
            tau = stack_draws(post, "tau")
            steps = np.stack(
                [
                    tau[:, j] * d.scaling.y_sd_of()
                    if term == INTERCEPT
                    else d.scaling.slope(tau[:, j], [term])
                    for j, term in enumerate(d.varying)
                ],
                axis=1,
            )
            out["tau"] = by_chain(
                steps,
                post,
                ("varying_term",),
                {"varying_term": d.varying},
                units=f"change in {y_name} (intercept) or in its slope per unit of the factor, "
                "per period",
                long_name="sd of each drifting coefficient's step per period",
            )
        ds = xr.Dataset(out)
        ds.attrs["scale"] = f"natural units of {frame.target}"
        return ds

    def posterior_predictive(self, fit: Fit, seed: int = 0) -> xr.Dataset:
        """One-step-ahead replicates y_rep_t ~ p(y_t | y_<t, τ, σ) in natural units: the Kalman
        prediction (the coefficients' filtered law at t−1 plus one step of drift) plus noise —
        the same predictive the pointwise log-likelihood scores."""
        frame, spec = fit.frame, fit.spec
        opts = self.options(spec)
        post = fit.posterior
        d = design(frame, opts)
        k = len(d.terms)
        m0, p0 = _prior_moments({**PRIORS, **spec.priors}["coef0"], k)
        (means, covs, _), tau_full = _filter_draws(post, d, spec)
        x = d.x_all[d.fit]
        sigma = stack_draws(post, "sigma")
        q = tau_full[:, :, None] * np.eye(k)[None] * tau_full[:, None, :]
        m_prev = np.concatenate([np.broadcast_to(m0, (len(sigma), 1, k)), means[:, :-1]], 1)
        p_prev = np.concatenate([np.broadcast_to(p0, (len(sigma), 1, *p0.shape)), covs[:, :-1]], 1)
        p_pred = p_prev + q[:, None]  # prior p0 gets one step of drift too, as in the filter
        p_pred[:, 0] = p0
        mean = np.einsum("stk,tk->st", m_prev, x)
        var = np.einsum("tk,stkl,tl->st", x, p_pred, x) + sigma[:, None] ** 2
        rng = np.random.default_rng(seed)
        rep = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
        natural = d.scaling.natural(rep)
        return xr.Dataset(
            {
                "y": (
                    ("chain", "draw", "time"),
                    natural.reshape(post.sizes["chain"], post.sizes["draw"], -1),
                )
            },
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "time": frame.time[d.fit].values,
            },
        )

    def fair_value_draws(self, fit: Fit) -> xr.Dataset:
        """Fair value x_t'b_t (back-transformed) per draw and month of the frame: the same
        coefficient paths as `derive` (seed 0), held at each draw's last fit-window values after
        the window, so a frame extended by future factor values gives fair value along them."""
        frame, spec = fit.frame, fit.spec
        opts = self.options(spec)
        fv, _, _ = _fair_value(fit.posterior, design(frame, opts), opts, spec)
        time = {"time": pd.DatetimeIndex(frame.time).values}
        return xr.Dataset({"fair_value": per_draw(fv, ("time",), time)})

    def figures(
        self, derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str
    ) -> list[Path]:
        """The coefficient paths with their bands against the rolling OLS (`coef_paths`)."""
        from regimes.figures.coefficients import plot_coefficients

        fig = plot_coefficients(derived, source=source)
        return save_figure(fig, Path(folder), "coef_paths")


FAMILY = RandomWalkFamily()
