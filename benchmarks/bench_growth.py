"""Benchmark: how sampling time grows with series length T and regimes K (issue 6, growth study).

The project's Markov-switching model with switching mean and variance
(`models/ms_mean_variance.toml`, `k_regimes` = K) is fitted to SIMULATED data for every (T, K) in the grid with the same
chains/draws/tune. Each fit runs in a fresh subprocess through the library's own path
(`regimes.api.fit_frame`: model build, multi-start optimisation, compilation, NUTS), so no fit
benefits from another's in-memory state (the on-disk compile cache is shared, as in real use).

Timed, per fit: `sample_s` = `fit_frame(..., log_likelihood=False)` (build + multistart + compile +
NUTS; imports excluded), of which `multistart_s` is the multi-start optimisation (timed by wrapping
`regimes.sampling.multistart` here); `loglik_s` = the family's per-draw pointwise log-likelihood
pass that a run adds afterwards (reported, not in ESS/s); `process_s` = the whole subprocess.
No wall-clock assertions: the script prints times, min bulk ESS, ESS/s and the T=4000/T=1000
ratio for K=3 (target <= 3x).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import fmt, loadavg, text_table

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ms_mean_variance"  # a shipped spec (src/regimes/models/), found from any folder
FULL_T = (250, 1000, 4000)
FULL_K = (2, 3)
SMOKE_T = (100, 200)
SMOKE_K = (2,)
SMOKE_STARTS = 2  # multi-start optimisations in --smoke (the spec's 12 otherwise)
TARGET_RATIO = 3.0


def simulate(t: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A K-regime Markov-switching series with switching mean and sd; returns (y, states)."""
    rng = np.random.default_rng(seed + 1000 * k + t)
    stay = 0.97
    P = np.full((k, k), (1 - stay) / (k - 1)) + np.eye(k) * (stay - (1 - stay) / (k - 1))
    mu = np.linspace(-2.0, 2.0, k)
    sd = np.linspace(0.5, 1.0, k)
    states = np.empty(t, dtype=int)
    states[0] = rng.integers(k)
    for i in range(1, t):
        states[i] = rng.choice(k, p=P[states[i - 1]])
    y = mu[states] + sd[states] * rng.standard_normal(t)
    return y, states


def write_experiment(folder: Path, k: int, t: int, sizes: dict[str, int]) -> Path:
    """A temporary experiment config: the ms_mean_variance spec with k_regimes = K."""
    import pandas as pd
    import tomli_w

    index = pd.date_range("1700-01-01", periods=t, freq="MS")
    raw = {
        "name": f"growth_T{t}_K{k}",
        "description": f"growth study: simulated series, T={t}, K={k}",
        "model": MODEL,
        "options": {"k_regimes": k},
        "data": {
            "target": "simulated",
            "start": f"{index[0]:%Y-%m}",
            "end": f"{index[-1]:%Y-%m}",
            "min_obs": 3,
        },
        "sampler": {key: v for key, v in sizes.items() if key != "n_starts"},
    }
    if sizes.get("n_starts"):
        raw["options"]["n_starts"] = sizes["n_starts"]
    path = folder / f"growth_T{t}_K{k}.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def fit_one(t: int, k: int, sizes: dict[str, int]) -> dict[str, Any]:
    """Fit one (T, K) cell in this process through `regimes.api.fit_frame`; return timings and ESS."""
    from regimes.cache import configure_compile_caches

    configure_compile_caches()  # before JAX/PyTensor import, as `regimes run` does
    import pandas as pd

    from regimes.config import load_experiment
    from regimes.dataset import FitFrame
    from regimes.diagnostics import quick_verdict
    from regimes.families import get_family
    from regimes.families.base import Fit
    from regimes.fit import fit_frame

    y, _ = simulate(t, k, sizes["seed"])
    index = pd.date_range("1700-01-01", periods=t, freq="MS")
    frame = FitFrame(
        target="simulated",
        factors=(),
        frame=pd.DataFrame({"simulated": y}, index=index),
        fit=pd.Series(True, index=index, name="in_sample"),
        attrs={"fit_start": f"{index[0]:%Y-%m}", "fit_end": f"{index[-1]:%Y-%m}"},
    )
    with tempfile.TemporaryDirectory(prefix="bench_growth_") as tmp:
        exp = load_experiment(write_experiment(Path(tmp), k, t, sizes))
    assert exp.spec is not None
    family = get_family(exp.spec.family)
    multistart_s = _time_multistart()
    t0 = time.perf_counter()
    tree = fit_frame(exp, frame, progress=False, quiet=True, log_likelihood=False)
    sample_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    family.log_likelihood(Fit(tree, frame, exp.spec))
    loglik_s = time.perf_counter() - t1
    verdict = quick_verdict(tree)
    return {
        "T": t,
        "K": k,
        "sample_s": sample_s,
        "multistart_s": sum(multistart_s),
        "loglik_s": loglik_s,
        "min_ess_bulk": float(verdict["min_ess_bulk"]),
        "max_rhat": float(verdict["max_rhat"]),
        "divergences": int(verdict["divergences"]),
        "converged": bool(verdict["converged"]),
        "backend": tree.attrs.get("sampling_backend"),
    }


