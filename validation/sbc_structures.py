"""Simulation-based calibration of the Markov family's transition structures: change points and
covariate-driven transitions (TVTP).

Same method and machinery as `sbc_markov.py` (read its docstring): the family's own `build()` with
`markov.model.design` patched so y is a symbolic input on the model's own scale, truths drawn from the
model's own priors with `pm.draw`, one jitted numpyro NUTS sampler reused for every simulated y,
ranks of the true scalars among 99 thinned posterior draws.

- `changepoint`: K = 2 left-to-right regimes, switching mean and variance, stay ~ Beta(1, 1); the
  chain starts in regime 0 and the last regime is absorbing.
- `covariates`: K = 2, switching mean, shared variance, one covariate z_t (a fixed standardised
  random walk, the same in every simulation) driving the move t -> t+1 through
  logit P(leave i) = bias_i + coef_i · z_t, with the family's default priors.

    python validation/sbc_structures.py changepoint --n 100 --seed 1
    python validation/sbc_structures.py covariates --n 100 --seed 1
Writes validation/results/sbc_<structure>.csv and .png and prints a summary.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import sbc_markov as base

from regimes.config import ModelSpec
from regimes.families import markov
from regimes.families.markov import model as markov_model

T = 120
STRUCTURES = {
    "changepoint": {
        "options": {
            "k_regimes": 2,
            "transition": "changepoint",
            "switching": ["intercept"],
            "switching_variance": True,
        },
        "names": ("intercept", "sigma", "stay"),
        "params": ["intercept[0]", "intercept[1]", "sigma[0]", "sigma[1]", "stay[0]"],
    },
    "covariates": {
        "options": {
            "k_regimes": 2,
            "transition": "covariates",
            "transition_covariates": ["z"],
            "switching": ["intercept"],
            "order_by": "intercept",
        },
        "names": ("intercept", "sigma", "transition_bias", "transition_coef"),
        "params": [
            "intercept[0]",
            "intercept[1]",
            "sigma",
            "bias[0->1]",
            "bias[1->0]",
            "coef[0->1]",
            "coef[1->0]",
        ],
    },
}


def covariate_path(t: int) -> np.ndarray:
    """A fixed, persistent, standardised covariate (seeded, identical in every simulation)."""
    z = np.cumsum(np.random.default_rng(2024).normal(0, 0.3, t))
    return ((z - z.mean()) / z.std())[:, None]


def build(structure: str, t: int):
    """The family's `build()` on the model's own scale, y a symbolic (T,) input."""
    import pytensor.tensor as pt

    y = pt.tensor("y", shape=(t,), dtype="float64")
    z = covariate_path(t) if structure == "covariates" else np.zeros((t, 0))

    def raw_design(frame, opts, where: str = "") -> markov.Design:
        empty = np.zeros((t, 0))
        return markov.Design(
            y=y, x_switch=empty, x_shared=empty, x_switch_all=empty, x_shared_all=empty,
            switch_terms=[], shared_terms=[], z=z, z_all=z, dx=np.zeros((t - 1, 0)),
            covariates=["z"] if z.shape[1] else [], y_mean=0.0, y_sd=1.0, x_mean={}, x_sd={},
        )  # fmt: skip

    spec = ModelSpec(family="markov", options=STRUCTURES[structure]["options"], name="sbc")
    frame = base._frame(t)
    if structure == "covariates":  # the frame must list the covariate as a factor
        frame.frame["z"] = z[:, 0]
        frame = type(frame)("y", ("z",), frame.frame, frame.fit)
    with mock.patch.object(markov_model, "design", raw_design):
        model = markov.FAMILY.build(spec, frame)
    return model, y


def simulate(structure: str, rng: np.random.Generator, truth: dict, t: int) -> np.ndarray:
    """Regime path and y from the true parameters."""
    a, sigma = truth["intercept"], np.broadcast_to(truth["sigma"], (2,))
    s = np.zeros(t, dtype=int)
    if structure == "changepoint":
        for i in range(1, t):
            s[i] = 1 if s[i - 1] == 1 else int(rng.random() > truth["stay"][0])
    else:
        z = covariate_path(t)[:, 0]
        leave = 1 / (
            1 + np.exp(-(truth["transition_bias"][:, None] + truth["transition_coef"] * z))
        )
        p_leave0 = leave[:, 0]  # stationary start of P(z_0)
        s[0] = int(rng.random() < p_leave0[0] / (p_leave0[0] + p_leave0[1]))
        for i in range(1, t):
            s[i] = 1 - s[i - 1] if rng.random() < leave[s[i - 1], i - 1] else s[i - 1]
    return a[s] + sigma[s] * rng.normal(size=t)


def scalars(structure: str, x: dict) -> np.ndarray:
    """The scalar parameters in the order of STRUCTURES[structure]['params']."""
    cols = [x["intercept"][..., 0], x["intercept"][..., 1]]
    if structure == "changepoint":
        cols += [x["sigma"][..., 0], x["sigma"][..., 1], x["stay"][..., 0]]
    else:
        bias, coef = x["transition_bias"], x["transition_coef"]
        cols += [x["sigma"], bias[..., 0], bias[..., 1], coef[..., 0, 0], coef[..., 1, 0]]
    return np.stack(cols, axis=-1)


def main(argv: list[str] | None = None) -> int:
    """Run N simulations for one structure, write ranks and histograms, print the summary."""
    import pymc as pm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("structure", choices=sorted(STRUCTURES))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--draws", type=int, default=300, help="per chain (2 chains)")
    parser.add_argument("--out", type=Path, default=base.ROOT / "validation" / "results")
    args = parser.parse_args(argv)
    cfg = STRUCTURES[args.structure]
    params = cfg["params"]
    base.PARAMS[:] = params  # summarise/plot read the parameter names from there
    args.out.mkdir(parents=True, exist_ok=True)

    model, y_sym = build(args.structure, T)
    t0 = time.perf_counter()
    fitter = base.Fitter(model, y_sym, args.tune, args.draws, chains=2, names=cfg["names"])
    rng = np.random.default_rng(args.seed)
    prior_rvs = [model[n] for n in cfg["names"]]
    ordered = markov.Options.model_validate(cfg["options"]).identified_by_order
    rows, ranks, inside = [], [], []
    print(f"SBC {args.structure}, T={T}, options={cfg['options']}, N={args.n}", flush=True)
    for i in range(args.n):
        start = time.perf_counter()
        truth = dict(zip(cfg["names"], pm.draw(prior_rvs, random_seed=rng), strict=True))
        if ordered:
            truth["intercept"] = np.sort(truth["intercept"])
        y = simulate(args.structure, rng, truth, T)
        post, div = fitter.fit(y, int(rng.integers(2**31)))
        draws = scalars(args.structure, post)
        flat = draws.reshape(-1, len(params))
        keep = flat[np.linspace(0, len(flat) - 1, base.N_KEEP).round().astype(int)]
        true = scalars(args.structure, truth)
        rank = (keep < true).sum(axis=0)
        q05, q95 = np.quantile(flat, [0.05, 0.95], axis=0)
        inside.append((q05 <= true) & (true <= q95))
        ranks.append(rank)
        rhat = float(base.split_rhat(draws).max())
        secs = time.perf_counter() - start
        rows.append(
            {"sim": i, **{f"rank_{p}": int(r) for p, r in zip(params, rank, strict=True)},
             "divergences": div, "max_rhat": round(rhat, 4), "seconds": round(secs, 2)}
        )  # fmt: skip
        print(f"sim {i:3d}: ranks {rank.tolist()}  div {div}  rhat {rhat:.3f}  {secs:.1f}s",
              flush=True)  # fmt: skip
    with (args.out / f"sbc_{args.structure}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ranks_a, inside_a = np.array(ranks), np.array(inside)
    base.plot(ranks_a, args.out / f"sbc_{args.structure}.png", f"SBC {args.structure}, T={T}")
    rh = np.array([r["max_rhat"] for r in rows])
    dv = np.array([r["divergences"] for r in rows])
    print()
    print("\n".join(base.summarise(ranks_a, inside_a)))
    print(
        f"\nN={args.n}; {time.perf_counter() - t0:.0f}s; max R-hat > 1.05 in {(rh > 1.05).sum()} "
        f"sims; divergences in {(dv > 0).sum()} sims"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
