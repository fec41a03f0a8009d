"""Do runs of one experiment on different seeds agree within Monte Carlo error? (issue 28 item 9)

For each run: the probability of `--regime` in the last fit month, the current spell's start
quantiles, and every regime coefficient's median; the Monte Carlo standard error of a posterior
mean probability is at most 0.5 / sqrt(ESS) (ESS: the run's smallest bulk ESS), and two seeds
agree when their difference is within 3 of those (combined). Writes one row per run.

    python validation/seeds.py RUN_DIR RUN_DIR RUN_DIR --regime fiscal_anchor \\
        --record validation/records/loadings_seeds.csv

`--per-chain` gives the same answer from each chain of each run alone (a tempered-SMC run's
chains are its independent runs: where they sit in different modes, the run's pooled answer
hides that they disagree), from the family's sampled regime paths.
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

from regimes.families import get_family
from regimes.families.base import Fit
from regimes.reopen import run_config, run_frame
from regimes.results import open_run
from regimes.spells import spell_start_probability, spell_start_quantiles


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
        "log_evidence": d.attrs.get("log_evidence_bridge", d.attrs.get("log_evidence_smc", "")),
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


def chain_rows(run_dir: Path, regime: str) -> list[dict]:
    """One row per chain of a chain-family run: P(regime) in the last fit month (mean over the
    chain's draws of the smoothed probability) and its current spell's start quantiles, from
    that chain's own draws and sampled paths."""
    run = open_run(run_dir)
    exp = run_config(run)
    frame = run_frame(run, exp)
    tree = run.posterior()
    family = get_family(exp.spec.family)
    passes = family.passes(Fit(tree, frame, exp.spec))  # the chain families' per-draw passes
    names = list(run.derived()["regime"].values)
    k = names.index(regime)
    chains, draws = tree["posterior"].sizes["chain"], tree["posterior"].sizes["draw"]
    prob = passes.regime_prob[:, 0, -1, k].reshape(chains, draws)
    paths = passes.paths.reshape(chains, draws, -1)
    fit_time = pd.DatetimeIndex(frame.time[frame.fit.to_numpy()])
    q = np.array([0.05, 0.5, 0.95])
    lp = tree["sample_stats"]["lp"].transpose("chain", "draw").values
    evidence = _log_evidence_by_chain(tree.attrs, chains)
    sampler = run.manifest["sampler"]
    how = "tempered SMC" if sampler["modes"] == "smc" else f"NUTS, modes = {sampler['modes']}"
    prior = exp.spec.priors.get("sigma")  # the volatility scales' prior, where the run set one
    sigma_prior = (
        "default"
        if prior is None
        else " ".join([prior.dist, *(f"{k}={v:g}" for k, v in prior.params.items())])
    )
    rows = []
    for c in range(chains):
        start = spell_start_quantiles(spell_start_probability(paths[c], len(names)), fit_time, q)
        rows.append({
            "run": run_dir.name, "chain": c, "p_now": round(float(prob[c].mean()), 4),
            "share_in_regime": round(float((paths[c][:, -1] == k).mean()), 4),
            **{f"start_q{v:g}": "" if pd.isna(d) else f"{pd.Timestamp(d):%Y-%m}"
               for v, d in zip(q, start[k], strict=True)},
            "mean_lp": round(float(lp[c].mean()), 2), "log_evidence": evidence[c],
            "sampler": f"{how}, {sampler['chains']} x {sampler['draws']}",
            "sigma_prior": sigma_prior,
        })  # fmt: skip
    return rows


def _log_evidence_by_chain(attrs: dict, chains: int) -> list[float | str]:
    """Each chain's estimate of log p(y): an SMC run's own; with `modes = "mass"` the run's
    bridge-sampling estimate (every chain's); blank where the sampler makes none."""
    if "smc_log_evidence" in attrs:
        return [round(float(v), 3) for v in np.ravel(attrs["smc_log_evidence"])]
    if "log_evidence_bridge" in attrs:
        return [round(float(attrs["log_evidence_bridge"]), 3)] * chains
    return [""] * chains


def report_rows(rows: list[dict], record: Path | None) -> None:
    """Print each row as key=value pairs, and write them all to `record` if one is given."""
    for r in rows:
        print(" ".join(f"{k}={v}" for k, v in r.items()))
    if record:
        write_rows(rows, record)


def write_rows(rows: list[dict], path: Path) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--regime", required=True)
    ap.add_argument("--record", type=Path, default=None)
    ap.add_argument("--per-chain", action="store_true", help="each chain's answer alone")
    args = ap.parse_args(argv)
    if args.per_chain:
        report_rows([row for r in args.runs for row in chain_rows(r, args.regime)], args.record)
        return 0
    rows = [row_of(r, args.regime) for r in args.runs]
    report_rows(rows, args.record)
    agree = True
    for a, b in itertools.combinations(rows, 2):
        gap, tol = abs(a["p_now"] - b["p_now"]), 3 * math.hypot(a["mcse_bound"], b["mcse_bound"])
        agree &= gap <= tol
        print(f"seeds {a['seed']} vs {b['seed']}: P gap {gap:.4f} (3 MCSE {tol:.4f})")
    print("all converged" if all(r["converged"] for r in rows) else "NOT all converged")
    print("agree within Monte Carlo error" if agree else "DISAGREE beyond Monte Carlo error")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
