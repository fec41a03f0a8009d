"""`ChainFamily`: what every family built from chain parts shares behind the `Family` interface —
building, simulating, the per-draw passes of a fit (kept in the `Fit`), the one-step
log-likelihood and replicates, regime probabilities and anchors in natural units. A family
supplies `assemble` (its parts, data, coordinates and priors from a spec and a frame) and its
own `derive` and figures."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.dataset import FitFrame
from regimes.draws import per_draw
from regimes.families.base import NATURAL_SCALE, Family, Fit, Simulation
from regimes.families.chain.data import ChainData
from regimes.families.chain.model import (
    ChainGraphs,
    ChainModel,
    ComponentFunction,
    build_chain,
    component_function,
)
from regimes.families.chain.natural import natural_parameters
from regimes.families.chain.passes import ChainPasses, batches, chain_passes, draw_values
from regimes.families.chain.simulate import simulate_chain
from regimes.spec import ModelSpec, PriorSpec


@dataclass(frozen=True)
class Assembled:
    """A chain family's model on one frame, before PyMC: its parts, data, coordinates, priors."""

    parts: ChainModel
    data: ChainData
    coords: dict[str, Any]
    priors: dict[str, PriorSpec]


@dataclass(frozen=True)
class ChainBuild:
    """The PyMC model of an `Assembled` chain and its per-draw graphs."""

    assembled: Assembled
    model: Any
    graphs: ChainGraphs

    @property
    def parts(self) -> ChainModel:
        return self.assembled.parts

    @property
    def data(self) -> ChainData:
        return self.assembled.data


