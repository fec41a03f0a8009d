"""Which optimum holds the mass? The multi-start's distinct optima of one SBC simulation, each
with its height, its Laplace log mass and its distance from the optimum reached from the truth
(issue 28: the fits whose sampled modes all missed the truth).

One row per distinct optimum, best first by height, and one for the optimum L-BFGS reaches when
started at the true parameters: if that optimum is the one with the largest Laplace mass while a
higher one is a spike or a ridge, ranking by height is what lost it.

    python validation/optima.py validation/sbc_loadings_mass.toml --seed 1 --sims 6 16 37 80 \\
        --record validation/records/sbc_loadings_optima.csv

Without `--sims`, the experiment's own data (does the ranking change what the real run samples?):

    python validation/optima.py experiments/gold/loadings.toml \\
        --record validation/records/loadings_optima.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from regimes.calibration import simulate_from_prior, simulation_rng
from regimes.compiled import CompiledModel
from regimes.config import load_experiment
from regimes.data.sources import resolve_data_dir
from regimes.families import get_family
from regimes.modes import distinct_modes
from regimes.sampling import laplace_log_masses, maximise_from, multistart_compiled
from regimes.userdata import experiment_frame


def optima_rows(exp, frame, seed: int, sim: int | None) -> list[dict]:
    """The distinct optima the multi-start finds on simulation `sim` of an SBC with `seed` (as
    its fit did) and the optimum reached from that simulation's truth; with `sim` None, on the
    experiment's own data with its own seed (no truth)."""
    assert exp.spec is not None
    family = get_family(exp.spec.family)
    truth: dict | None = None
    if sim is not None:
        rng = simulation_rng(seed, sim)
        simulation = simulate_from_prior(exp, frame, rng)
        frame, truth = simulation.frame, simulation.params
        seed = int(rng.integers(2**31))  # the seed the SBC fit used (calibration.fit_simulation)
    else:
        seed = exp.sampler.seed
    model = family.build(exp.spec, frame)
    compiled = CompiledModel.from_model(model)
    data = compiled.data_of(model)
    grad = compiled.logp_and_grad()

    def logp_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, g = grad(x, data)
        return float(value), np.asarray(g, dtype=float)

    found = multistart_compiled(model, compiled, data, family.sampling_init(exp.spec)[1], seed)
    optima = [("multistart", o) for o in distinct_modes(found["optima"], np.inf, 10**6)]
    ref = None
    if truth is not None:
        free = [rv.name for rv in model.free_RVs]
        x0 = compiled.to_unconstrained([np.asarray(truth[n]) for n in free], data)
        ((lp, ref),) = maximise_from(logp_and_grad, [x0])
        optima.insert(0, ("truth", (lp, ref)))
    masses = laplace_log_masses(compiled, data, [o for _, o in optima])
    rows = []
    for (origin, (lp, x)), mass in zip(optima, masses, strict=True):
        rows.append({
            "sim": "" if sim is None else sim, "origin": origin, "log_density": round(lp, 3),
            "laplace_log_mass": round(mass, 3) if np.isfinite(mass) else "ridge",
            "distance_to_truth_optimum":
                "" if ref is None else round(float(np.max(np.abs(x - ref))), 3),
        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path)
    ap.add_argument("--seed", type=int, default=1, help="the SBC's seed")
    ap.add_argument("--sims", type=int, nargs="+", default=None, help="else the real data")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--record", type=Path, default=None)
    args = ap.parse_args(argv)
    exp = load_experiment(args.experiment)
    data_dir = resolve_data_dir(args.data_dir)
    frame = experiment_frame(exp, data_dir, experiment_dir=args.experiment.parent)
    sims = args.sims if args.sims is not None else [None]
    rows = [row for sim in sims for row in optima_rows(exp, frame, args.seed, sim)]
    from seeds import report_rows  # validation/ scripts run from their folder's path

    report_rows(rows, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
