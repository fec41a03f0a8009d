"""The panel family behind the `Family` interface: chain parts configured by its options
(`parts.py`), its derived dataset (`outputs.py`) and figures. Generic code sees the reference
asset (the experiment's target) where it expects one series: the one-step replicates and the
fair-value draws; the log-likelihood `y` is the joint density of every asset's month, and
`derived.nc` carries every asset."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from regimes.dataset import FitFrame
from regimes.families.base import Fit
from regimes.families.chain.family import Assembled, ChainFamily
from regimes.families.panel.options import PRIORS, Options
from regimes.families.panel.outputs import derived_dataset
from regimes.families.panel.parts import assemble
from regimes.spec import ModelSpec

# deferred to the functions that use them: matplotlib, Pillow (docs/modules.md#imports)


class PanelFamily(ChainFamily):
    """Several assets, one shared regime chain, partially pooled sensitivities (see `parts`)."""

    name = "panel"
    options_model = Options
    priors = PRIORS
    weighted_likelihood = True

    def assemble(self, spec: ModelSpec, frame: FitFrame) -> Assembled:
        """Parts, data, coordinates and priors the options ask for on this frame."""
        return assemble(spec, frame)

    def derive(self, fit: Fit, quantiles: list[float]) -> xr.Dataset:
        """Per-asset fair values and sensitivities, pooled sensitivities, the shared chain."""
        return derived_dataset(self, fit, quantiles)

    def figures(
        self, derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str
    ) -> list[Path]:
        """Small multiples of every asset's price and fair value under the regime ribbon, and a
        forest plot of per-asset against pooled sensitivities."""
        from regimes.figures.panel import panel_figures

        return panel_figures(derived, folder, log_scale=log_scale, source=source)


FAMILY = PanelFamily()
