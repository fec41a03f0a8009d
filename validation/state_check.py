"""The shipped experiments' results before and after a refactor: quick runs of each experiment
under this checkout and under a reference checkout (`--ref`, e.g. a git worktree of the commit
before), with the same seed, and their `derived.nc` compared variable by variable (issue 27).

Quick runs are short, so the two differ by Monte Carlo error even where the models are equal.
The check: for every variable with a `quantile` dimension present in both, the largest gap
between the two runs' medians, in units of the reference run's 90% band width at that point;
a run pair passes when every such gap is below `--tol` (default 0.5: the medians of two equal
models' quick runs sit well within half a band of each other, a changed model does not).
Experiments changed by design since the reference are named with `--changed` and reported apart.
Where a pair differs, the reference is run again on the next seed: a quick run that does not
converge can differ from itself by more than the tolerance, and then the pair is reported as
within the reference's own seed-to-seed spread when no gap exceeds that spread.

    python validation/state_check.py --ref /work/ref --seed 1 \\
        --record validation/records/state_check.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]


def experiments(root: Path) -> dict[str, Path]:
    """Every experiment file under root/experiments by experiment name (its stem), studies'
    own files and sweeps aside."""
    out = {}
    for path in sorted((root / "experiments").rglob("*.toml")):
        if path.name == "study.toml" or "sweeps" in path.parts or "scenarios" in path.parts:
            continue
        out[path.stem] = path
    return out


def quick_run(checkout: Path, experiment: Path, seed: int, out: Path, data_dir: str) -> Path:
    """`regimes run --quick` of `experiment` with `checkout`'s code; its derived.nc."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "REGIMES_DATA_DIR": data_dir}
    cmd = [sys.executable, "-m", "regimes.cli", "run", str(experiment), "--quick", "--seed",
           str(seed), "--out", str(out), "--no-figures", "--no-progress"]  # fmt: skip
    subprocess.run(cmd, cwd=checkout, env=env, check=True, capture_output=True, text=True)
    return next(out.rglob("derived.nc"))


def gaps(new: xr.Dataset, ref: xr.Dataset) -> dict[str, float]:
    """Per shared quantile variable: max |median gap| / reference 90% band width."""
    out = {}
    for name in sorted(set(new.data_vars) & set(ref.data_vars)):
        a, b = new[name], ref[name]
        if "quantile" not in b.dims or a.dims != b.dims:
            continue
        q = b["quantile"].values
        if not {0.05, 0.5, 0.95} <= set(np.round(q, 4)):
            continue
        try:
            a, b = xr.align(a, b, join="inner")
        except ValueError:
            continue
        if np.issubdtype(b.dtype, np.datetime64):  # dates (a spell's start): compared in days
            a, b = (x.astype("datetime64[D]").astype(float).where(x.notnull()) for x in (a, b))
        width = (b.sel(quantile=0.95) - b.sel(quantile=0.05)).values
        gap = np.abs((a.sel(quantile=0.5) - b.sel(quantile=0.5)).values)
        ok = np.isfinite(gap) & np.isfinite(width) & (width > 0)
        if ok.any():  # a band a millionth of the widest (probabilities ~1e-30) measures nothing
            ok &= width > 1e-6 * np.max(width[ok])
        if ok.any():
            out[name] = float(np.max(gap[ok] / width[ok]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", type=Path, required=True, help="the reference checkout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tol", type=float, default=0.5)
    ap.add_argument("--changed", nargs="*", default=[], help="experiments changed by design")
    ap.add_argument("--only", nargs="*", default=None, help="these experiments only")
    ap.add_argument("--data-dir", default=os.environ.get("REGIMES_DATA_DIR", ""))
    ap.add_argument("--record", type=Path, default=None)
    args = ap.parse_args(argv)
    mine, theirs = experiments(ROOT), experiments(args.ref)
    names = [n for n in mine if n in theirs and (args.only is None or n in args.only)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                new = quick_run(
                    ROOT, mine[name], args.seed, Path(tmp) / "new" / name, args.data_dir
                )
                ref = quick_run(
                    args.ref, theirs[name], args.seed, Path(tmp) / "ref" / name, args.data_dir
                )
            except subprocess.CalledProcessError as exc:
                rows.append({"experiment": name, "status": "run failed",
                             "detail": (exc.stderr or "").strip().splitlines()[-1:]})  # fmt: skip
                print(name, "run failed:", rows[-1]["detail"], flush=True)
                continue
            with xr.open_dataset(new) as a, xr.open_dataset(ref) as b:
                g = gaps(a.load(), b.load())
            worst = max(g, key=lambda k: g[k]) if g else ""
            status = "changed by design" if name in args.changed else (
                "equal within MC error" if g and g[worst] < args.tol else "DIFFERS"
            )  # fmt: skip
            g_noise: dict[str, float] = {}
            if status == "DIFFERS":  # the reference against itself on the next seed: its noise
                other = quick_run(
                    args.ref, theirs[name], args.seed + 1, Path(tmp) / "ref2" / name, args.data_dir
                )
                with xr.open_dataset(other) as a, xr.open_dataset(ref) as b:
                    noise = gaps(a.load(), b.load())
                if all(v <= noise.get(k, np.inf) for k, v in g.items() if v >= args.tol):
                    status = "within the reference's own seed-to-seed spread"
                g_noise = {k: round(v, 3) for k, v in noise.items()}
                print(name, "reference seed to seed:", g_noise, flush=True)
            rows.append({"experiment": name, "status": status, "variables": len(g),
                         "worst": worst, "worst_gap": round(g.get(worst, np.nan), 3),
                         "detail": {k: round(v, 3) for k, v in g.items()},
                         "reference_spread": g_noise or ""})  # fmt: skip
            print(name, status, f"worst {worst} {g.get(worst, np.nan):.3f}", flush=True)
    if args.record:
        with args.record.open("w", newline="", encoding="utf-8") as fh:
            fields = ["experiment", "status", "variables", "worst", "worst_gap", "detail",
                      "reference_spread"]  # fmt: skip
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return 0 if all(r["status"] != "DIFFERS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
