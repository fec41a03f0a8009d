"""Sampling backends and chain initialisation: one call from a PyMC model to an ArviZ DataTree."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

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
    """`auto` picks numpyro (JAX) when installed: it compiles the HMM scan in seconds, where
    PyTensor's C backend takes minutes on a cold cache; else PyMC's own NUTS."""
    if name == "auto":
        return "numpyro" if "numpyro" in available_backends() else "pymc"
    if name not in available_backends():
        from regimes.errors import ConfigError

        raise ConfigError(
            f"sampler.backend = {name!r} is not installed here (available: "
            f"{', '.join(available_backends())}); install it or use backend = 'auto'"
        )
    return name


def _is_ordered(transform: Any) -> bool:
    from pymc.distributions.transforms import ChainedTransform, Ordered

    if isinstance(transform, Ordered):
        return True
    return isinstance(transform, ChainedTransform) and any(
        isinstance(t, Ordered) for t in transform.transform_list
    )


def multistart(
    model, n_starts: int, seed: int, compile_kwargs: dict | None = None
) -> dict[str, Any]:
    """Maximise the posterior density from `n_starts` prior draws; return the best point and all optima.

    Random starts from the prior (sorted where a parameter is ordered) reach the separate modes
    of a mixture likelihood; chains then start at the highest one, so no chain settles in a
    degenerate mode by accident. The log density and its gradient are compiled once and
    optimised with L-BFGS on the unconstrained space; the optima's log densities go into the
    manifest so a reviewer sees how many modes there were.
    """
    import pymc as pm
    from pymc.blocking import DictToArrayBijection, RaveledVars
    from pymc.initial_point import make_initial_point_fn

    rng = np.random.default_rng(seed)
    compile_kwargs = compile_kwargs or {}
    free = model.free_RVs
    value_names = [v.name for v in model.value_vars]
    logp = model.compile_logp(jacobian=True, **compile_kwargs)
    dlogp = model.compile_dlogp(jacobian=True, **compile_kwargs)
    template = DictToArrayBijection.map({n: model.initial_point()[n] for n in value_names})
    info = template.point_map_info

    def to_point(x: np.ndarray) -> dict[str, np.ndarray]:
        return DictToArrayBijection.rmap(RaveledVars(x, info))

    def logp_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        point = to_point(x)
        return float(logp(point)), _ravel(dlogp(point))

    starts: list[np.ndarray] = []
    # one compiled draw of every start at once (pm.draw compiles a function per call)
    all_draws = pm.draw(free, draws=n_starts, random_seed=rng, mode="FAST_COMPILE")
    for i in range(n_starts):
        overrides = {}
        for rv, values in zip(free, all_draws, strict=True):
            value = np.asarray(values[i], dtype=float)
            if _is_ordered(model.rvs_to_transforms.get(rv)):
                value = np.sort(value)
            overrides[rv.name] = value
        start = make_initial_point_fn(model=model, overrides=overrides, return_transformed=True)(
            int(rng.integers(2**31))
        )
        starts.append(DictToArrayBijection.map({n: start[n] for n in value_names}).data)
    optima = maximise_from(logp_and_grad, starts)
    if not optima:
        return {"best": None, "log_densities": []}
    best_point = to_point(optima[0][1])
    constrained = _constrained(model, best_point, compile_kwargs)
    return {"best": constrained, "log_densities": [round(lp, 3) for lp, _ in optima]}


def maximise_from(
    logp_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], starts: Iterable[np.ndarray]
) -> list[tuple[float, np.ndarray]]:
    """L-BFGS from each start on the unconstrained scale: the optima as (log density, point),
    best first. A start where the density is undefined or never finite is skipped."""
    from scipy.optimize import minimize

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = logp_and_grad(x)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(x)
        return -float(value), -np.asarray(grad, dtype=float)

    optima: list[tuple[float, np.ndarray]] = []
    for x0 in starts:
        try:
            res = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
        except (ValueError, FloatingPointError):  # a start where the density is undefined
            continue
        if np.isfinite(res.fun) and res.fun < 1e299:
            optima.append((-float(res.fun), res.x))
    return sorted(optima, key=lambda item: -item[0])


def _ravel(grad: Any) -> np.ndarray:
    """A compiled dlogp returns one flat gradient vector over the value variables."""
    return np.asarray(grad, dtype=float).ravel()


def _constrained(
    model, point: dict[str, np.ndarray], compile_kwargs: dict | None = None
) -> dict[str, np.ndarray]:
    """Map an unconstrained point (value variables) to constrained values keyed by RV name
    (compiled in the sampler's mode, so no second backend is compiled for one call)."""
    fn = model.compile_fn(
        model.unobserved_value_vars,
        inputs=model.value_vars,
        point_fn=False,
        **(compile_kwargs or {}),
    )
    outs = fn(*[point[v.name] for v in model.value_vars])
    names = [v.name for v in model.unobserved_value_vars]
    free_names = {rv.name for rv in model.free_RVs}
    return {n: np.asarray(o) for n, o in zip(names, outs, strict=True) if n in free_names}


def sample(
    model,
    sampler: SamplerSection,
    *,
    seed: int | None = None,
    progress: bool = True,
    init: str = "jitter",
    n_starts: int = 8,
) -> Any:
    """Draw the posterior with NUTS and return PyMC's DataTree (with pointwise log-likelihood
    where the model has observed variables). `init="multistart"` starts chains at the best of
    several posterior optimisations."""
    import pymc as pm

    backend = resolve_backend(sampler.backend)
    seed = sampler.seed if seed is None else seed
    cores = sampler.cores or min(sampler.chains, os.cpu_count() or 1)
    kwargs: dict[str, Any] = {}
    starts: dict[str, Any] = {"log_densities": []}
    if init == "multistart":
        compile_kwargs = {"mode": "JAX"} if backend == "numpyro" else {}
        starts = multistart(model, n_starts, seed, compile_kwargs=compile_kwargs)
        if starts["best"] is not None:
            # every chain starts exactly at the best optimum: no jitter that could throw a
            # chain into another mode (PyMC: init without jitter; numpyro: jitter=False)
            no_jitter = (
                {"nuts": {"jitter": False}} if backend == "numpyro" else {"init": "adapt_diag"}
            )
            kwargs = {"initvals": starts["best"], **no_jitter}
    with model:
        tree = pm.sample(
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            cores=cores,
            target_accept=sampler.target_accept,
            random_seed=seed,
            nuts_sampler=backend,
            progressbar=progress,
            compute_convergence_checks=False,
            # forking a process that has loaded JAX (multithreaded) can deadlock
            mp_ctx="forkserver" if "jax" in sys.modules else None,
            **kwargs,
        )
        if model.observed_RVs:
            pm.compute_log_likelihood(tree, progressbar=False)
    if backend == "numpyro":
        # PyMC files numpyro's potential energy (−log density) under "lp"; make lp mean log density
        stats = tree["sample_stats"].to_dataset()
        stats["lp"] = -stats["lp"]
        tree["sample_stats"] = type(tree)(stats)
    tree.attrs["sampling_backend"] = backend
    tree.attrs["init"] = init
    if starts["log_densities"]:
        tree.attrs["multistart_log_densities"] = starts["log_densities"]
    return tree
