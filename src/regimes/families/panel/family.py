"""The panel family behind the `Family` interface: the pooled model of `model.py` and the
per-draw passes and outputs of `outputs.py`. Generic code sees the reference asset (the
experiment's target) where it expects one series: the one-step replicates, the fair-value draws
and the joint per-month log-likelihood `y`; `derived.nc` carries every asset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimes.dataset import FitFrame
from regimes.draws import per_draw
from regimes.families.base import NATURAL_SCALE, ChainFamily
from regimes.families.panel.design import PanelDesign, design
from regimes.families.panel.model import build_model
from regimes.families.panel.options import PRIORS, Options
from regimes.families.panel.outputs import (
    PanelPosterior,
    derived_dataset,
    mixture,
    one_step_replicates,
    posterior_passes,
)
from regimes.spec import ModelSpec


def asset_log_jacobian(frame: FitFrame, d: PanelDesign, opts: Options) -> np.ndarray:
    """log |dz/dy| of each asset's scored fit-window month, (T - c, A): −log sd, and −log y for
    a log price; zero where the asset's month is not scored."""
    c = opts.n_conditioning
    y = frame.Y.to_numpy(dtype=float)[frame.fit.to_numpy()][c:]
    jac = np.broadcast_to(-np.log(d.y_sd), y.shape).copy()
    if opts.transform == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            jac = jac - np.log(y)
    return np.where(d.scored_mask(c) > 0, jac, 0.0)


def scored_time(frame: FitFrame, opts: Options) -> pd.DatetimeIndex:
    """The fit-window months the likelihood scores (after the conditioning month of the ECM)."""
    return frame.time[frame.fit.to_numpy()][opts.n_conditioning :]


class PanelFamily(ChainFamily):
    """Several assets, one shared regime chain, partially pooled sensitivities (see `model`)."""

    name = "panel"
    options_model = Options
    priors = PRIORS
    weighted_likelihood = True

    def posterior(self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec) -> PanelPosterior:
        """HMM passes for every draw of `tree` on `frame` (memoised for the last posterior)."""
        return self.memoised(tree, frame, spec, posterior_passes)

    def build(self, spec: ModelSpec, frame: FitFrame):
        """Pooled emissions and the marginalised chain(s)."""
        return build_model(spec, frame).model

    def derive(
        self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec, quantiles: list[float]
    ) -> xr.Dataset:
        """Per-asset fair values and sensitivities, pooled sensitivities, the shared chain."""
        return derived_dataset(tree, frame, spec, quantiles, self.posterior(tree, frame, spec))

    def log_likelihood(self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec) -> xr.Dataset:
        """`y`: the joint one-step log density of month t over every observed asset (what LOO
        and leave-future-out score); `y_asset`: each asset's own one-step log density given
        every asset's past (NaN where the asset is missing)."""
        pp = self.posterior(tree, frame, spec)
        post = tree["posterior"]
        shape = (post.sizes["chain"], post.sizes["draw"])
        fit_time = scored_time(frame, self.options(spec))
        return xr.Dataset(
            {
                "y": (("chain", "draw", "time"), pp.log_pred.reshape(*shape, -1)),
                "y_asset": (
                    ("chain", "draw", "time", "asset"),
                    pp.log_pred_asset.reshape(*shape, *pp.log_pred_asset.shape[1:]),
                ),
            },
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "time": fit_time.values,
                "asset": pp.design.assets,
            },
        )

    def log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """The joint month's Jacobian: the sum over the assets in the likelihood that month."""
        opts = self.options(spec)
        jac = asset_log_jacobian(frame, design(frame, opts), opts).sum(axis=1)
        time = scored_time(frame, opts)
        return xr.DataArray(jac, dims="time", coords={"time": time.values})

    def natural_log_likelihood(
        self, ll: xr.Dataset, frame: FitFrame, spec: ModelSpec
    ) -> xr.Dataset:
        """`y` with the joint Jacobian, `y_asset` with each asset's own."""
        opts = self.options(spec)
        d = design(frame, opts)
        jac = asset_log_jacobian(frame, d, opts)
        time = scored_time(frame, opts)
        out = ll.copy()
        joint = xr.DataArray(jac.sum(axis=1), dims="time", coords={"time": time.values})
        out["y"] = ll["y"] + joint.sel(time=ll["time"].values).drop_vars("time")
        if "y_asset" in ll:
            per = xr.DataArray(
                jac, dims=("time", "asset"), coords={"time": time.values, "asset": d.assets}
            )
            out["y_asset"] = ll["y_asset"] + per.sel(time=ll["time"].values).drop_vars("time")
        out.attrs["scale"] = NATURAL_SCALE
        return out

    def posterior_predictive(
        self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec, seed: int = 0
    ) -> xr.Dataset:
        """The reference asset's one-step replicates given every asset's past."""
        return one_step_replicates(self.posterior(tree, frame, spec), tree, frame, spec, seed)

    def fair_value_draws(self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec) -> xr.Dataset:
        """The reference asset's fair value (mixed and by regime) and its chain's regime
        probabilities, plus `fair_value_asset` (sample, asset, time) for every asset."""
        return self._draws(self.posterior(tree, frame, spec), tree, frame, spec)

    def forecast_draws(
        self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec, extended: FitFrame
    ) -> xr.Dataset:
        """The chain starts from each draw's filtered p(s_T | data) and moves with its own
        matrices (recomputed on `extended` for covariate-driven transitions)."""
        return self._draws(self.posterior(tree, extended, spec), tree, extended, spec)

    def _draws(self, pp: PanelPosterior, tree, frame: FitFrame, spec: ModelSpec) -> xr.Dataset:
        opts = self.options(spec)
        prob, fv_k, fv_mix = mixture(pp, tree["posterior"].to_dataset(), frame, opts)
        time = pd.DatetimeIndex(frame.time).values
        coords = {"time": time, "regime": opts.names}
        return xr.Dataset(
            {
                "fair_value": per_draw(fv_mix[:, 0], ("time",), {"time": time}),
                "fair_value_by_regime": per_draw(fv_k[:, 0], ("time", "regime"), coords),
                "regime_prob": per_draw(prob[:, 0], ("time", "regime"), coords),
                "fair_value_asset": per_draw(
                    fv_mix, ("asset", "time"), {"asset": pp.design.assets, "time": time}
                ),
            }
        )

    def figures(
        self, derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str
    ) -> list[Path]:
        """Small multiples of every asset's price and fair value under the regime ribbon, and a
        forest plot of per-asset against pooled sensitivities."""
        from regimes.figures.panel import panel_figures

        return panel_figures(derived, folder, log_scale=log_scale, source=source)


FAMILY = PanelFamily()
