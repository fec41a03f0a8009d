"""Simulation-based calibration (Talts et al. 2018) of the hierarchical panel model (shared chain).

What is tested: `regimes.families.panel` itself — its priors (`panel.PRIORS`), the non-centred
hierarchy β = μ + τ·z, the ordered population real-rate-like sensitivity, the sticky Dirichlet
transition rows, the masked per-asset emission sum and `hmm.pt_forward_log_marginal` — sampled
by the project's own `fit.fit_frame` (NUTS, multistart). Each simulation draws the parameters
from the model's own prior (`pm.draw` on its free variables and the assets' α and β, redrawn
until the ordered μ column increases: an ordered transform on iid Normals restricts their prior
to increasing values), a regime path from P (stationary start) and a panel from them (late
assets masked), fits, and records the rank of every true μ, τ and β among thinned posterior
draws and whether its 90% interval covers it.

Why `design` is patched: `build()` standardises every asset on its observed months, which puts
the prior on a data-dependent scale; the script replaces the design's y by the simulated
standardised panel with y_mean = 0, y_sd = 1. Everything else is the family's code. The
observations are `pm.Data` containers, so every simulation after the first reuses one compiled
model (`regimes.compiled`).

    python validation/sbc_panel.py --n 100 --seed 1 --draws 300 --modes stack --chains 4
    python validation/sbc_panel.py --n 2 --draws 100     # a smoke run (minutes)
    python validation/sbc_panel.py --n 100 --seed 1 --draws 300 --modes stack --chains 4 \
        --only 3,41 --target-accept 0.99 --tag refit      # refit chosen simulations

About 65 s a simulation on 2 cores with 4 chains × 300 + 300 and the family's 12 starts (80–90 s
at --target-accept 0.99, the gold panel experiments' setting). Three processes side by side
made the multistart 16× slower with OpenBLAS's thread per core, 1.9× with the one BLAS thread
per process that `setup_process` now sets (`benchmarks/bench_side_by_side.py`); one process at
a time still uses the cores best.

Writes validation/results/<tag>.csv (a row per simulation) and prints coverage per parameter
group with its binomial standard error.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

from regimes.cache import setup_process  # noqa: E402

setup_process()

import numpy as np  # noqa: E402

from regimes.config import Experiment  # noqa: E402
from regimes.draws import stack_draws  # noqa: E402
from regimes.families import get_family  # noqa: E402
from regimes.families.panel import model as panel_model  # noqa: E402
from regimes.families.panel.simulate import simulate_panel  # noqa: E402
from regimes.fit import fit_frame  # noqa: E402
from regimes.modes import stacked  # noqa: E402
from regimes.spec import ModelSpec  # noqa: E402

OPTIONS = {"k_regimes": 2, "order_by": "x1", "sticky": 18.0}
N_KEEP = 99


def prior_draw(model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One draw of every free variable and of the assets' α and β from the model's prior.
    The ordered population column is an ordered transform on iid Normals, whose prior is the
    iid prior restricted to increasing values: draws are redrawn until they increase."""
    import pymc as pm

    names = [rv.name for rv in model.free_RVs] + ["alpha", "beta"]
    while True:
        values = pm.draw([model[n] for n in names], random_seed=rng)
        out = {n: np.asarray(v) for n, v in zip(names, values, strict=True)}
        if np.all(np.diff(out["mu_x1"]) > 0):
            return out


def simulate(values: dict, d, rng: np.random.Generator) -> np.ndarray:
    """A standardised panel (T, A) from the drawn parameters on the design `d`'s factors and
    masks (the same for every simulation)."""
    P = values["P"]
    evals, evecs = np.linalg.eig(P.T)
    pi = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
    pi = pi / pi.sum()
    t_fit, n_assets = d.y.shape
    s = np.zeros(t_fit, dtype=int)
    s[0] = rng.choice(2, p=pi)
    for t in range(1, t_fit):
        s[t] = rng.choice(2, p=P[s[t - 1]])
    alpha, beta = values["alpha"], values["beta"]  # (A, K), (A, K, P)
    mean = alpha[:, s].T + np.einsum("tp,tap->ta", d.x, beta[:, s].transpose(1, 0, 2))
    y = mean + values["sigma"][None] * rng.normal(size=(t_fit, n_assets))
    return np.where(d.mask > 0, y, 0.0), beta, s


