"""Static fair-value regression: target = a + X·b + u, with iid or AR(1) errors u.

Fair value is the regression part a + X·b (back-transformed for a log target); the error term u
is the price's deviation from it. Level regressions of a price on macro factors have strongly
autocorrelated residuals: with iid errors the posterior bands on b (and so on fair value) are far
too narrow, so AR(1) errors are the default. The likelihood is written as the exact sequence of
one-step conditionals p(y_t | y_{t-1}) (stationary start), so the pointwise log-likelihood is
the one-step-ahead predictive density model comparison needs.

Everything is fitted on standardised variables (fit-window mean and sd), so default priors are
scale-free; coefficients are reported back in natural units.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict

from regimes.dataset import FitFrame
from regimes.draws import by_chain, per_draw, stack_draws, transform
from regimes.draws import quantiles as quantiles_of
from regimes.families.base import Family, Fit, Simulation
from regimes.families.schema import fair_value_variables
from regimes.priors import make_prior
from regimes.spec import ModelSpec, PriorSpec

# deferred to the functions that use them: PyMC, PyTensor (docs/modules.md#imports)


class Options(BaseModel):
    """Options of the static family."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    transform: Literal["log", "level"] = "log"
    errors: Literal["iid", "ar1"] = "ar1"


PRIORS: dict[str, PriorSpec] = {
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=2.0),
    "beta": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    "sigma": PriorSpec(dist="HalfNormal", sigma=1.0),
    "rho": PriorSpec(dist="Uniform", lower=-0.999, upper=0.999),
}


