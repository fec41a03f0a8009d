"""A PyMC posterior with two modes NUTS cannot cross, and its mode masses by quadrature: y ~
N(μ², 0.5) with μ ~ N(1, 1.5), modes at ±√ȳ whose masses differ only through the prior. Shared by
the samplers that weigh modes by their mass (tempered SMC, `modes = "mass"`)."""

from __future__ import annotations

from typing import Any

import numpy as np


def squared_mean_model(y: np.ndarray) -> tuple[Any, float, float]:
    """The model on observations `y`, the posterior share of μ > 0 and log p(y), both by
    quadrature on a fine grid."""
    import pymc as pm
    from scipy.stats import norm

    with pm.Model() as model:
        obs = pm.Data("obs", y)
        mu = pm.Normal("mu", 1.0, 1.5)
        pm.Normal("y", mu**2, 0.5, observed=obs)
    grid = np.linspace(-6, 6, 24001)
    log_post = norm.logpdf(grid, 1.0, 1.5) + norm.logpdf(y[:, None], grid**2, 0.5).sum(axis=0)
    post = np.exp(log_post - log_post.max())
    share = float(post[grid > 0].sum() / post.sum())
    log_evidence = float(np.log(post.sum() * (grid[1] - grid[0])) + log_post.max())
    return model, share, log_evidence