def _time_multistart() -> list[float]:
    """Wrap `regimes.sampling.multistart` with a timer (benchmark-side; the library is unchanged)
    so a cell can report how much of `sample_s` the multi-start optimisation took."""
    import regimes.sampling as sampling

    spent: list[float] = []
    original = sampling.multistart

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    sampling.multistart = timed
    return spent


def run_cell(t: int, k: int, sizes: dict[str, int], folder: Path, inline: bool) -> dict[str, Any]:
    """Fit one cell in a fresh subprocess of this script (or in this process with `inline`)."""
    t0 = time.perf_counter()
    if inline:
        row = fit_one(t, k, sizes)
        process_s = None
    else:
        out = folder / f"cell_T{t}_K{k}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--cell", f"{t},{k}"]
        cmd += ["--sizes", json.dumps(sizes), "--json", str(out)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        process_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(
                f"cell T={t} K={k} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        row = json.loads(out.read_text(encoding="utf-8"))
    row["process_s"] = process_s
    row["after_multistart_s"] = row["sample_s"] - row["multistart_s"]
    row["ess_per_s"] = row["min_ess_bulk"] / row["sample_s"] if row["sample_s"] > 0 else None
    return row


def ratios(
    rows: list[dict[str, Any]], t_hi: int, t_lo: int, key: str = "sample_s"
) -> dict[str, float | None]:
    """`key` at T=t_hi over T=t_lo, per K (None where a cell is missing)."""
    by = {(r["T"], r["K"]): r for r in rows}
    out: dict[str, float | None] = {}
    for k in sorted({r["K"] for r in rows}):
        hi, lo = by.get((t_hi, k)), by.get((t_lo, k))
        out[f"K={k}"] = hi[key] / lo[key] if hi and lo and lo[key] > 0 else None
    return out


def target_line(ratio_by_k: dict[str, float | None], t_hi: int, t_lo: int) -> str:
    """The issue-6 growth target for K=3 with the measured ratio."""
    r = ratio_by_k.get("K=3")
    head = f"target: sample time T={t_hi} / T={t_lo} <= {TARGET_RATIO:g}x for K=3"
    if r is None:
        return f"{head}: not measured"
    return f"{head}: measured {r:.2f}x ({'met' if r <= TARGET_RATIO else 'not met'})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--T", dest="t_grid", type=str, default=None, help="comma-separated T values")
    p.add_argument("--K", dest="k_grid", type=str, default=None, help="comma-separated K values")
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"T={SMOKE_T}, K={SMOKE_K}, 1 chain x 30 draws, 30 tune, {SMOKE_STARTS} starts, "
        "all cells in this process",
    )
    p.add_argument("--json", type=Path, default=None, help="write results to this JSON file")
    p.add_argument("--cell", type=str, default=None, help=argparse.SUPPRESS)  # child: "T,K"
    p.add_argument("--sizes", type=str, default=None, help=argparse.SUPPRESS)  # child: JSON
    args = p.parse_args(argv)
    t_grid, k_grid = (SMOKE_T, SMOKE_K) if args.smoke else (FULL_T, FULL_K)
    if args.smoke:
        args.chains, args.draws, args.tune = 1, 30, 30
    args.t_grid = [int(x) for x in args.t_grid.split(",")] if args.t_grid else list(t_grid)
    args.k_grid = [int(x) for x in args.k_grid.split(",")] if args.k_grid else list(k_grid)
    return args


