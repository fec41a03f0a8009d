"""Peer entrant for bench_fedfunds.py: pymc-extras marginalised 2-regime HMM sampled with nutpie.

Runs in its own environment (`benchmarks/.venv-peers`, made by `make_env.sh`: pymc-extras 0.15.1
pins pymc 6.3.x) as a subprocess of bench_fedfunds.py, which times the whole process. The model
is the hand-written numpyro entrant's: 2 regimes, switching mean and sd, ordered means with
Normal(0, 1.5), HalfNormal(1) sds, Dirichlet(1, 1) transition rows, stationary initial
distribution, on the standardised series; the discrete regime path is a pymc-extras
`DiscreteMarkovChain` removed with `marginalize`, then nutpie NUTS (numba backend).
Prints one JSON object on stdout: compile_s, sample_s, min_ess_bulk and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def build_model(y: np.ndarray) -> Any:
    """The marginalised PyMC model (regime path summed out by pymc-extras)."""
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.transforms import ordered
    from pymc_extras import marginalize
    from pymc_extras.distributions import DiscreteMarkovChain

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.5, shape=2, transform=ordered)
        sigma = pm.HalfNormal("sigma", 1.0, shape=2)
        P = pm.Dirichlet("P", a=np.ones((2, 2)))
        p01, p10 = P[0, 1], P[1, 0]
        init = pt.stack([p10, p01]) / (p01 + p10)  # stationary distribution of the 2-state chain
        s = DiscreteMarkovChain("s", P=P, init_dist=pm.Categorical.dist(p=init), shape=len(y))
        # elementwise in s (marginalisation of a Markov chain needs an Elemwise connection)
        mu_s = mu[0] + (mu[1] - mu[0]) * s
        sigma_s = sigma[0] + (sigma[1] - sigma[0]) * s
        pm.Normal("y", mu=mu_s, sigma=sigma_s, observed=y)
    return marginalize(model, ["s"])


def min_ess(ess: Any) -> float:
    """The smallest value over every variable of an ArviZ ESS result (Dataset or DataTree)."""
    ds = ess
    if hasattr(ds, "children") and "posterior" in ds.children:
        ds = ds["posterior"]
    if hasattr(ds, "to_dataset"):
        ds = ds.to_dataset()
    return min(float(np.nanmin(np.asarray(v))) for v in ds.data_vars.values())


def main(argv: list[str] | None = None) -> int:
    """Build, compile and sample the model; print the result as JSON on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="JSON list: the standardised series")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--target-accept", type=float, default=0.9)
    args = p.parse_args(argv)
    y = np.asarray(json.loads(args.data.read_text(encoding="utf-8")), dtype=float)

    import arviz as az
    import nutpie
    import pymc as pm
    import pymc_extras

    t0 = time.perf_counter()
    # marginalize() refuses models with initvals; the ordered means need a sorted start (their
    # support point is [0, 0]), so it is given to nutpie instead (nutpie jitters it per chain)
    compiled = nutpie.compile_pymc_model(
        build_model(y), initial_points={"mu": np.array([-0.5, 0.5])}
    )
    t1 = time.perf_counter()
    trace = nutpie.sample(
        compiled,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        target_accept=args.target_accept,
        progress_bar=False,
    )
    t2 = time.perf_counter()
    posterior = trace["posterior"] if "posterior" in trace.children else trace
    result = {
        "compile_s": t1 - t0,
        "sample_s": t2 - t1,
        "min_ess_bulk": min_ess(az.ess(posterior, method="bulk")),
        "T": len(y),
        "versions": {
            "pymc": pm.__version__,
            "pymc_extras": pymc_extras.__version__,
            "nutpie": nutpie.__version__,
            "arviz": az.__version__,
        },
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
