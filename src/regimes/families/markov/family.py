"""The Markov-switching family behind the `Family` interface: the composed model of
`model.py`, the per-draw HMM passes and outputs of `outputs.py`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimes.dataset import FitFrame
from regimes.draws import per_draw, stack_draws
from regimes.families.base import ChainFamily
from regimes.families.markov.design import design
from regimes.families.markov.model import build_model
from regimes.families.markov.options import PRIORS, Options
from regimes.families.markov.outputs import (
    PosteriorHMM,
    anchor_draws,
    derived_dataset,
    one_step_replicates,
    posterior_hmm,
    regime_prob_all,
)
from regimes.spec import ModelSpec


class MarkovFamily(ChainFamily):
    """Markov-switching regression with K regimes (see the package docstring)."""

    name = "markov"
    options_model = Options
    priors = PRIORS
    weighted_likelihood = True

    def posterior(self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec) -> PosteriorHMM:
        """Forward filter, smoother and FFBS for every draw of `tree` on `frame` (memoised for
        the last posterior)."""
        return self.memoised(tree, frame, spec, posterior_hmm)

    def build(self, spec: ModelSpec, frame: FitFrame):
        """Priors, identification and the marginalised HMM likelihood."""
        return build_model(spec, frame).model

    def derive(
        self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec, quantiles: list[float]
    ) -> xr.Dataset:
        """Regime probabilities, fair value by regime and mixed, durations, transition matrix,
        most likely path and, for change points, break dates."""
        d = design(frame, self.options(spec))
        return derived_dataset(tree, frame, spec, quantiles, self.posterior(tree, frame, spec), d)

    def log_likelihood(self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec) -> xr.Dataset:
        """One-step-ahead log predictive densities per draw (the marginalised likelihood's
        terms), from `n_conditioning` months into the fit window on."""
        opts = self.options(spec)
        ph = self.posterior(tree, frame, spec)
        post = tree["posterior"]
        fit_time = frame.time[frame.fit.to_numpy()][opts.n_conditioning :]
        values = ph.log_pred.reshape(post.sizes["chain"], post.sizes["draw"], -1)
        return xr.Dataset(
            {"y": (("chain", "draw", "time"), values)},
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "time": fit_time.values,
            },
        )

    def log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """−log(y_sd), and −log(y_t) for a log target, from `n_conditioning` months on."""
        opts = self.options(spec)
        d = design(frame, opts)
        fit = frame.fit.to_numpy()
        y = frame.y.to_numpy(dtype=float)[fit][opts.n_conditioning :]
        jac = np.full(len(y), -np.log(d.y_sd))
        if opts.transform == "log":
            jac = jac - np.log(y)
        time = frame.time[fit][opts.n_conditioning :]
        return xr.DataArray(jac, dims="time", coords={"time": time.values})

    def posterior_predictive(
        self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec, seed: int = 0
    ) -> xr.Dataset:
        """Regime drawn from its one-step prediction, then the component's conditional mean
        plus noise: the predictive the pointwise log-likelihood scores."""
        return one_step_replicates(tree, frame, spec, seed)

    def _mixture(self, ph: PosteriorHMM, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec):
        opts = self.options(spec)
        post = tree["posterior"].to_dataset()
        prob = regime_prob_all(ph, frame.fit.to_numpy())  # (D, N, K)
        by_regime = anchor_draws(post, design(frame, opts), opts)  # (D, N, K)
        coords = {"time": pd.DatetimeIndex(frame.time).values, "regime": opts.names}
        return xr.Dataset(
            {
                "fair_value": per_draw(
                    np.einsum("dnk,dnk->dn", prob, by_regime), ("time",), {"time": coords["time"]}
                ),
                "fair_value_by_regime": per_draw(by_regime, ("time", "regime"), coords),
                "regime_prob": per_draw(prob, ("time", "regime"), coords),
            }
        )

    def fair_value_draws(self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec) -> xr.Dataset:
        """Each regime's anchor μ_k(x_t), mixed by the regime probabilities (smoothed in the
        fit window, P^h-predicted after it)."""
        return self._mixture(self.posterior(tree, frame, spec), tree, frame, spec)

    def forecast_draws(
        self, tree: xr.DataTree, frame: FitFrame, spec: ModelSpec, extended: FitFrame
    ) -> xr.Dataset:
        """Regime probabilities start from each draw's filtered p(s_T | data) at the end of the
        fit window and move with the model's own transition matrices along `extended`."""
        ph = self.posterior(tree, frame, spec)
        if ph.P.ndim == 4:  # covariate-driven: the model's own matrices on the extended frame
            from regimes.graphs import compile_function

            built = build_model(spec, extended)
            free = built.model.free_RVs
            fn = compile_function(free, built.graphs.P_all)
            post = tree["posterior"].to_dataset()
            values = [stack_draws(post, rv.name) for rv in free]
            p_all = np.stack([fn(*[v[i] for v in values]) for i in range(values[0].shape[0])])
            ph = dataclasses.replace(ph, P=p_all)
        return self._mixture(ph, tree, extended, spec)

    def figures(
        self, derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str
    ) -> list[Path]:
        """Regime ribbon, transition matrix, durations and (change points) break dates."""
        from regimes.figures.regimes import regime_figures

        return regime_figures(derived, folder, log_scale=log_scale, source=source)


FAMILY = MarkovFamily()