class ChainFamily(Family):
    """A family with a marginalised regime chain (markov, panel): chains start at a multi-start
    optimum (options `init`, `n_starts`); a fit's per-draw HMM passes are computed once and kept
    in the `Fit`, shared by derive, the log-likelihood, replicates and forecasts."""

    @abstractmethod
    def assemble(self, spec: ModelSpec, frame: FitFrame) -> Assembled:
        """The configured parts, the frame's data on the model's scale, coordinates, priors."""

    def sampling_init(self, spec: ModelSpec) -> tuple[str, int]:
        """A multi-start optimisation by default (see `sampling.multistart`)."""
        opts = self.options(spec)
        return opts.init, opts.n_starts

    def quick_spec(self, spec: ModelSpec, n_starts: int) -> ModelSpec:
        """At most `n_starts` multi-start optimisations for a quick run."""
        options = {**spec.options, "n_starts": min(self.options(spec).n_starts, n_starts)}
        return spec.model_copy(update={"options": options})

    def graph_spec(self, spec: ModelSpec) -> ModelSpec:
        """Without `init` and `n_starts` (how the multi-start begins, not what is sampled)."""
        options = {k: v for k, v in spec.options.items() if k not in ("init", "n_starts")}
        return spec.model_copy(update={"options": options})

    # ------------------------------------------------------------------ model

    def built(self, spec: ModelSpec, frame: FitFrame) -> ChainBuild:
        """The PyMC model with its per-draw graphs."""
        assembled = self.assemble(spec, frame)
        model, graphs = build_chain(
            assembled.parts, assembled.data, assembled.priors, assembled.coords
        )
        return ChainBuild(assembled, model, graphs)

    def build(self, spec: ModelSpec, frame: FitFrame) -> Any:
        """Priors, identification and the marginalised HMM likelihood."""
        return self.built(spec, frame).model

    def compiled(
        self, spec: ModelSpec, frame: FitFrame
    ) -> tuple[ComponentFunction, Any, ChainBuild]:
        """(the per-draw graphs compiled once per structure, the model whose data containers
        the function reads, the build on `frame`)."""
        built = self.built(spec, frame)
        key = self.graph_spec(spec).model_dump_json(exclude={"name", "path", "description"})
        fn, owner = component_function(key, built.model, built.graphs)
        return fn, owner, built

    # ------------------------------------------------------------------ simulation

    def simulate(
        self,
        spec: ModelSpec,
        frame: FitFrame,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        latent: dict[str, np.ndarray] | None = None,
    ) -> Simulation:
        """States from the chain (or the planted `latent["regime"]` path over the fit window),
        then each month from the model's one-step predictive (see `chain.simulate`); the months
        the model conditions on and unobserved months of a panel asset stay as in `frame`."""
        fn, owner, built = self.compiled(spec, frame)
        values = [np.asarray(params[rv.name], dtype=float) for rv in built.model.free_RVs]
        parts, data = built.parts, built.data
        y, path = simulate_chain(
            fn,
            owner,
            values,
            parts.space,
            parts.emissions.noise,
            params,
            n_conditioning=parts.n_conditioning,
            per_series=parts.per_series,
            rng=rng,
            regimes=None if latent is None else np.asarray(latent["regime"], dtype=int),
        )
        return Simulation(self._frame_with(frame, data, y), dict(params), {"regime": path})

    @staticmethod
    def _frame_with(frame: FitFrame, data: ChainData, y: np.ndarray) -> FitFrame:
        """`frame` with its target series replaced by `y` (T, A; model scale) over the fit
        window (where observed) and missing after it, the scaling pinned."""
        fit = frame.fit.to_numpy()
        values = frame.frame.copy()
        natural = data.scaling.natural(y, data.series)  # (T, A)
        for a, name in enumerate(data.series):
            column = np.full(len(values), np.nan)
            observed = np.isfinite(values[name].to_numpy(dtype=float))[fit]
            column[np.flatnonzero(fit)] = np.where(observed, natural[:, a], np.nan)
            values[name] = column
        return dataclasses.replace(frame, frame=values, fixed_scaling=data.scaling)

    # ------------------------------------------------------------------ per-draw passes

    def passes(self, fit: Fit) -> ChainPasses:
        """Filter, smoother and sampled paths for every draw of `fit` (once per fit)."""

        def compute() -> ChainPasses:
            fn, _, built = self.compiled(fit.spec, fit.frame)
            return chain_passes(
                fn,
                draw_values(fit.posterior, built.model),
                built.parts.space,
                n_conditioning=built.parts.n_conditioning,
                per_series=built.parts.per_series,
                scored=built.data.scored(built.parts.n_conditioning),
            )

        return fit.shared("passes", compute)

    def scored_time(self, frame: FitFrame, spec: ModelSpec) -> pd.DatetimeIndex:
        """The fit-window months the likelihood scores (after the months conditioned on)."""
        c = self.assemble(spec, frame).parts.n_conditioning
        return frame.time[frame.fit.to_numpy()][c:]

    # ------------------------------------------------------------------ likelihood and replicates

    def log_likelihood(self, fit: Fit) -> xr.Dataset:
        """`y`: the one-step log predictive density of month t (every series jointly: what LOO
        and leave-future-out score); with several series also `y_asset`, each series' own
        density given every series' past (NaN where it is not scored)."""
        passes = self.passes(fit)
        post = fit.tree["posterior"]
        shape = (post.sizes["chain"], post.sizes["draw"])
        time = self.scored_time(fit.frame, fit.spec)
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "time": time.values}
        out = {"y": (("chain", "draw", "time"), passes.log_pred.reshape(*shape, -1))}
        series = self.assemble(fit.spec, fit.frame).data.series
        if len(series) > 1:
            values = passes.log_pred_series.reshape(*shape, *passes.log_pred_series.shape[1:])
            out["y_asset"] = (("chain", "draw", "time", "asset"), values)
            coords["asset"] = series
        return xr.Dataset(out, coords=coords)

    def series_log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """log |dz/dy| of each series' scored fit-window month (time, asset): −log sd, and −log y
        for a log target; zero where the month is not scored."""
        assembled = self.assemble(spec, frame)
        data, c = assembled.data, assembled.parts.n_conditioning
        y = frame.Y.to_numpy(dtype=float)[frame.fit.to_numpy()][c:]
        jac = data.scaling.log_jacobian(y, data.series)
        jac = np.where(data.scored(c) > 0, jac, 0.0)
        time = self.scored_time(frame, spec)
        return xr.DataArray(
            jac, dims=("time", "asset"), coords={"time": time.values, "asset": data.series}
        )

    def log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """The month's Jacobian: the sum over the series scored that month."""
        return (
            self.series_log_jacobian(frame, spec).sum("asset").drop_vars("asset", errors="ignore")
        )

    def natural_log_likelihood(
        self, ll: xr.Dataset, frame: FitFrame, spec: ModelSpec
    ) -> xr.Dataset:
        """`y` with the month's Jacobian, `y_asset` with each series' own."""
        out = super().natural_log_likelihood(ll.drop_vars("y_asset", errors="ignore"), frame, spec)
        if "y_asset" in ll:
            per = self.series_log_jacobian(frame, spec)
            out["y_asset"] = ll["y_asset"] + per.sel(time=ll["time"].values).drop_vars("time")
        out.attrs["scale"] = NATURAL_SCALE
        return out

    def posterior_predictive(self, fit: Fit, seed: int = 0) -> xr.Dataset:
        """One-step replicates of the reference series y_rep_t ~ p(y_t | every series' past, θ):
        the state drawn from the chain's one-step prediction, then the emission's conditional
        mean plus a noise draw — the predictive the pointwise log-likelihood scores."""
        passes = self.passes(fit)
        fn, _, built = self.compiled(fit.spec, fit.frame)
        values = draw_values(fit.posterior, built.model)
        names = [rv.name for rv in built.model.free_RVs]
        parts, data = built.parts, built.data
        noise = parts.emissions.noise
        c = parts.n_conditioning
        rng = np.random.default_rng(seed)
        y_obs = np.asarray(data.y)[c:, 0]
        n_draws = values[0].shape[0]
        out = np.empty((n_draws, len(y_obs)))
        spans = batches(n_draws)
        for lo, hi in spans:  # every batch padded to the first's size: one compilation
            batch = fn.batched(*[v[lo:hi] for v in values], size=spans[0][1])
            e = batch[4][:, :, 0]  # (m, n, J) the reference series
            sig = batch[5][:, 0]  # (m, J)
            pred = passes.predicted[lo:hi]
            u = rng.random(pred.shape[:2])[..., None]
            state = np.minimum((np.cumsum(pred, axis=-1) < u).sum(axis=-1), pred.shape[-1] - 1)
            e_s = np.take_along_axis(e, state[..., None], axis=-1)[..., 0]
            sig_s = np.take_along_axis(
                np.broadcast_to(sig[:, None, :], e.shape), state[..., None], -1
            )
            draw_params = {n: v[lo:hi, None] for n, v in zip(names, values, strict=True)}
            eps = noise.draw(rng, draw_params, e_s.shape)
            out[lo:hi] = y_obs[None, :] - e_s + sig_s[..., 0] * eps
        natural = data.scaling.natural(out, data.series[0])
        post = fit.tree["posterior"]
        time = self.scored_time(fit.frame, fit.spec)
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
                "time": time.values,
            },
        )

    # ------------------------------------------------------------------ regimes and anchors

    def transition_paths(self, fit: Fit, frame: FitFrame) -> np.ndarray:
        """Each draw's transition matrices over `frame` (covariate-driven: one per month of
        `frame`, recomputed from the model's own graphs there; else the fitted ones)."""
        passes = self.passes(fit)
        if (
            fit.frame is frame
            or not self.assemble(fit.spec, frame).parts.chain.transitions.time_varying
        ):
            return passes.P
        fn, _, built = self.compiled(fit.spec, frame)
        values = draw_values(fit.posterior, built.model)
        spans = batches(values[0].shape[0])
        return np.concatenate(
            [fn.batched(*[v[lo:hi] for v in values], size=spans[0][1])[3] for lo, hi in spans]
        )

    def regime_prob_all(self, fit: Fit, frame: FitFrame) -> np.ndarray:
        """Regime probabilities of every month of `frame` and chain, (D, C, N, K): smoothed in
        the fit window, moved on by each draw's transition matrices after it."""
        passes = self.passes(fit)
        transitions = self.assemble(fit.spec, fit.frame).parts.chain.transitions
        P = self.transition_paths(fit, frame)
        fit_mask = frame.fit.to_numpy()
        n_draws, chains, _, k = passes.regime_prob.shape
        out = np.full((n_draws, chains, len(fit_mask), k), np.nan)
        idx = np.flatnonzero(fit_mask)
        out[:, :, idx] = passes.regime_prob
        prob = passes.last_filtered
        for t in np.flatnonzero(np.arange(len(fit_mask)) > idx[-1]):
            if transitions.time_varying:  # month t-1's matrix moves t-1 -> t
                step = P[:, None, t - 1]
            elif transitions.per_series:  # one matrix per series' chain
                step = P
            else:
                step = P[:, None]
            prob = np.einsum("dck,dckj->dcj", prob, step)
            out[:, :, t] = prob
        return out

    def natural_posterior(self, fit: Fit) -> xr.Dataset:
        """Levels (or drifts), slopes, σ, transition matrix, durations and the form's own
        parameters in natural units, per draw (`chain.natural`)."""
        assembled = self.assemble(fit.spec, fit.frame)
        parts = assembled.parts
        return natural_parameters(
            fit.posterior,
            self.passes(fit),
            assembled.data,
            parts.emissions,
            self.regime_names(fit.spec),
            target=fit.frame.target,
            units=fit.frame.units,
            time_varying=parts.chain.transitions.time_varying,
            per_series_chain=parts.per_series,
        )

    def anchor_draws(self, fit: Fit, frame: FitFrame) -> np.ndarray:
        """Each series' anchor per regime in natural units, every draw and month of `frame`:
        (D, A, N, K), from the fitted intercepts and loadings."""
        passes = self.passes(fit)
        assembled = self.assemble(fit.spec, frame)
        data = assembled.data
        mu = assembled.parts.emissions.fair_levels(passes.alpha, passes.beta, data)  # (D,N,A,K)
        mu = np.moveaxis(mu, 1, 2)  # (D, A, N, K)
        scaling = data.scaling
        return np.stack(
            [scaling.natural(mu[:, a], name) for a, name in enumerate(data.series)], axis=1
        )

    def mixture(self, fit: Fit, frame: FitFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(regime probabilities (D, C, N, K), fair value by regime (D, A, N, K), mixed (D, A, N))
        over `frame`."""
        prob = self.regime_prob_all(fit, frame)
        fv_k = self.anchor_draws(fit, frame)
        weights = prob if prob.shape[1] == fv_k.shape[1] else np.broadcast_to(prob, fv_k.shape)
        return prob, fv_k, np.einsum("dank,dank->dan", weights, fv_k)

    def _draws(self, fit: Fit, frame: FitFrame) -> xr.Dataset:
        prob, fv_k, fv_mix = self.mixture(fit, frame)
        data = self.assemble(fit.spec, frame).data
        time = pd.DatetimeIndex(frame.time).values
        coords = {"time": time, "regime": self.regime_names(fit.spec)}
        out = {
            "fair_value": per_draw(fv_mix[:, 0], ("time",), {"time": time}),
            "fair_value_by_regime": per_draw(fv_k[:, 0], ("time", "regime"), coords),
            "regime_prob": per_draw(prob[:, 0], ("time", "regime"), coords),
        }
        if data.n_series > 1:
            out["fair_value_asset"] = per_draw(
                fv_mix, ("asset", "time"), {"asset": data.series, "time": time}
            )
        return xr.Dataset(out)

    def fair_value_draws(self, fit: Fit) -> xr.Dataset:
        """The reference series' anchors by regime, mixed by the regime probabilities (smoothed
        in the fit window, moved on by the chain after it), and with several series every
        series' mixed fair value (`fair_value_asset`)."""
        return self._draws(fit, fit.frame)

    def forecast_draws(self, fit: Fit, extended: FitFrame) -> xr.Dataset:
        """From each draw's filtered p(s_T | data) along `extended`, with the model's own
        transition matrices there."""
        return self._draws(fit, extended)

    def regime_names(self, spec: ModelSpec) -> list[str]:
        """The regime labels."""
        return list(self.options(spec).names)
