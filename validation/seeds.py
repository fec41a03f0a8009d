"""Do runs of one experiment on different seeds agree within Monte Carlo error? (issue 28 item 9)

For each run: the probability of `--regime` in the last fit month, the current spell's start
quantiles, and every regime coefficient's median; the Monte Carlo standard error of a posterior
mean probability is at most 0.5 / sqrt(ESS) (ESS: the run's smallest bulk ESS), and two seeds
agree when their difference is within 3 of those (combined). Writes one row per run.

    python validation/seeds.py RUN_DIR RUN_DIR RUN_DIR --regime fiscal_anchor \\
        --record validation/records/loadings_seeds.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from regimes.results import open_run


def row_of(run_dir: Path, regime: str) -> dict:
    run = open_run(run_dir)
    d, verdict = run.derived(), run.manifest["verdict"]
    fit = d["in_sample"].values.astype(bool)
    last = int(np.flatnonzero(fit)[-1])
    start = d["spell_start"].sel(regime=regime)
    out = {
        "run": run_dir.name, "seed": run.manifest["seed"], "converged": verdict["converged"],
        "max_rhat": verdict["max_rhat"], "min_ess_bulk": verdict["min_ess_bulk"],
        "month": f"{pd.Timestamp(d['time'].values[last]):%Y-%m}",
        "p_now": round(float(d["regime_prob"].sel(regime=regime).values[last]), 4),
        "mcse_bound": round(0.5 / math.sqrt(verdict["min_ess_bulk"]), 4),
    }  # fmt: skip
    for q in start["quantile"].values:
        value = start.sel(quantile=q).values
        out[f"start_q{q:g}"] = "" if pd.isna(value) else f"{pd.Timestamp(value):%Y-%m}"
    coef = d["coef"].sel(quantile=0.5)
    for term in coef["term"].values:
        for reg in coef["regime"].values:
            value = float(coef.sel(term=term, regime=reg))
            if np.isfinite(value):
                out[f"coef_{term}_{reg}"] = round(value, 5)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--regime", required=True)
    ap.add_argument("--record", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = [row_of(r, args.regime) for r in args.runs]
    for r in rows:
        print(" ".join(f"{k}={v}" for k, v in r.items()))
    agree = True
    for a, b in itertools.combinations(rows, 2):
        gap, tol = abs(a["p_now"] - b["p_now"]), 3 * math.hypot(a["mcse_bound"], b["mcse_bound"])
        agree &= gap <= tol
        print(f"seeds {a['seed']} vs {b['seed']}: P gap {gap:.4f} (3 MCSE {tol:.4f})")
    print("all converged" if all(r["converged"] for r in rows) else "NOT all converged")
    print("agree within Monte Carlo error" if agree else "DISAGREE beyond Monte Carlo error")
    if args.record:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        with args.record.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
