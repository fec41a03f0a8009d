"""Convergence robustness: the validation experiments converge on many seeds in a row.

For each experiment and seed, runs the full experiment (`regimes.api.run_experiment`) and checks
R-hat <= 1.01, bulk ESS >= 400, no divergences and chain agreement. Prints one line per run and
a summary; writes validation/results/robustness.csv. Exit code 1 if any run fails.

    python validation/robustness.py --seeds 10 textbook/fedfunds textbook/hamilton_gnp fedfunds_msv
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RHAT_MAX, ESS_MIN = 1.01, 400


def main(argv: list[str] | None = None) -> int:
    """Run each experiment on `--seeds` seeds and report the convergence checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", help="names under experiments/")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--csv", default="robustness.csv", help="file name under validation/results"
    )
    parser.add_argument("--keep", type=Path, default=None, help="write the runs here (kept)")
    args = parser.parse_args(argv)

    from regimes.api import run_experiment
    from regimes.results import open_run

    out_dir = ROOT / "validation" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for name in args.experiments:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                t0 = time.perf_counter()
                run_dir = run_experiment(
                    ROOT / "experiments" / f"{name}.toml",
                    data_dir=args.data_dir,
                    out=tmp,
                    seed=seed,
                    progress=False,
                    quiet=True,
                    figures=False,
                ).path
                v = open_run(run_dir).manifest["verdict"]
                ok = (
                    v["max_rhat"] <= RHAT_MAX
                    and v["min_ess_bulk"] >= ESS_MIN
                    and v["divergences"] == 0
                    and v["chains_agree"]
                )
                row = {
                    "experiment": name,
                    "seed": seed,
                    "max_rhat": v["max_rhat"],
                    "min_ess_bulk": v["min_ess_bulk"],
                    "divergences": v["divergences"],
                    "chains_agree": v["chains_agree"],
                    "pass": ok,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                rows.append(row)
                print(" ".join(f"{k}={val}" for k, val in row.items()), flush=True)
                _write(out_dir / args.csv, rows)  # after every run: a long job can be stopped
    for name in args.experiments:
        mine = [r for r in rows if r["experiment"] == name]
        passed = sum(r["pass"] for r in mine)
        print(
            f"{name}: {passed}/{len(mine)} seeds pass (R-hat <= {RHAT_MAX}, ESS bulk >= {ESS_MIN}, "
            f"no divergences, chains agree); worst R-hat {max(r['max_rhat'] for r in mine)}, "
            f"lowest ESS {min(r['min_ess_bulk'] for r in mine)}"
        )
    return 0 if all(r["pass"] for r in rows) else 1


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
