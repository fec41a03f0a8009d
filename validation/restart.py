"""Do NUTS chains started where another run's chains ended reach the same posterior? (issue 28)

Where two samplers disagree on the real data (tempered SMC's runs against NUTS in the basin its
multi-start finds), start NUTS from particles of each of the first run's chains and see where
they go: if they climb to the second run's log density and read its answer, the first run had
not reached the posterior; if they stay, the first run found a region the second misses. One
row per restarted chain: the chain it started from, the log density at the start and over its
draws, and P(`--regime`) in the last fit month (mean over its draws of the smoothed
probability). Chains run as the run's own sampler does (the compiled NUTS, data as arguments).

    python validation/restart.py SMC_RUN_DIR --regime fiscal_anchor --per-chain 2 \\
        --record validation/records/loadings_restart.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from regimes.compiled import CompiledModel
from regimes.families import get_family
from regimes.families.base import Fit
from regimes.reopen import run_config, run_frame
from regimes.results import open_run
from regimes.sampling import _tree_of


def restart_rows(run_dir: Path, regime: str, per_chain: int, draws: int, seed: int) -> list[dict]:
    """NUTS from `per_chain` random draws of each chain of the run at `run_dir`."""
    import jax.numpy as jnp

    run = open_run(run_dir)
    exp = run_config(run)
    frame = run_frame(run, exp)
    assert exp.spec is not None
    family = get_family(exp.spec.family)
    model = family.build(exp.spec, frame)
    compiled = CompiledModel.from_model(model)
    data = [jnp.asarray(d) for d in compiled.data_of(model)]
    post = run.posterior()["posterior"]
    rng = np.random.default_rng(seed)
    chains, n_draw = post.sizes["chain"], post.sizes["draw"]
    picks = [(c, int(d)) for c in range(chains) for d in rng.choice(n_draw, per_chain, False)]
    free = [rv.name for rv in model.free_RVs]
    rvs = [np.stack([post[name].isel(chain=c, draw=d).values for c, d in picks]) for name in free]
    flat = compiled.unconstrained_draws([jnp.asarray(r) for r in rvs], data)
    start_lp = np.asarray(compiled.log_density_batch()(jnp.asarray(flat), data))
    init = [np.asarray(v) for v in compiled.unflatten(flat)]
    posterior, stats, _, _ = compiled.sample(
        data, init, draws=draws, tune=draws, chains=len(picks), target_accept=0.9, seed=seed
    )
    tree = _tree_of(model, posterior, stats, {})
    passes = family.passes(Fit(tree, frame, exp.spec))
    names = list(run.derived()["regime"].values)
    prob = passes.regime_prob[:, 0, -1, names.index(regime)].reshape(len(picks), draws)
    return [
        {
            "run": run_dir.name, "from_chain": c, "from_draw": d,
            "start_lp": round(float(start_lp[i]), 2),
            "mean_lp": round(float(stats["lp"][i].mean()), 2),
            "p_now": round(float(prob[i].mean()), 4),
            "draws": draws,
        }
        for i, (c, d) in enumerate(picks)
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--regime", required=True)
    ap.add_argument("--per-chain", type=int, default=2, help="restarts from each chain")
    ap.add_argument("--draws", type=int, default=500, help="draws (= tuning steps) each")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--record", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = restart_rows(args.run, args.regime, args.per_chain, args.draws, args.seed)
    from seeds import report_rows  # validation/ scripts run from their folder's path

    report_rows(rows, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
