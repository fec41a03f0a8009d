"""The arrays a chain model sees: its target series (one, or several assets of a panel) over a
`series` dimension, the anchor terms and the transition covariates, all on the model's scale
(the frame's `Scaling`), with a mask of the months each series contributes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.scaling import Scaling

# deferred to the functions that use them: PyMC (docs/modules.md#imports)

# the arrays that enter the likelihood: `pm.Data` containers, so a refit on new data of the same
# shapes reuses the compiled model (`regimes.compiled`)
DATA_FIELDS = ("y", "mask", "x", "dx", "term_mask", "z", "z_all")
# their named dimensions (posterior.nc's constant_data): the fit window's months, their
# month-on-month changes, every month of the frame, the series, anchor terms and covariates
DATA_DIMS = {
    "y": ("fit_time", "series"),
    "mask": ("fit_time", "series"),
    "x": ("fit_time", "anchor_term"),
    "dx": ("fit_time_change", "anchor_term"),
    "term_mask": ("series", "anchor_term"),
    "z": ("fit_time", "covariate"),
    "z_all": ("frame_time", "covariate"),
}


@dataclass(frozen=True)
class ChainData:
    """The fit window (T months) of A series, P anchor terms and Q transition covariates."""

    y: Any  # (T, A) on the model's scale; 0 where the mask is 0 (never read there)
    mask: Any  # (T, A) 1.0 where the series' month enters the likelihood (observed, trained)
    x: Any  # (T, P) anchor terms
    dx: Any  # (T - 1, P) their month-on-month changes (short-run terms, loadings)
    term_mask: Any  # (A, P) 1.0 where series a is anchored on term p
    z: Any  # (T, Q) transition covariates
    z_all: Any  # (N, Q) over every month of the frame (transition paths, forecasts)
    x_all: np.ndarray  # (N, P) anchor terms over every month (fair value)
    y_all: np.ndarray  # (N, A) every series over every month, model scale (NaN: not observed)
    series: list[str]
    terms: list[str]
    covariates: list[str]
    scaling: Scaling
    time: np.ndarray  # (N,) every month of the frame; `fit` marks the fit window's T
    fit: np.ndarray  # (N,) bool

    @property
    def coords(self) -> dict[str, Any]:
        """The coordinates of `DATA_DIMS`."""
        fit_time = self.time[self.fit]
        return {
            "fit_time": fit_time,
            "fit_time_change": fit_time[1:],
            "frame_time": self.time,
            "series": self.series,
            "anchor_term": self.terms,
            "covariate": self.covariates,
        }

    @property
    def n_series(self) -> int:
        """A: the number of series."""
        return len(self.series)

    def scored(self, c: int) -> np.ndarray:
        """(T − c, A): 1.0 where a month is scored — observed and trained, and so are the c
        months it conditions on."""
        mask = np.asarray(self.mask)
        out = mask[c:].copy()
        for i in range(1, c + 1):
            out *= mask[c - i : len(mask) - i]
        return out

    def containers(self) -> ChainData:
        """The likelihood arrays as `pm.Data` containers with named dimensions (inside a model
        context whose coordinates include `coords`)."""
        import pymc as pm

        return dataclasses.replace(
            self,
            **{
                name: pm.Data(name, getattr(self, name), dims=DATA_DIMS[name])
                for name in DATA_FIELDS
            },
        )


def transformed(frame: FitFrame, how: str, series: Sequence[str], where: str) -> Scaling:
    """The frame's scaling for target transform `how`, with a log of a non-positive price
    reported as a config error naming the option."""
    try:
        return frame.scaling(how)
    except ValueError:
        raise ConfigError(
            f"{where}: key 'options.transform': 'log' needs positive values of {list(series)}; "
            "use transform = 'level'"
        ) from None


def chain_data(
    frame: FitFrame,
    how: str,
    terms: Sequence[str],
    covariates: Sequence[str],
    *,
    where: str = "model options",
) -> ChainData:
    """The frame's fit window on the model's scale: every target series of `frame` (a panel's
    assets, else the target), the anchor `terms` and transition `covariates`."""
    series = list(frame.panel_assets)
    scaling = transformed(frame, how, series, where)
    fit, train = frame.fit.to_numpy(), frame.train
    y_std = scaling.target(frame.Y.to_numpy(dtype=float), series)  # (N, A)
    observed = np.isfinite(y_std) & train[:, None]
    x_frame = frame.X.to_numpy(dtype=float)
    factors = list(frame.factors)

    def columns(names: Sequence[str]) -> np.ndarray:
        idx = [factors.index(n) for n in names]
        return scaling.factors(x_frame[:, idx], list(names))

    xs, zs = columns(terms), columns(covariates)
    term_mask = np.array(
        [[float(t in frame.anchor_terms(a)) for t in terms] for a in series]
    ).reshape(len(series), len(terms))
    return ChainData(
        y=np.where(observed, y_std, 0.0)[fit],
        mask=observed[fit].astype(float),
        x=xs[fit],
        dx=np.diff(xs[fit], axis=0),
        term_mask=term_mask,
        z=zs[fit],
        z_all=zs,
        x_all=xs,
        y_all=y_std,
        series=series,
        terms=list(terms),
        covariates=list(covariates),
        scaling=scaling,
        time=pd.DatetimeIndex(frame.time).values,
        fit=fit,
    )
