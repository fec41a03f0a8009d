"""How many breaks: 0, 1 or 2 compared by tempered-SMC log evidence, over many seeds.

Each experiment (the same target, window and priors, K − 1 breaks with a uniform prior over
their months: experiments/gold/breaks_2000_k*.toml) is fitted by tempered SMC (`regimes.smc`)
on `--seeds` seeds; each fit's independent runs give log p(y) estimates. Per seed, the models'
posterior probabilities follow from the mean log evidence (equal prior weight on each K), and
each model's break dates from its particles (`break_date`, `break_prob`). The record keeps one
row per experiment and seed; the summary gives every reported share with its spread over seeds
(mean, sd, min–max), since an SMC answer from one seed is not an answer.

    python validation/evidence.py experiments/gold/breaks_2000_k1.toml \\
        experiments/gold/breaks_2000_k2.toml experiments/gold/breaks_2000_k3.toml \\
        --seeds 10 --record validation/records/breaks_evidence.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

from regimes.cache import setup_process  # noqa: E402

setup_process()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from regimes.config import load_experiment, run_version  # noqa: E402
from regimes.data import resolve_data_dir  # noqa: E402
from regimes.families import get_family  # noqa: E402
from regimes.families.base import Fit  # noqa: E402
from regimes.fit import fit_frame  # noqa: E402
from regimes.logs import quiet  # noqa: E402
from regimes.userdata import experiment_frame  # noqa: E402

FIELDS = ["experiment", "k_regimes", "seed", "particles", "runs", "log_evidence",
          "log_evidence_runs", "break_dates", "break_mass", "fit_s"]  # fmt: skip
ERAS = [("before 2008", None, "2007-12"), ("2008-2014", "2008-01", "2014-12"),
        ("2015-2021", "2015-01", "2021-12"), ("2022 on", "2022-01", None)]  # fmt: skip


def era_mass(break_prob: pd.Series) -> dict[str, float]:
    """A break's posterior mass in each era (`ERAS`)."""
    return {name: round(float(break_prob.loc[start:end].sum()), 4) for name, start, end in ERAS}


def fit_one(path: Path, seed: int, particles: int | None, runs: int | None, data_dir: Path):
    """One SMC fit of an experiment on one seed: its record row."""
    exp = run_version(load_experiment(path), seed=seed)
    update = {k: v for k, v in {"draws": particles, "chains": runs}.items() if v}
    exp = exp.model_copy(update={"sampler": exp.sampler.model_copy(update=update)})
    assert exp.spec is not None and exp.sampler.modes == "smc", f"{path}: needs modes = 'smc'"
    frame = experiment_frame(exp, data_dir, experiment_dir=path.parent)
    t0 = time.perf_counter()
    with quiet():
        tree = fit_frame(exp, frame, progress=False, log_likelihood=False)
    family = get_family(exp.spec.family)
    k = int(family.options(exp.spec).k_regimes)
    dates: dict[str, list[str]] = {}
    mass: dict[str, dict[str, float]] = {}
    if k > 1:
        derived = family.derive(Fit(tree, frame, exp.spec), [0.05, 0.5, 0.95])
        time_index = pd.DatetimeIndex(derived["time"].values)
        for b in derived["break"].values:
            q = pd.DatetimeIndex(derived["break_date"].sel(**{"break": b}).values)
            dates[str(b)] = [f"{d:%Y-%m}" for d in q]
            prob = pd.Series(derived["break_prob"].sel(**{"break": b}).values, index=time_index)
            mass[str(b)] = era_mass(prob)
    lz = [float(v) for v in tree.attrs["smc_log_evidence"]]
    return {
        "experiment": exp.name, "k_regimes": k, "seed": seed,
        "particles": exp.sampler.draws, "runs": exp.sampler.chains,
        "log_evidence": round(float(np.mean(lz)), 3), "log_evidence_runs": json.dumps(lz),
        "break_dates": json.dumps(dates), "break_mass": json.dumps(mass),
        "fit_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def spread(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return (
        f"{v.mean():.3f} (sd {v.std(ddof=1) if len(v) > 1 else 0:.3f}, {v.min():.3f}-{v.max():.3f})"
    )


def summary(record: Path) -> None:
    """Posterior probability of each K per seed (mean log evidence, equal prior weights) and
    every break share, each with its spread over seeds."""
    rows = pd.read_csv(record)
    wide = rows.pivot_table(index="seed", columns="k_regimes", values="log_evidence")
    wide = wide.dropna()
    print(f"{len(wide)} seeds with every model; log evidence per model:")
    for k in wide.columns:
        print(f"  K={k} ({k - 1} breaks): log p(y) {spread(list(wide[k]))}")
    lz = wide.to_numpy()
    post = np.exp(lz - lz.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    for j, k in enumerate(wide.columns):
        print(f"  P({k - 1} breaks | y): {spread(list(post[:, j]))}")
    for k, g in rows.groupby("k_regimes"):
        if k < 2:
            continue
        masses = [json.loads(m) for m in g["break_mass"]]
        for b in masses[0]:
            for era in masses[0][b]:
                print(f"  K={k} break {b}, {era}: {spread([m[b][era] for m in masses])}")
        medians = [json.loads(d) for d in g["break_dates"]]
        for b in medians[0]:
            print(f"  K={k} break {b} median dates over seeds: {sorted(d[b][1] for d in medians)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("experiments", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--particles", type=int, default=None, help="per run (else the config's)")
    ap.add_argument("--runs", type=int, default=None, help="independent runs (else the config's)")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--record", type=Path, default=ROOT / "validation" / "results" / "evidence.csv")
    ap.add_argument("--summary", action="store_true", help="only summarise the record")
    args = ap.parse_args(argv)
    if not args.summary:
        data_dir = resolve_data_dir(args.data_dir)
        done = set()
        if args.record.is_file() and args.record.stat().st_size:
            old = pd.read_csv(args.record)
            done = set(zip(old["experiment"], old["seed"], strict=True))
        args.record.parent.mkdir(parents=True, exist_ok=True)
        new = not args.record.is_file() or not args.record.stat().st_size
        with args.record.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            if new:
                writer.writeheader()
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for path in args.experiments:
                    if (load_experiment(path).name, seed) in done:
                        continue
                    row = fit_one(path, seed, args.particles, args.runs, data_dir)
                    writer.writerow(row)
                    fh.flush()
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    summary(args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
