"""Sampling backends and chain initialisation: one call from a PyMC model to an ArviZ DataTree."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from regimes.compiled import Adaptation, warm_tune
from regimes.config import SamplerSection
from regimes.priors import prior_draws
from regimes.timing import phase

BACKENDS = ("pymc", "numpyro", "nutpie")
_log = logging.getLogger(__name__)


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


def multistart(
    model, n_starts: int, seed: int, compile_kwargs: dict | None = None
) -> dict[str, Any]:
    """Maximise the posterior density from `n_starts` prior draws; return the best point (the
    free variables' constrained values by name) and the optima's log densities, best first.

    Random starts from the prior (sorted where a parameter is ordered) reach the separate modes
    of a mixture likelihood; chains then start at the highest one, so no chain settles in a
    degenerate mode by accident. The log density and its gradient are one jitted JAX function
    (`regimes.compiled`; `compile_kwargs` is accepted for compatibility and ignored)."""
    from regimes.compiled import CompiledModel

    compiled = CompiledModel.from_model(model)
    data = compiled.data_of(model)
    found = multistart_compiled(model, compiled, data, n_starts, seed)
    if found["best"] is None:
        return {"best": None, "log_densities": []}
    values = compiled.constrained(compiled.unflatten(found["best"]), data)
    free = {rv.name for rv in model.free_RVs}
    best = {name: value for name, value in values.items() if name in free}
    return {"best": best, "log_densities": found["log_densities"]}


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


def sample(
    model,
    sampler: SamplerSection,
    *,
    seed: int | None = None,
    progress: bool = True,
    init: str = "jitter",
    n_starts: int = 8,
    compile_key: str | None = None,
    adaptation: Adaptation | None = None,
) -> Any:
    """Draw the posterior with NUTS (or, with `sampler.modes = "smc"`, tempered SMC) and return
    PyMC's DataTree (with pointwise log-likelihood where the model has observed variables).
    `init="multistart"` starts chains at the best of several posterior optimisations. With
    numpyro, the model is compiled once per `compile_key` (see `regimes.compiled`): refits of
    the same model on new data reuse it, and with an `adaptation` carried from the previous
    refit they also start from its chains' positions and tuning (filled here; other backends
    ignore it)."""
    import pymc as pm

    seed = sampler.seed if seed is None else seed
    if sampler.modes == "smc":  # tempered SMC: JAX, whichever NUTS backend is named
        return _sample_smc(model, sampler, seed, progress, compile_key)
    backend = resolve_backend(sampler.backend)
    if backend == "numpyro":
        return _sample_compiled(
            model, sampler, seed, progress, init, n_starts, compile_key, adaptation
        )
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


# ------------------------------------------------------------------ numpyro, compiled once


def prior_starts(model, compiled, data: list, n: int, seed: int) -> list[np.ndarray]:
    """`n` draws from the prior (sorted where a parameter is ordered), each as one flat vector on
    the unconstrained space: the multi-start's starting points and SMC's first particles."""
    free = [rv.name for rv in model.free_RVs]
    draws = prior_draws(model, n, np.random.default_rng(seed))
    return [compiled.to_unconstrained([d[name] for name in free], data) for d in draws]


def multistart_compiled(model, compiled, data: list, n_starts: int, seed: int) -> dict[str, Any]:
    """`multistart` on a `CompiledModel`: prior draws (sorted where ordered) mapped to the
    unconstrained space, then L-BFGS with the one jitted log density and gradient."""
    starts = prior_starts(model, compiled, data, n_starts, seed)
    fn = compiled.logp_and_grad()

    def logp_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = fn(x, data)
        return float(value), np.asarray(grad, dtype=float)

    optima = maximise_from(logp_and_grad, starts)
    return {
        "best": optima[0][1] if optima else None,
        "log_densities": [round(lp, 3) for lp, _ in optima],
        "optima": optima,
    }


def laplace_log_masses(compiled, data: list, optima: list[tuple[float, np.ndarray]]) -> list[float]:
    """The Laplace log mass of each (log density, point) optimum (`bridge.laplace_log_mass`;
    −inf for a ridge), with the compiled model's Hessian."""
    from regimes.bridge import laplace_log_mass

    hessian = compiled.hessian()
    return [laplace_log_mass(lp, np.asarray(hessian(x, data))) for lp, x in optima]


