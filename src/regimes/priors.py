"""Priors declared as data (`{dist = "Normal", mu = 0, sigma = 1}`) turned into PyMC variables."""

from __future__ import annotations

from typing import Any

from regimes.errors import ConfigError
from regimes.spec import PriorSpec


def make_prior(name: str, prior: PriorSpec, **kwargs: Any):
    """Create the PyMC random variable `name` from a prior spec inside the current model."""
    import pymc as pm

    dist = getattr(pm, prior.dist)
    try:
        return dist(name, **prior.params, **kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"priors.{name}: {prior.dist} does not accept parameters {sorted(prior.params)}: {exc}"
        ) from None