def main(argv: list[str] | None = None) -> int:
    """Run the SBC loop and write the per-simulation table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--months", type=int, default=150)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--tag", default="sbc_panel")
    ap.add_argument(
        "--modes",
        choices=["best", "stack"],
        default="best",
        help="the sampler's modes setting: 'stack' starts chains in each distinct optimum and "
        "stacks them (regimes.modes); use with --chains 4",
    )
    ap.add_argument("--starts", type=int, default=12, help="multi-start optimisations")
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="draw but do not fit the first SKIP simulations: continues an interrupted run of "
        "the same seed (same simulations, same numbering) into a new --tag",
    )
    ap.add_argument(
        "--only",
        type=lambda v: {int(x) for x in v.split(",")},
        default=None,
        help="comma-separated simulation numbers: fit only these (the others are drawn, not "
        "fitted), e.g. to refit the divergent ones with another --target-accept",
    )
    ap.add_argument("--target-accept", type=float, default=None, help="NUTS target_accept")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    base, _ = simulate_panel(args.seed, n_months=args.months, late_by=args.months // 3)
    opts = {**OPTIONS, "n_starts": args.starts}
    spec = ModelSpec(family="panel", options=opts, name="sbc_panel")
    get_family("panel").validate_spec(spec, where="sbc_panel")
    real_design = panel_model.design
    sim_design = real_design(base, panel_model.Options.model_validate(opts))
    out = ROOT / "validation" / "results" / f"{args.tag}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    prior_model = panel_model.build_model(spec, base).model
    for i in range(args.n):
        values = prior_draw(prior_model, rng)
        y, beta, _ = simulate(values, sim_design, rng)
        if i < args.skip or (args.only is not None and i not in args.only):
            continue

        def patched(frame, opts, where="", y=y):
            d = real_design(frame, opts, where)
            ones = np.ones(d.y.shape[1])
            return dataclasses.replace(d, y=y, y_mean=0.0 * ones, y_sd=ones)

        exp = Experiment.model_validate(
            {
                "name": "sbc_panel",
                "model": "sbc_panel",
                "data": {"target": base.target, "start": "1990-01", "end": "2030-12"},
                "sampler": {
                    "draws": args.draws,
                    "tune": args.draws,
                    "chains": args.chains,
                    "seed": args.seed * 1000 + i,
                    "modes": args.modes,
                }
                | ({"target_accept": args.target_accept} if args.target_accept else {}),
                "spec": spec,
            }
        )
        with mock.patch.object(panel_model, "design", patched):
            tree = fit_frame(
                exp, base, progress=False, quiet=True, log_likelihood=args.modes == "stack"
            )
        lps = sorted(tree.attrs.get("multistart_log_densities", []), reverse=True)
        optima = int(np.sum(np.diff(lps) < -0.5)) + 1 if lps else 0  # distinct log densities
        tree, weights = stacked(tree, seed=args.seed * 1000 + i)  # several modes: combined
        post = tree["posterior"].to_dataset()
        truths = {
            "mu": np.column_stack([values["mu_x1"], values["mu_x2"]]),
            "tau": values["tau"],
            "beta": beta,
        }
        row = {
            "sim": i,
            "divergences": int(tree["sample_stats"]["diverging"].sum()),
            "optima": optima,
            "stacked_modes": len(weights),
            # where divergences concentrate (small true τ and σ: the funnel's corner)
            "tau_min": round(float(values["tau"].min()), 4),
            "sigma_min": round(float(values["sigma"].min()), 4),
        }
        for name, truth in truths.items():
            draws = stack_draws(post, name)
            keep = draws[np.linspace(0, len(draws) - 1, N_KEEP).astype(int)]
            ranks = (keep < truth[None]).sum(axis=0).ravel()
            lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
            hits = ((lo <= truth) & (truth <= hi)).ravel()
            row[f"{name}_cover"] = float(hits.mean())
            row[f"{name}_ranks"] = " ".join(map(str, ranks))
        rows.append(row)
        with out.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        covers = ", ".join(f"{k}={v:.2f}" for k, v in row.items() if k.endswith("cover"))
        print(f"sim {i}: {covers}", flush=True)
    for name in ("mu", "tau", "beta"):
        cover = np.mean([r[f"{name}_cover"] for r in rows])
        n_units = len(rows) * len(rows[0][f"{name}_ranks"].split())
        se = np.sqrt(0.09 / n_units)
        print(f"{name}: 90% coverage {cover:.3f} (ideal 0.900 ± {2 * se:.3f}, 2 se)")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
