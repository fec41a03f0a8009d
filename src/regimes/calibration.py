"""Simulation-based calibration (Talts et al. 2018) and recovery through the one path runs take:
parameters drawn from the model's own prior (or given), data from the family's `simulate` on the
experiment's frame (its factors and the months it conditions on; the target simulated, its
scaling pinned so the truth and the fit share one scale), one fit by `fit.fit_frame` — the run's
compiled model, multi-start and sampler, reused by every simulation of the same shapes — and the
ranks of the true scalars among thinned posterior draws. Works for every family."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymc.logprob.transforms import SimplexTransform

from regimes.config import Experiment
from regimes.dataset import FitFrame
from regimes.diagnostics import element_diagnostics
from regimes.families import get_family
from regimes.families.base import Simulation
from regimes.fit import fit_frame, posterior_of


def _elements(model: Any, point: dict[str, np.ndarray]) -> list[tuple[str, tuple[int, ...]]]:
    """(variable, index) of every free scalar, shapes read off one point of the free variables:
    each element of each, but the last of each row of a simplex (a Dirichlet row's last element
    is one minus the others)."""
    out = []
    for rv in model.free_RVs:
        shape = np.shape(point[rv.name])
        simplex = isinstance(model.rvs_to_transforms.get(rv), SimplexTransform)
        for idx in np.ndindex(*shape):
            if not (simplex and idx[-1] == shape[-1] - 1):
                out.append((rv.name, idx))
    return out


def scalar_names(model: Any, point: dict[str, np.ndarray]) -> list[str]:
    """Names of the ranked scalars, e.g. `intercept[0]`, `sigma`, `P[1,0]`."""
    return [f"{n}[{','.join(map(str, i))}]" if i else n for n, i in _elements(model, point)]


def scalars(model: Any, point: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> np.ndarray:
    """The ranked scalars (of `point`'s shapes) of `values` on a trailing axis; any leading axes
    of `values` beyond `point`'s shapes (draws) are carried."""
    cols = []
    for name, idx in _elements(model, point):
        v = np.asarray(values[name], dtype=float)
        lead = v.ndim - np.ndim(point[name])
        cols.append(v[(slice(None),) * lead + idx])
    return np.stack(cols, axis=-1)


def thin(flat: np.ndarray, keep: int) -> np.ndarray:
    """`keep` draws evenly spaced through (draw, param) draws (all chains pooled)."""
    return flat[np.linspace(0, len(flat) - 1, keep).round().astype(int)]


def ranks(flat: np.ndarray, truth: np.ndarray, keep: int) -> np.ndarray:
    """Rank of each true value among `keep` thinned draws: how many are below it, in 0..keep."""
    return (thin(flat, keep) < truth).sum(axis=0).astype(int)


@dataclass
class SimulationFit:
    """One simulation and the posterior a run's path fits to it."""

    simulation: Simulation
    tree: Any  # the posterior as runs derive from it (modes stacked where sampled)
    verdict: dict[str, Any]
    seconds: float


def simulation_rng(seed: int, sim: int) -> np.random.Generator:
    """The generator of simulation `sim` of an SBC with `seed`: the same simulation whatever
    order the sweep runs them in (and for a script that reads one simulation again)."""
    return np.random.default_rng([seed, sim])


def simulate_from_prior(
    exp: Experiment,
    frame: FitFrame,
    rng: np.random.Generator,
    params: dict[str, np.ndarray] | None = None,
) -> Simulation:
    """Parameters drawn from the experiment's prior (unless given) and the target simulated from
    them on `frame`."""
    assert exp.spec is not None
    family = get_family(exp.spec.family)
    truth = params if params is not None else family.draw_params(exp.spec, frame, rng)
    return family.simulate(exp.spec, frame, truth, rng)


def fit_simulation(
    exp: Experiment,
    frame: FitFrame,
    rng: np.random.Generator | None,
    params: dict[str, np.ndarray] | None = None,
    simulation: Simulation | None = None,
) -> SimulationFit:
    """Draw parameters from the prior (unless given), simulate the target on `frame` (unless a
    `simulation` is given), and fit it exactly as a run would (with a seed from `rng`, else the
    experiment's)."""
    t0 = time.perf_counter()
    sim = simulation
    if sim is None:
        assert rng is not None
        sim = simulate_from_prior(exp, frame, rng, params)
    seed = int(rng.integers(2**31)) if rng is not None else exp.sampler.seed
    run = exp.model_copy(update={"sampler": exp.sampler.model_copy(update={"seed": seed})})
    tree = fit_frame(run, sim.frame, progress=False, log_likelihood=False)
    combined, verdict = posterior_of(run, tree)
    return SimulationFit(sim, combined, verdict, time.perf_counter() - t0)


def rank_record(model: Any, fitted: SimulationFit, keep: int, shift: float = 0.0) -> dict[str, Any]:
    """What SBC keeps of one simulation (JSON-able): each scalar's rank among `keep` thinned
    draws, its truth, bulk ESS and whether the 90% interval covers it; divergences, the worst
    R-hat and how many distinct optima the multi-start found. `shift` is added to every draw (a
    deliberately miscalibrated fit: the negative control of the uniformity check)."""
    post = fitted.tree["posterior"]
    truth = fitted.simulation.params
    values = {
        rv.name: post[rv.name].transpose("chain", "draw", ...).values for rv in model.free_RVs
    }
    draws = scalars(model, truth, values) + shift  # (chain, draw, param)
    flat = draws.reshape(-1, draws.shape[-1])
    true = scalars(model, truth, truth)
    q05, q95 = np.quantile(flat, [0.05, 0.95], axis=0)
    rhat, ess = element_diagnostics(draws)
    optima = fitted.tree.attrs.get("multistart_log_densities", [])
    return {
        "params": scalar_names(model, truth),
        "rank": ranks(flat, true, keep).tolist(),
        "keep": keep,
        "n_posterior": int(flat.shape[0]),
        "truth": true.tolist(),
        "ess_bulk": [round(float(e), 1) for e in ess],
        "cover90": ((q05 <= true) & (true <= q95)).astype(int).tolist(),
        "divergences": int(fitted.verdict["divergences"]),
        "max_rhat": round(float(np.nanmax(rhat)), 4) if np.isfinite(rhat).any() else float("nan"),
        "optima": int(np.sum(np.diff(optima) < -0.5)) + 1 if optima else 0,
        "fit_s": round(fitted.seconds, 2),
    }
