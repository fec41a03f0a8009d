"""The Markov-switching family behind the `Family` interface: chain parts configured by its
options (`parts.py`), its derived dataset (`outputs.py`) and figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import xarray as xr

from regimes.dataset import FitFrame
from regimes.families.base import Fit
from regimes.families.chain.family import Assembled, ChainFamily
from regimes.families.markov.options import PRIORS, Options
from regimes.families.markov.outputs import derived_dataset
from regimes.families.markov.parts import assemble
from regimes.spec import ModelSpec

# deferred to the functions that use them: matplotlib, Pillow (docs/modules.md#imports)


class MarkovFamily(ChainFamily):
    """Markov-switching regression with K regimes (see the package docstring)."""

    name = "markov"
    options_model = Options
    priors = PRIORS
    weighted_likelihood = True

    def assemble(self, spec: ModelSpec, frame: FitFrame) -> Assembled:
        """Parts, data, coordinates and priors the options ask for on this frame."""
        return assemble(spec, frame)

    def resolve_spec(
        self,
        spec: ModelSpec,
        frame: FitFrame,
        optimum: Callable[[Any, int], dict[str, Any] | None],
    ) -> tuple[ModelSpec, dict[str, Any]]:
        """`order_by = "auto"`: the candidate parameter whose regime values lie furthest apart
        at the multi-start optimum (`markov.ordering`)."""
        from regimes.families.markov.ordering import resolve_order_by

        return resolve_order_by(self, spec, frame, optimum)

    def derive(self, fit: Fit, quantiles: list[float]) -> xr.Dataset:
        """Regime probabilities, fair value by regime and mixed, durations, transition matrix,
        most likely path and, for change points, break dates."""
        return derived_dataset(self, fit, quantiles)

    def figures(
        self, derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str
    ) -> list[Path]:
        """Regime ribbon, transition matrix, durations and (change points) break dates."""
        from regimes.figures.regimes import regime_figures

        return regime_figures(derived, folder, log_scale=log_scale, source=source)


FAMILY = MarkovFamily()