def bayes_r2(mu: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bayesian R² per draw (Gelman et al. 2019): var(fit) / (var(fit) + var(y − fit))."""
    var_fit = mu.var(axis=1)
    var_res = (y[None, :] - mu).var(axis=1)
    return var_fit / (var_fit + var_res)


def ols_r2(frame: FitFrame, how: str) -> float:
    """Classical OLS R² on the fit window: the figure the source research reports."""
    fit = frame.fit.to_numpy()
    y = transform(frame.y.to_numpy()[fit], how)
    x = np.column_stack([np.ones(fit.sum()), frame.X.to_numpy()[fit]])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    return float(1.0 - resid.var() / y.var())


def target_log_jacobian(frame: FitFrame, how: str) -> xr.DataArray:
    """log |d z_t / d y_t| per fit-window month, z = (transform(y) − mean) / sd on the frame's
    scaling: −log(sd) for a level target, −log(sd) − log(y_t) for a log target (shared by the
    families with one target and no months conditioned on)."""
    fit = frame.fit.to_numpy()
    jac = frame.scaling(how).log_jacobian(frame.y.to_numpy(dtype=float)[fit])
    return xr.DataArray(jac, dims="time", coords={"time": frame.time[fit].values})


def ar1_errors(rng: np.random.Generator, sigma: float, rho: float, n: int) -> np.ndarray:
    """n AR(1) errors u_t = ρ u_{t−1} + σ ε_t from the stationary start (sd σ / √(1 − ρ²))."""
    u = np.empty(n)
    u[0] = rng.normal(0.0, sigma / np.sqrt(1.0 - rho**2))
    for t in range(1, n):
        u[t] = rho * u[t - 1] + rng.normal(0.0, sigma)
    return u


def with_target(frame: FitFrame, z: np.ndarray, how: str) -> FitFrame:
    """`frame` with its target replaced over the fit window by `z` (model scale) in natural
    units, missing after it, and its scaling pinned (a simulated frame)."""
    scaling = frame.scaling(how)
    fit = frame.fit.to_numpy()
    values = frame.frame.copy()
    column = np.full(len(values), np.nan)
    column[np.flatnonzero(fit)] = scaling.natural(z)
    values[frame.target] = column
    return dataclasses.replace(frame, frame=values, fixed_scaling=scaling)


class StaticFamily(Family):
    """Static fair-value regression with iid or AR(1) errors."""

    name = "static"
    options_model = Options
    priors = PRIORS

    def _design(self, frame: FitFrame, how: str) -> tuple[np.ndarray, np.ndarray]:
        """The fit window's target and factors on the model's scale: (T,), (T, P)."""
        fit = frame.fit.to_numpy()
        scaling = frame.scaling(how)
        y = scaling.target(frame.y.to_numpy(dtype=float)[fit])
        x = scaling.factors(frame.X.to_numpy(dtype=float)[fit], list(frame.factors))
        return y, x

    def build(self, spec: ModelSpec, frame: FitFrame):
        """The PyMC model on the fit window (standardised scale)."""
        import pymc as pm
        import pytensor.tensor as pt

        opts = self.options(spec)
        priors = {**PRIORS, **spec.priors}
        fit = frame.fit.to_numpy()
        y, x = self._design(frame, opts.transform)
        coords = {"time": frame.time[fit], "term": list(frame.factors)}
        with pm.Model(coords=coords) as model:
            x_data = pm.Data("x", x, dims=("time", "term"))
            y_data = pm.Data("y_obs", y, dims="time")  # data, not a constant: refits reuse
            intercept = make_prior("intercept", priors["intercept"])
            beta = make_prior("beta", priors["beta"], dims="term")
            sigma = make_prior("sigma", priors["sigma"])
            mu = intercept + pt.dot(x_data, beta)
            if opts.errors == "ar1":
                rho = make_prior("rho", priors["rho"])
                resid_prev = y_data[:-1] - mu[:-1]
                mu_cond = pt.concatenate([mu[:1], mu[1:] + rho * resid_prev])
                first_sd = sigma / pt.sqrt(1.0 - rho**2)
                sd = pt.concatenate([pt.reshape(first_sd, (1,)), pt.ones(len(y) - 1) * sigma])
                pm.Normal("y", mu=mu_cond, sigma=sd, observed=y_data, dims="time")
            else:
                pm.Normal("y", mu=mu, sigma=sigma, observed=y_data, dims="time")
        return model

    def simulate(
        self,
        spec: ModelSpec,
        frame: FitFrame,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        latent: dict[str, np.ndarray] | None = None,
    ) -> Simulation:
        """y = a + x'b + u on the model's scale, u iid or AR(1) from its stationary start."""
        opts = self.options(spec)
        _, x = self._design(frame, opts.transform)
        mu = float(params["intercept"]) + x @ np.asarray(params["beta"], dtype=float)
        sigma = float(params["sigma"])
        rho = float(params["rho"]) if opts.errors == "ar1" else 0.0
        z = mu + ar1_errors(rng, sigma, rho, len(mu))
        return Simulation(with_target(frame, z, opts.transform), dict(params))

    def _mu_std(self, post: xr.Dataset, frame: FitFrame, how: str) -> np.ndarray:
        """a + x_t'b on the standardised scale per draw and month of `frame`: (S, N)."""
        x_all = frame.scaling(how).factors(frame.X.to_numpy(dtype=float), list(frame.factors))
        return stack_draws(post, "intercept")[:, None] + stack_draws(post, "beta") @ x_all.T

    def derive(self, fit: Fit, quantiles: list[float]) -> xr.Dataset:
        """Fair value, deviation and coefficients over all months, as posterior quantiles."""
        frame, opts = fit.frame, self.options(fit.spec)
        post = fit.posterior
        scaling = frame.scaling(opts.transform)
        mu_std = self._mu_std(post, frame, opts.transform)  # (S, T)
        fv_draws = scaling.natural(mu_std)
        q = np.asarray(quantiles)
        fit_mask = frame.fit.to_numpy()
        coef_nat = scaling.slope(stack_draws(post, "beta"), list(frame.factors))
        y_fit, _ = self._design(frame, opts.transform)
        r2 = bayes_r2(mu_std[:, fit_mask], y_fit)
        log_word = "log " if opts.transform == "log" else ""
        ds = xr.Dataset(
            {
                **fair_value_variables(frame, fv_draws, q),
                "coef": (
                    ("term", "quantile"),
                    quantiles_of(coef_nat, q),
                    {
                        "long_name": "coefficient in natural units",
                        "units": f"change in {log_word}{frame.target} per unit of the factor",
                    },
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
                "errors": opts.errors,
            }
        )
        if "rho" in post:
            ds.attrs["rho_median"] = float(np.median(stack_draws(post, "rho")))
        return ds

    def natural_posterior(self, fit: Fit) -> xr.Dataset:
        """Intercept and slopes of y = c + x'b on the target's (transformed) scale, σ in its
        units, and ρ, per draw."""
        frame, opts, post = fit.frame, self.options(fit.spec), fit.posterior
        scaling, factors = frame.scaling(opts.transform), list(frame.factors)
        log = opts.transform == "log"
        y_units = f"log {frame.target}" if log else frame.units
        beta = stack_draws(post, "beta")
        out = {
            "intercept": by_chain(
                scaling.intercept(stack_draws(post, "intercept"), beta, factors),
                post,
                units=y_units,
                long_name=f"{'log ' if log else ''}{frame.target} with every factor at zero",
            ),
            "slope": by_chain(
                scaling.slope(beta, factors),
                post,
                ("term",),
                {"term": factors},
                units=f"change in {'log ' if log else ''}{frame.target} per unit of the factor",
                long_name="slope on each factor",
            ),
            "sigma": by_chain(
                stack_draws(post, "sigma") * scaling.y_sd_of(),
                post,
                units="log points" if log else frame.units,
                long_name="sd of the errors' innovations",
            ),
        }
        if "rho" in post:
            out["rho"] = by_chain(
                stack_draws(post, "rho"),
                post,
                units="1",
                long_name="AR(1) coefficient of the errors",
            )
        ds = xr.Dataset(out)
        ds.attrs["scale"] = f"natural units of {frame.target}"
        return ds

    def posterior_predictive(self, fit: Fit, seed: int = 0) -> xr.Dataset:
        """Replicates of y from the fitted likelihood (one-step-ahead under AR(1) errors), in
        natural units: PyMC's forward sampling of the observed variable, transformed back."""
        import pymc as pm

        opts = self.options(fit.spec)
        pp = pm.sample_posterior_predictive(
            fit.tree,
            model=self.build(fit.spec, fit.frame),
            var_names=["y"],
            random_seed=seed,
            progressbar=False,
        )
        y = pp["posterior_predictive"]["y"]
        return xr.Dataset({"y": fit.frame.scaling(opts.transform).natural(y)})

    def log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """−log(y_sd), and −log(y_t) for a log target, per fit-window month."""
        return target_log_jacobian(frame, self.options(spec).transform)

    def fair_value_draws(self, fit: Fit) -> xr.Dataset:
        """Fair value a + x_t'b (back-transformed) per posterior draw and month of the frame."""
        how = self.options(fit.spec).transform
        mu_std = self._mu_std(fit.posterior, fit.frame, how)
        fv = fit.frame.scaling(how).natural(mu_std)
        time = {"time": pd.DatetimeIndex(fit.frame.time).values}
        return xr.Dataset({"fair_value": per_draw(fv, ("time",), time)})


FAMILY = StaticFamily()