def _by_laplace_mass(
    compiled, data: list, optima: list[tuple[float, np.ndarray]]
) -> tuple[list[tuple[float, np.ndarray]], list[float]]:
    """The distinct optima scored by their Laplace log mass (`regimes.bridge.laplace_log_mass`)
    instead of their height, best first, and the scores of the distinct optima by height (NaN
    for a ridge). A likelihood spike (a regime that fits a few months with σ → 0) can be the
    highest optimum and hold almost no mass, and chains started there never find the mode that
    does. Optima that are not modes (−H not positive definite: a ridge) are dropped unless all
    are."""
    from regimes.modes import distinct_modes

    distinct = distinct_modes(optima, np.inf, len(optima))
    masses = laplace_log_masses(compiled, data, distinct)
    scored = [(m, x) for m, (_, x) in zip(masses, distinct, strict=True)]
    recorded = [round(v, 3) if np.isfinite(v) else float("nan") for v, _ in scored]
    modes = [item for item in scored if np.isfinite(item[0])]
    if not modes:
        return distinct, recorded
    return sorted(modes, key=lambda item: -item[0]), recorded


def _jittered_starts(model, compiled, data: list, chains: int, seed: int) -> list[np.ndarray]:
    """PyMC's default start: the model's initial point on the unconstrained space plus
    Uniform(−1, 1) jitter per chain, redrawn (up to 10 times) where the density is not finite."""
    rng = np.random.default_rng(seed)
    point = model.initial_point()
    base = np.concatenate([np.ravel(point[n]) for n in compiled.value_names]).astype(float)
    fn = compiled.logp_and_grad()
    rows = []
    for _ in range(chains):
        for _attempt in range(10):
            x = base + rng.uniform(-1.0, 1.0, base.shape)
            if np.isfinite(float(fn(x, data)[0])):
                break
        else:
            x = base
        rows.append(x)
    return rows


