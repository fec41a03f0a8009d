"""Simulation-based calibration (Talts et al. 2018) of the K=2 Markov-switching mean-and-variance model.

What is tested. `regimes.families.markov.FAMILY.build` itself: its priors (`markov.PRIORS` through
`make_prior`), the ordered-intercept transform, the sticky Dirichlet transition rows, the
stationary initial distribution, `markov.model.hmm_inputs` and `hmm.pt_forward_log_marginal`.
For each simulation, (intercept, sigma, P) are drawn from that model's own prior (`pm.draw` on
its free RVs; the intercept draws are sorted, since an ordered transform on iid Normal(0, 1.5)
means the prior is the distribution of the sorted pair), a regime path and y are simulated from
them, the posterior is sampled and the rank of each true scalar among ~99 thinned posterior draws
is recorded. If the model, its likelihood and the sampler are right, every rank is uniform.

Why `design` is bypassed. `build()` standardises y over the fit window (`markov.design`), so the
prior is effectively placed on a data-dependent scale: draws on the internal scale, once the
simulated y is re-standardised, no longer follow the prior, and exact SBC through `build()` is
impossible. The script therefore calls `build()` with `markov.model.design` patched to return a
`Design` whose y is a symbolic (T,) input and whose y_mean / y_sd are 0 / 1 (no
standardisation). Everything else is the family's code unchanged.

The reusable parts (the patched `build`, the simulator, the jitted `Fitter`, prior draws, ranks,
R-hat and ESS) live in `regimes.sweep.sbc`, which also runs SBC as a sweep, one task a
simulation (`regimes sweep validation/sbc_sweep.toml`: this setting, 100 simulations, on Dask);
this script drives them in one process and keeps its own CSV, summary and figure.

Why the sampler is driven directly. PyMC's numpyro backend replaces shared data by constants
before jaxifying, so every simulation would trigger a fresh JAX compilation. Here the model's
log density is jaxified ONCE by PyMC's own `get_jaxified_graph` with y as an explicit argument,
and numpyro's NUTS kernel (`numpyro.infer.hmc.hmc(algo="NUTS")`, the kernel behind
`backend = "numpyro"`: diagonal mass matrix, step-size and mass adaptation during warm-up,
target_accept 0.9) runs inside one `jax.jit(vmap(chain))` that takes y as an argument.
(`numpyro.infer.MCMC(jit_model_args=True)` re-jits its kernels on every `run`, which leaks
~960 LLVM memory maps per simulation and crashed a first attempt at simulation 64 on the
65530 vm.max_map_count limit.) Chains start at the model's initial point with uniform(-1, 1)
jitter on the unconstrained space (PyMC's jitter init), not at the truth; `--init multistart`
starts every chain at the best of `--starts` L-BFGS optimisations instead, as the family's runs
do, and records how many distinct optima were found.

    python validation/sbc_markov.py --n 100 --seed 1
Writes validation/results/<tag>.csv (one row per simulation, written after each: ranks, truths,
bulk ESS and 90%-interval hits per parameter, divergences, R-hat) and <tag>.png, and prints a
summary including coverage split by ESS. `--tag` defaults to sbc_markov; `--chains`, `--tune`
and `--draws` set the run length.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

from regimes.cache import configure_compile_caches  # noqa: E402

configure_compile_caches()

import numpy as np  # noqa: E402

from regimes.config import ModelSpec  # noqa: E402
from regimes.sweep.sbc import (  # noqa: E402  (Fitter, split_rhat: sbc_structures uses them)
    Fitter,
    build_unstandardised,
    draw_truth,
    ess_bulk,
    placeholder_frame,
    plain_design,
    simulate,
    split_rhat,
)
from regimes.sweep.sbc import ranks as rank_among  # noqa: E402

T = 120
OPTIONS = {
    "k_regimes": 2,
    "switching": ["intercept"],
    "switching_variance": True,
    "order_by": "intercept",
    "transition_concentration": 1.0,
    "sticky": 8.0,  # Dirichlet rows (9, 1) / (1, 9): prior mean stay probability 0.9
}
PARAMS = ["intercept[0]", "intercept[1]", "sigma[0]", "sigma[1]", "P[0,0]", "P[1,1]"]
N_BINS = 10
N_KEEP = 99  # thinned draws per simulation: ranks take 100 values, 10 per bin


_frame = placeholder_frame  # the simulation, fitting and rank parts live in regimes.sweep.sbc


class FamilyFitter:
    """The family's own path, as `regimes run` samples: `fit.fit_frame` (compiled once, y a data
    container; multi-start; with `modes = "stack"` chains in every distinct optimum within the
    gap and the modes stacked by their LOO predictive densities, `regimes.modes`), with the
    markov `design` patched to the simulated, unstandardised y. `optima` and `stacked` record
    the distinct optima and the modes stacked in the last fit."""

    def __init__(self, spec: ModelSpec, tune: int, draws: int, chains: int, modes: str) -> None:
        self.spec, self.modes = spec, modes
        self.sampler = {"tune": tune, "draws": draws, "chains": chains, "modes": modes}
        self.optima: list[float] = []
        self.stacked = 0

    def fit(self, y: np.ndarray, seed: int, **_: object) -> tuple[dict[str, np.ndarray], int]:
        """Posterior draws (chain, draw, ...) of intercept, sigma and P, and the divergences."""
        from unittest import mock

        from regimes.config import Experiment
        from regimes.families.markov import model as markov_model
        from regimes.fit import fit_frame
        from regimes.modes import stacked

        exp = Experiment.model_validate(
            {
                "name": "sbc",
                "model": "sbc",
                "data": {"target": "y", "start": "2000-01", "end": "2030-12"},
                "sampler": {**self.sampler, "seed": seed},
                "spec": self.spec,
            }
        )
        with mock.patch.object(markov_model, "design", plain_design(y, T)):
            tree = fit_frame(exp, _frame(T), progress=False, quiet=True)
        self.optima = sorted(tree.attrs.get("multistart_log_densities", []), reverse=True)
        stats = tree["sample_stats"]  # tempered SMC has no divergences to count
        divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
        tree, weights = stacked(tree, seed=seed)
        self.stacked = len(weights)
        post = tree["posterior"]
        return {n: post[n].values for n in ("intercept", "sigma", "P")}, divergences


def scalars(x: dict[str, np.ndarray]) -> np.ndarray:
    """The six scalar parameters in PARAMS order (trailing axis)."""
    return np.stack(
        [
            x["intercept"][..., 0],
            x["intercept"][..., 1],
            x["sigma"][..., 0],
            x["sigma"][..., 1],
            x["P"][..., 0, 0],
            x["P"][..., 1, 1],
        ],
        axis=-1,
    )


def coverage_by_ess(inside: np.ndarray, ess: np.ndarray, cut: float = 100.0) -> list[str]:
    """90% coverage split by the parameter's own bulk ESS in each simulation (below / above `cut`).

    The empirical 5-95% interval of n_eff effectively independent draws covers a fixed point with
    probability below 0.90 when n_eff is small, so coverage measured on short, autocorrelated runs
    is biased low even for an exact sampler."""
    lines = [f"{'parameter':<14}{'ESS<' + str(int(cut)):>12}{'cover90':>9}{'ESS>=' + str(int(cut)):>12}"
             f"{'cover90':>9}{'median ESS':>12}"]  # fmt: skip
    for j, name in enumerate(PARAMS):
        low = ess[:, j] < cut
        c_lo = inside[low, j].mean() if low.any() else float("nan")
        c_hi = inside[~low, j].mean() if (~low).any() else float("nan")
        lines.append(f"{name:<14}{low.sum():12d}{c_lo:9.2f}{(~low).sum():12d}{c_hi:9.2f}"
                     f"{np.median(ess[:, j]):12.0f}")  # fmt: skip
    return lines


def summarise(ranks: np.ndarray, inside: np.ndarray) -> list[str]:
    """Chi-square uniformity p-value over N_BINS bins and 90% coverage, per parameter."""
    from scipy.stats import chisquare

    lines = [f"{'parameter':<14}{'chi2 p':>9}{'cover90':>9}   counts per bin"]
    for j, name in enumerate(PARAMS):
        counts = np.bincount(ranks[:, j] * N_BINS // (N_KEEP + 1), minlength=N_BINS)
        p = chisquare(counts).pvalue
        lines.append(f"{name:<14}{p:9.3f}{inside[:, j].mean():9.2f}   {counts.tolist()}")
    return lines


def plot(ranks: np.ndarray, path: Path, title: str = "") -> None:
    """Rank histograms with the 99% band of a uniform bin count."""
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    n = ranks.shape[0]
    lo, hi = binom.ppf([0.005, 0.995], n, 1 / N_BINS)
    rows = -(-len(PARAMS) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(10, 2.75 * rows), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(PARAMS) :]:
        ax.set_visible(False)
    for ax, j in zip(axes.ravel(), range(len(PARAMS)), strict=False):
        ax.axhspan(lo, hi, color="0.85")
        ax.axhline(n / N_BINS, color="0.5", lw=0.8)
        ax.hist(ranks[:, j], bins=np.linspace(0, N_KEEP + 1, N_BINS + 1), color="C0", ec="w")
        ax.set_title(PARAMS[j])
        ax.set_xlabel(f"rank among {N_KEEP} draws")
    title = title or f"SBC, K=2 switching mean and variance, T={T}"
    fig.suptitle(f"{title}, N={n} (grey: 99% band)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run N simulations, write ranks and the histogram, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of simulations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--draws", type=int, default=300, help="per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--tag", default="sbc_markov", help="stem of the output file names")
    parser.add_argument(
        "--init", choices=["jitter", "multistart"], default="jitter", help="how chains start"
    )
    parser.add_argument("--starts", type=int, default=12, help="optimisations for multistart")
    parser.add_argument(
        "--fitter",
        choices=["jitted", "family"],
        default="jitted",
        help="'family': the family's own sampling path (fit.fit_frame: multi-start, and with "
        "--modes stack, stacked modes); 'jitted': the fast hand-driven NUTS fitter",
    )
    parser.add_argument("--modes", choices=["best", "stack", "smc"], default="best")
    parser.add_argument("--out", type=Path, default=ROOT / "validation" / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    spec = ModelSpec(family="markov", options=OPTIONS, name="sbc")
    model, y_sym = build_unstandardised(spec, T)
    t0 = time.perf_counter()
    if args.fitter == "family":
        family_spec = spec.model_copy(update={"options": {**OPTIONS, "n_starts": args.starts}})
        fitter = FamilyFitter(family_spec, args.tune, args.draws, args.chains, args.modes)
    else:
        fitter = Fitter(model, y_sym, args.tune, args.draws, chains=args.chains)
    rng = np.random.default_rng(args.seed)
    rows, ranks, inside, times = [], [], [], []
    print(f"SBC markov K=2, T={T}, options={OPTIONS}, N={args.n}, seed={args.seed}, "
          f"{args.chains} chains x {args.tune} tune + {args.draws} draws, init {args.init}, fitter {args.fitter}, modes {args.modes}",
          flush=True)  # fmt: skip
    for i in range(args.n):
        start = time.perf_counter()
        truth = draw_truth(model, rng)
        y = simulate(rng, truth, T)
        post, div = fitter.fit(y, int(rng.integers(2**31)), init=args.init, n_starts=args.starts)
        # distinct optima: 1 + gaps of more than 0.5 between sorted log densities (0: jitter)
        modes = int(np.sum(np.diff(fitter.optima) < -0.5)) + 1 if fitter.optima else 0
        draws = scalars(post)  # (chain, draw, 6)
        flat = draws.reshape(-1, len(PARAMS))
        true = scalars(truth)
        rank = rank_among(flat, true, N_KEEP)
        q05, q95 = np.quantile(flat, [0.05, 0.95], axis=0)
        cover = (q05 <= true) & (true <= q95)
        rhat = float(split_rhat(draws).max())
        ess = ess_bulk(draws)
        secs = time.perf_counter() - start
        ranks.append(rank)
        inside.append(cover)
        times.append(secs)
        rows.append(
            {"sim": i, **{f"rank_{p}": int(r) for p, r in zip(PARAMS, rank, strict=True)},
             **{f"true_{p}": float(v) for p, v in zip(PARAMS, true, strict=True)},
             **{f"ess_{p}": round(float(e), 1) for p, e in zip(PARAMS, ess, strict=True)},
             **{f"cover_{p}": int(c) for p, c in zip(PARAMS, cover, strict=True)},
             "divergences": div, "max_rhat": round(rhat, 4), "optima": modes,
             "stacked": fitter.stacked if isinstance(fitter, FamilyFitter) else 0,
             "seconds": round(secs, 2)}
        )  # fmt: skip
        print(f"sim {i:3d}: ranks {rank.tolist()}  div {div}  rhat {rhat:.3f}  {secs:.1f}s",
              flush=True)  # fmt: skip
        with (args.out / f"{args.tag}.csv").open("w", newline="") as fh:  # after every simulation
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    total = time.perf_counter() - t0
    ranks_a, inside_a = np.array(ranks), np.array(inside)
    plot(ranks_a, args.out / f"{args.tag}.png")
    rh = np.array([r["max_rhat"] for r in rows])
    dv = np.array([r["divergences"] for r in rows])
    print()
    print("\n".join(summarise(ranks_a, inside_a)))
    print(
        f"\nN={args.n}; time {total:.0f}s total (incl. one-off compile), first simulation "
        f"{times[0]:.1f}s, later ones median {np.median(times[1:] or times):.1f}s; "
        f"max R-hat > 1.05 in {(rh > 1.05).sum()} sims; divergences in {(dv > 0).sum()} sims"
    )
    ess_a = np.array([[r[f"ess_{p}"] for p in PARAMS] for r in rows])
    print("\n" + "\n".join(coverage_by_ess(inside_a, ess_a)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
