"""Volatility regimes mistaken for anchor regimes: a single chain against factorial chains.

Data are simulated with two independent chains — an anchor chain (which factor prices y: x1 with
slope 0.8 or x2 with slope −0.8) and a volatility chain (noise sd 0.08 or 0.35) — as in
`tests/test_markov_anchors.py`. Two models are fitted to each data set:

- single: one K = 2 chain, intercept, both slopes and sigma switching (the gold study's
  structure: regimes free to differ in variance);
- factorial: anchor sets {rate_anchor: [x1], fiscal_anchor: [x2]} and a 2-state volatility chain.

For each fit the share of months whose posterior-mean probability (> 0.5) classifies the true
anchor path and the true volatility path is printed (labels matched to the truth for the single
chain, which has no anchor meaning of its own). 0.5 is chance.

    .venv/bin/python validation/factorial.py --n 5 > validation/results/factorial.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from regimes.config import ModelSpec, SamplerSection  # noqa: E402
from regimes.families import markov  # noqa: E402
from regimes.families.base import Fit  # noqa: E402
from regimes.sampling import sample  # noqa: E402
from test_markov_anchors import anchor_options, simulate_factorial  # noqa: E402

SAMPLER = SamplerSection(draws=400, tune=400, chains=2, seed=3, backend="auto")


def agreement(prob: np.ndarray, truth: np.ndarray) -> float:
    """Share of months classified like the truth, under the better of the two labellings."""
    hit = float(((prob > 0.5) == (truth == 1)).mean())
    return max(hit, 1.0 - hit)


def fit(options: dict, frame) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior-mean probability of the second anchor regime and of the turbulent regime."""
    spec = ModelSpec(name="v", family="markov", options=options)
    tree = sample(markov.FAMILY.build(spec, frame), SAMPLER, progress=False,
                  init="multistart", n_starts=8)  # fmt: skip
    derived = markov.FAMILY.derive(Fit(tree, frame, spec), [0.05, 0.5, 0.95])
    prob = derived["regime_prob"].values[:, 1]
    vol = derived["volatility_prob"].values[:, 1] if "volatility_prob" in derived else None
    return prob, vol


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--slope", type=float, default=0.8, help="|slope| of each anchor's factor")
    p.add_argument("--scales", type=float, nargs=2, default=(0.08, 0.35), help="noise sds")
    args = p.parse_args()
    print(f"anchor slope ±{args.slope}, noise sd {args.scales[0]} / {args.scales[1]}")
    single = {"k_regimes": 2, "switching": ["intercept", "x1", "x2"], "switching_variance": True,
              "order_by": "sigma"}  # fmt: skip
    factorial = anchor_options(volatility_regimes=2)
    print("seed  model      anchor_path  volatility_path")
    rows = []
    for seed in range(args.n):
        frame, anchor, vol = simulate_factorial(
            seed=100 + seed, slope=args.slope, scales=tuple(args.scales)
        )
        prob, _ = fit(single, frame)
        row_s = (agreement(prob, anchor), agreement(prob, vol))
        prob, vprob = fit(factorial, frame)
        row_f = (agreement(prob, anchor), agreement(vprob, vol))
        rows.append((row_s, row_f))
        print(f"{100 + seed:<5} single     {row_s[0]:.2f}         {row_s[1]:.2f}", flush=True)
        print(f"{100 + seed:<5} factorial  {row_f[0]:.2f}         {row_f[1]:.2f}", flush=True)
    arr = np.array(rows)  # (n, model, path)
    print("mean  single     {:.2f}         {:.2f}".format(*arr[:, 0].mean(axis=0)))
    print("mean  factorial  {:.2f}         {:.2f}".format(*arr[:, 1].mean(axis=0)))


if __name__ == "__main__":
    main()
