"""Sampling backends: one call from a PyMC model to an ArviZ DataTree, whatever the sampler."""

from __future__ import annotations

import importlib.util
import os
import sys

from regimes.config import SamplerSection

BACKENDS = ("pymc", "numpyro", "nutpie")


def available_backends() -> list[str]:
    """Backends whose packages are importable here (PyMC's own NUTS always is)."""
    found = ["pymc"]
    if importlib.util.find_spec("numpyro") and importlib.util.find_spec("jax"):
        found.append("numpyro")
    if importlib.util.find_spec("nutpie"):
        found.append("nutpie")
    return found


def resolve_backend(name: str) -> str:
    """`auto` means PyMC's NUTS for now (the JAX backend becomes the default with issue 6)."""
    if name == "auto":
        return "pymc"
    if name not in available_backends():
        from regimes.errors import ConfigError

        raise ConfigError(
            f"sampler.backend = {name!r} is not installed here (available: "
            f"{', '.join(available_backends())}); install it or use backend = 'auto'"
        )
    return name


def sample(model, sampler: SamplerSection, *, seed: int | None = None, progress: bool = True):
    """Draw the posterior with NUTS and return PyMC's DataTree (with pointwise log-likelihood)."""
    import pymc as pm

    backend = resolve_backend(sampler.backend)
    cores = sampler.cores or min(sampler.chains, os.cpu_count() or 1)
    with model:
        tree = pm.sample(
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            cores=cores,
            target_accept=sampler.target_accept,
            random_seed=sampler.seed if seed is None else seed,
            nuts_sampler=backend,
            progressbar=progress,
            compute_convergence_checks=False,
            # forking a process that has loaded JAX (multithreaded) can deadlock
            mp_ctx="forkserver" if "jax" in sys.modules else None,
        )
        pm.compute_log_likelihood(tree, progressbar=False)
    tree.attrs["sampling_backend"] = backend
    return tree