def main(argv: list[str] | None = None) -> int:
    """Fit every (T, K) cell, print the table and the growth target, optionally write JSON."""
    args = parse_args(argv)
    if args.cell:  # child mode: one fit, result to --json
        t, k = (int(x) for x in args.cell.split(","))
        row = fit_one(t, k, json.loads(args.sizes))
        args.json.write_text(json.dumps(row) + "\n", encoding="utf-8")
        return 0
    sizes = {"chains": args.chains, "draws": args.draws, "tune": args.tune, "seed": args.seed}
    sizes["n_starts"] = SMOKE_STARTS if args.smoke else 0  # 0: the model spec's own n_starts
    load_start = loadavg()
    print(
        f"growth study: ms_mean_variance on simulated data; T={args.t_grid} K={args.k_grid}; "
        f"chains={args.chains} draws={args.draws} tune={args.tune} seed={args.seed}"
        f"{f' n_starts={SMOKE_STARTS} (smoke, cells in one process)' if args.smoke else ''}; "
        f"load average at start {load_start}",
        flush=True,
    )
    print(
        "timed: sample_s = regimes.api.fit_frame (build + multistart + compile + NUTS, imports "
        "excluded); multistart_s = the multi-start optimisation inside sample_s (its compile "
        "included); loglik_s = pointwise log-likelihood pass after sampling (not in sample_s); "
        "process_s = whole subprocess of the cell; ess_per_s = min bulk ESS / sample_s",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_growth_") as tmp:
        for k in args.k_grid:
            for t in args.t_grid:
                print(f"fitting T={t} K={k} ...", flush=True)
                rows.append(run_cell(t, k, sizes, Path(tmp), inline=args.smoke))
    load_end = loadavg()
    cols = ["T", "K", "sample_s", "multistart_s", "min_ess_bulk", "ess_per_s", "max_rhat"]
    cols += ["divergences", "loglik_s", "process_s"]
    print()
    print(text_table(cols, [[r.get(c) for c in cols] for r in rows]))
    grid = sorted(args.t_grid)
    t_hi, t_lo = grid[-1], (grid[-2] if len(grid) > 1 else None)
    ratio_by_k = ratios(rows, t_hi, t_lo) if t_lo else {}
    ratio_rest = ratios(rows, t_hi, t_lo, "after_multistart_s") if t_lo else {}
    print()
    for key, value in ratio_by_k.items():
        print(
            f"ratio T={t_hi}/T={t_lo}, {key}: sample_s {fmt(value)}; sample_s - multistart_s "
            f"(build, NUTS compile, warm-up, draws) {fmt(ratio_rest.get(key))}"
        )
    target = target_line(ratio_by_k, t_hi, t_lo or t_hi)
    print(target)
    print(f"load average at start {load_start}, at end {load_end}")
    if args.json:
        payload = {
            "settings": {**sizes, "smoke": args.smoke, "T": args.t_grid, "K": args.k_grid},
            "timed": "sample_s: regimes.api.fit_frame(log_likelihood=False), imports excluded",
            "cells": rows,
            "ratio_hi_lo": {"T_hi": t_hi, "T_lo": t_lo, **ratio_by_k},
            "ratio_hi_lo_after_multistart": ratio_rest,
            "target": target,
            "loadavg_start": load_start,
            "loadavg_end": load_end,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