def _sample_compiled(
    model,
    sampler: SamplerSection,
    seed: int,
    progress: bool,
    init: str,
    n_starts: int,
    compile_key: str | None,
    adaptation: Adaptation | None = None,
) -> Any:
    """numpyro NUTS through `regimes.compiled`: the same DataTree as `pm.sample` returns."""
    from arviz_base import make_attrs

    from regimes.compiled import CompiledModel, compiled_for
    from regimes.modes import MERGE_RHAT, distinct_modes, merge_mixing_modes

    compiled = compiled_for(model, compile_key) if compile_key else CompiledModel.from_model(model)
    data = compiled.data_of(model)
    log_densities: list[float] = []
    laplace: list[float] = []
    chain_mode: list[int] | None = None
    mode_lps: list[float] = []
    carry = adaptation if compile_key else None  # only a cached structure can be recognised
    warm = carry is not None and carry.ready_for(compiled.structure, sampler.chains)
    start = carry.take(sampler.chains) if warm else None
    if start is not None:  # the previous fit's chains, where they ended (their modes with them)
        chain_mode, mode_lps = start.chain_mode, start.mode_log_densities or []
        rows = None
    elif init == "multistart":
        with phase("multistart"):
            starts = multistart_compiled(model, compiled, data, n_starts, seed)
        log_densities = starts["log_densities"]
        optima = starts["optima"]
        if sampler.modes == "mass":  # optima ranked by what they are worth, not by height
            optima, laplace = _by_laplace_mass(compiled, data, optima)
        modes = distinct_modes(optima, sampler.mode_gap, max(1, sampler.chains // 2))
        # every chain starts exactly at the best optimum: no jitter that could throw a chain
        # into another mode
        rows = [modes[0][1]] * sampler.chains if modes else None
        if sampler.modes in ("stack", "mass") and len(modes) > 1:  # chains round-robin
            chain_mode = [c % len(modes) for c in range(sampler.chains)]
            rows = [modes[m][1] for m in chain_mode]
            mode_lps = [round(lp, 3) for lp, _ in modes]
    else:
        rows = None
    if start is not None:
        init_values = start.position
    else:
        if rows is None:
            rows = _jittered_starts(model, compiled, data, sampler.chains, seed)
        per_var = [compiled.unflatten(row) for row in rows]
        init_values = [np.stack([r[i] for r in per_var]) for i in range(len(per_var[0]))]
    tune = warm_tune(sampler.tune) if warm else sampler.tune
    with phase("sampling"):
        posterior, stats, seconds, adapted = compiled.sample(
            data,
            init_values,
            draws=sampler.draws,
            tune=tune,
            chains=sampler.chains,
            target_accept=sampler.target_accept,
            seed=seed,
            progress=progress,
            tuning=(start.step_size, start.inverse_mass) if start is not None else None,
        )
    if carry is not None:  # for the next fit of this structure
        carry.structure, carry.position = compiled.structure, adapted.position
        carry.step_size, carry.inverse_mass = adapted.step_size, adapted.inverse_mass
        carry.chain_mode, carry.mode_log_densities = chain_mode, mode_lps
    import numpyro

    attrs = {"sampling_time": seconds, "tuning_steps": tune}
    with phase("posterior"):
        tree = _tree_of(model, posterior, stats, make_attrs(attrs, inference_library=numpyro))
    tree.attrs["sampling_backend"] = "numpyro"
    tree.attrs["init"] = "warm (previous fit's chains and tuning)" if warm else init
    if log_densities:
        tree.attrs["multistart_log_densities"] = log_densities
    if laplace:
        tree.attrs["multistart_laplace_log_masses"] = laplace
    if sampler.modes == "mass":  # modes are where chains end up: each chain its own, merged
        # with the chains it mixes with (a chain may leave the optimum it started in)
        tree.attrs["optima_sampled"] = len(set(chain_mode)) if chain_mode is not None else 1
        lp = np.asarray(stats["lp"])
        chain_mode, mode_lps = merge_mixing_modes(
            _chain_draws(model, tree),
            list(range(sampler.chains)),
            [round(float(v), 3) for v in lp.max(axis=1)],
            rhat_max=MERGE_RHAT,
        )
    elif chain_mode is not None:  # optima whose chains ended up mixing are one mode
        tree.attrs["optima_sampled"] = len(set(chain_mode))
        chain_mode, mode_lps = merge_mixing_modes(_chain_draws(model, tree), chain_mode, mode_lps)
    if chain_mode is not None:  # which mode each chain started in (`regimes.modes`)
        tree.attrs["chain_mode"] = chain_mode
        tree.attrs["mode_log_densities"] = mode_lps
    if sampler.modes == "mass":
        with phase("mode masses"):
            _record_mode_masses(model, compiled, data, tree, seed)
    return tree


def _chain_draws(model, tree: Any) -> np.ndarray:
    """The free variables' posterior draws as one (chain, draw, param) array."""
    post = tree["posterior"]
    parts = [post[rv.name].transpose("chain", "draw", ...).values for rv in model.free_RVs]
    return np.concatenate([p.reshape(*p.shape[:2], -1) for p in parts], axis=-1)


def _record_mode_masses(model, compiled, data: list, tree: Any, seed: int) -> None:
    """Each sampled mode's log posterior mass by bridge sampling (`regimes.modes.mode_masses`),
    on the tree's attributes: the weights `modes = "mass"` combines the modes with, and their
    sum, the log evidence log p(y) (comparable with tempered SMC's `smc_log_evidence`)."""
    import jax.numpy as jnp
    from scipy.special import logsumexp

    from regimes.bridge import weights_from_log_masses
    from regimes.modes import mode_masses

    device_data = [jnp.asarray(d) for d in data]
    density = compiled.log_density_batch()
    masses = mode_masses(
        tree,
        [rv.name for rv in model.free_RVs],
        lambda rvs: compiled.unconstrained_draws([jnp.asarray(r) for r in rvs], device_data),
        lambda x: np.asarray(density(jnp.asarray(x), device_data)),
        seed,
    )
    keys = sorted(masses)
    tree.attrs["mode_log_mass"] = [round(masses[k].log_mass, 4) for k in keys]
    tree.attrs["mode_mass_relative_error"] = [round(masses[k].relative_error, 4) for k in keys]
    share = weights_from_log_masses({k: masses[k].log_mass for k in keys})
    errors = np.array([share[k] * masses[k].relative_error for k in keys])
    total = logsumexp([masses[k].log_mass for k in keys])
    tree.attrs["log_evidence_bridge"] = round(float(total), 4)
    tree.attrs["log_evidence_bridge_relative_error"] = round(float(np.sqrt(np.sum(errors**2))), 4)


def _data_groups(model) -> tuple[dict, dict, dict[str, Any]]:
    """`model`'s coordinates, dimensions and data groups as `pm.sample` writes them: observed
    data (empty without observed variables) and constant data (where it has any)."""
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        find_constants,
        find_observations,
    )

    coords, dims = coords_and_dims_for_inferencedata(model)
    groups: dict[str, Any] = {"observed_data": find_observations(model)}
    constants = find_constants(model)
    if constants:
        groups["constant_data"] = constants
    return coords, dims, groups


def recorded_on(tree: Any, model) -> Any:
    """`tree`'s draws recorded against `model`, a model of the same parameters on other data
    (a padded fit's draws against the window it stands for): its observed and constant data,
    and its pointwise log-likelihood where it has observed variables."""
    import pymc as pm
    from arviz_base import from_dict

    coords, dims, groups = _data_groups(model)
    data = from_dict(data=groups, coords=coords, dims=dims)
    out = tree.copy()
    for name in ("observed_data", "constant_data", "log_likelihood"):
        if name in out.children:
            del out[name]
        if name in data.children:
            out[name] = data[name]
    if model.observed_RVs:
        pm.compute_log_likelihood(out, model=model, progressbar=False)
    return out


def _tree_of(model, posterior: dict, stats: dict, attrs: dict) -> Any:
    """The DataTree `pm.sample` would return for these draws (chain, draw, ...): posterior,
    sample statistics, observed and constant data, and the pointwise log-likelihood."""
    import pymc as pm
    from arviz_base import from_dict

    coords, dims, groups = _data_groups(model)
    tree = from_dict(
        data={"posterior": posterior, "sample_stats": stats, **groups},
        coords=coords,
        dims=dims,
        sample_dims=["chain", "draw"],
        attrs={"posterior": attrs},
    )
    if model.observed_RVs:
        pm.compute_log_likelihood(tree, model=model, progressbar=False)
    return tree


# ------------------------------------------------------------------ tempered SMC


def _sample_smc(
    model, sampler: SamplerSection, seed: int, progress: bool, compile_key: str | None
) -> Any:
    """Tempered SMC (`regimes.smc`) through the compiled model: `sampler.chains` independent
    runs of `sampler.draws` particles each, stored as chains of draws, so R-hat across runs
    says whether they agree on the modes' weights. `tune` does not apply (tempering adapts).
    The runs share one compilation and go side by side on the machine's cores (each its own
    seed, so the draws do not depend on how many run at once)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import jax.numpy as jnp
    from arviz_base import make_attrs

    from regimes.compiled import CompiledModel, compiled_for
    from regimes.smc import compile_kernels, run_smc

    compiled = compiled_for(model, compile_key) if compile_key else CompiledModel.from_model(model)
    host_data = compiled.data_of(model)
    data = [jnp.asarray(d) for d in host_data]
    kernels = compiled.smc_kernels()
    inits = [
        np.stack(prior_starts(model, compiled, host_data, sampler.draws, seed + 7919 * chain))
        for chain in range(sampler.chains)
    ]

    def one_run(chain: int) -> Any:
        def report(stage: int, beta: float, acc: float, steps: int) -> None:
            from regimes.progress import smc_stage

            smc_stage(chain, sampler.chains, stage, beta, acc)

        return run_smc(
            kernels, inits[chain], data, seed + chain, on_stage=report if progress else None
        )

    t0 = time.perf_counter()
    compile_kernels(kernels, inits[0], data)  # once, before the runs share them
    workers = min(sampler.chains, os.cpu_count() or 1)
    with phase("sampling"), ThreadPoolExecutor(max_workers=workers) as pool:  # XLA frees the GIL
        runs = list(pool.map(one_run, range(sampler.chains)))
    seconds = time.perf_counter() - t0
    flat = jnp.asarray(np.stack([r.particles for r in runs]))  # (chains, draws, d)
    posterior = compiled.posterior_of(compiled.unflatten(flat), data)
    stats = {"lp": np.stack([r.log_prior + r.log_likelihood for r in runs])}
    attrs = make_attrs({"sampling_time": seconds, "tuning_steps": 0}, inference_library=None)
    tree = _tree_of(model, posterior, stats, attrs)
    tree.attrs["sampling_backend"] = "smc"
    tree.attrs["init"] = "prior draws, tempered to the posterior"
    tree.attrs["smc_log_evidence"] = [round(r.log_evidence, 3) for r in runs]
    tree.attrs["smc_stages"] = [len(r.betas) for r in runs]
    tree.attrs["smc_acceptance"] = [round(float(np.mean(r.acceptance)), 3) for r in runs]
    return tree
