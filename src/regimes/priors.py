"""Priors declared as data (`{dist = "Normal", mu = 0, sigma = 1}`) turned into PyMC variables."""

from __future__ import annotations

from typing import Any

import numpy as np

from regimes.errors import ConfigError
from regimes.spec import PriorSpec

# deferred to the functions that use them: PyMC (docs/modules.md#imports)


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


def _is_ordered(transform: Any) -> bool:
    """Whether a variable's transform orders it (alone or inside a chain of transforms)."""
    from pymc.distributions.transforms import ChainedTransform, Ordered

    if isinstance(transform, Ordered):
        return True
    return isinstance(transform, ChainedTransform) and any(
        isinstance(t, Ordered) for t in transform.transform_list
    )


def prior_draws(model: Any, n: int, rng: Any) -> list[dict[str, np.ndarray]]:
    """`n` draws of the model's free variables from their priors, each a dict by name, sorted
    along the last axis where the model orders a variable (an ordered transform on iid priors
    makes the prior the law of the sorted draws): simulation truths, multi-start points and
    SMC's first particles."""
    import pymc as pm

    free = model.free_RVs
    draws = pm.draw(free, draws=n, random_seed=rng, mode="FAST_COMPILE")
    if not isinstance(draws, list | tuple):  # one variable: an array, not a list of them
        draws = [draws]
    if n == 1:  # one draw comes without the leading draws axis
        draws = [np.asarray(d)[None] for d in draws]
    out = []
    for i in range(n):
        point = {}
        for rv, values in zip(free, draws, strict=True):
            value = np.asarray(values[i], dtype=float)
            if _is_ordered(model.rvs_to_transforms.get(rv)):
                value = np.sort(value, axis=-1)
            point[rv.name] = value
        out.append(point)
    return out
