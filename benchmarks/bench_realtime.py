"""Benchmark: the shipped real-time sweep (`experiments/gold/sweeps/realtime.toml`, the gold
2-regime ECM refitted at every monthly origin) with `--quick` on a local Dask cluster of
`--workers` workers (issue 30 target: the whole sweep <= 8 minutes on 2 workers, <= 7 s a task,
the same realtime.nc within Monte Carlo error).

Each side runs `regimes sweep ... --quick --workers N` in a fresh process, timed from start to
the written realtime.nc; a task's seconds are its wall time in tasks.json. With `--reference
COMMIT` the code of that commit (a temporary git worktree, its `src` first on the path) runs the
same sweep first, in the same invocation, and the two realtime.nc files are compared: per origin,
the difference of the real-time P(regime) over its Monte Carlo error (each run's sd from its
5-95% band over the square root of its smallest bulk ESS: a conservative error), and the
headline dates. `--origins 2015-01..2016-12` restricts the origins (a quicker comparison; the
target is for the whole sweep). Each side's compile caches start empty (a folder of its own),
as on a machine that never ran the sweep. No assertions: it prints a table, the targets and the
comparison; `--json PATH` writes the numbers.

    .venv/bin/python benchmarks/bench_realtime.py                        # the whole sweep
    .venv/bin/python benchmarks/bench_realtime.py --reference a5a69ca --origins 2015-01..2016-12
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import loadavg, reference_tree, text_table

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "experiments" / "gold" / "sweeps" / "realtime.toml"
TARGET_TOTAL_S, TARGET_TASK_S = 480.0, 7.0


def sweep_file(folder: Path, origins: str | None) -> Path:
    """The shipped sweep, or a copy restricted to `origins` ("START..END"), pointing at the
    shipped experiment."""
    if not origins:
        return SWEEP
    import tomllib

    import tomli_w

    start, end = origins.split("..")
    body = tomllib.loads(SWEEP.read_text(encoding="utf-8"))
    body["experiment"] = str((SWEEP.parent / body["experiment"]).resolve())
    body["origins"].update(start=start, end=end)
    path = folder / "realtime.toml"
    path.write_text(tomli_w.dumps(body), encoding="utf-8")
    return path


def run_sweep(sweep: Path, out: Path, workers: int, src: Path | None) -> dict[str, Any]:
    """One `regimes sweep --quick` in a fresh process with its own empty compile caches."""
    env = {**os.environ, "REGIMES_CACHE_DIR": str(out / "cache"), "MPLBACKEND": "Agg"}
    if src is not None:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "regimes.cli", "sweep", str(sweep), "--quick", "--workers",
           str(workers), "--out", str(out / "results"), "--quiet"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "wall_s": wall}
    folder = Path(proc.stdout.strip().splitlines()[-1])
    table = json.loads((folder / "tasks.json").read_text(encoding="utf-8"))
    tasks = [t for t in table["tasks"] if t.get("status") == "complete"]
    seconds = np.array([t["wall_s"] for t in tasks], dtype=float)
    return {
        "wall_s": round(wall, 1),
        "tasks": len(tasks),
        "task_mean_s": round(float(seconds.mean()), 2),
        "task_median_s": round(float(np.median(seconds)), 2),
        "task_first_s": round(float(seconds.max()), 2),
        "folder": str(folder),
    }


def mc_comparison(before: Path, after: Path) -> dict[str, Any]:
    """The two sweeps' real-time P(regime) per origin: difference over its Monte Carlo error."""
    import xarray as xr

    def load(folder: Path) -> tuple[Any, dict[str, float]]:
        rt = xr.open_dataset(folder / "realtime.nc").load()
        ess = {}
        for done in folder.glob("tasks/*/done.json"):
            rec = json.loads(done.read_text(encoding="utf-8"))
            manifest = json.loads((done.parent / rec["run_dir"] / "manifest.json").read_text())
            ess[done.parent.name.removeprefix("origin-")] = manifest["verdict"]["min_ess_bulk"]
        return rt, ess

    (a, ea), (b, eb) = load(before), load(after)
    regime = a.attrs["regime"]
    origins = [f"{o:%Y-%m}" for o in a.indexes["origin"]]

    def prob_sd(rt: Any) -> tuple[np.ndarray, np.ndarray]:
        q = rt["realtime_prob_q"].sel(regime=regime)
        band = q.sel(quantile=0.95).values - q.sel(quantile=0.05).values
        return rt["realtime_prob"].sel(regime=regime).values, band / 3.29

    (pa, sa), (pb, sb) = prob_sd(a), prob_sd(b)
    na = np.array([max(ea[o], 1.0) for o in origins])
    nb = np.array([max(eb[o], 1.0) for o in origins])
    se = np.sqrt(sa**2 / na + sb**2 / nb)
    z = np.abs(pb - pa) / np.where(se > 0, se, np.nan)
    diff = np.abs(pb - pa)
    return {
        "regime": regime,
        "origins": len(origins),
        "abs_diff_mean": round(float(diff.mean()), 4),
        "abs_diff_max": round(float(diff.max()), 4),
        "abs_z_median": round(float(np.nanmedian(z)), 2),
        "share_abs_z_over_2": round(float(np.nanmean(z > 2)), 3),
        "share_abs_z_over_3": round(float(np.nanmean(z > 3)), 3),
        "over_3": {
            o: [round(float(x), 3), round(float(y), 3)]
            for o, x, y, zz in zip(origins, pa, pb, z, strict=True)
            if zz > 3
        },
        "headline": {
            k: [a.attrs.get(k), b.attrs.get(k)]
            for k in ("shift_date", "shift_date_early", "shift_date_late")
        },
        "detection_delay": [
            a["detection_delay"].values.tolist(),
            b["detection_delay"].values.tolist(),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--origins", default="", help='e.g. "2015-01..2016-12" (default: all)')
    parser.add_argument("--reference", default="", help="also run the code of this commit first")
    parser.add_argument("--json", default="", help="write the numbers here")
    args = parser.parse_args()
    load_start = loadavg()
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sweep = sweep_file(folder, args.origins)
        with reference_tree(ROOT, args.reference) as tree:
            if tree is not None:
                print(f"running the sweep at {args.reference} ...", flush=True)
                rows["before"] = run_sweep(sweep, folder / "before", args.workers, tree / "src")
        print("running the sweep at the working tree ...", flush=True)
        rows["after"] = run_sweep(sweep, folder / "after", args.workers, None)
        compared = None
        if "before" in rows and "folder" in rows["before"] and "folder" in rows["after"]:
            compared = mc_comparison(Path(rows["before"]["folder"]), Path(rows["after"]["folder"]))
        cols = ["side", "wall_s", "tasks", "task_mean_s", "task_median_s", "task_first_s"]
        print()
        print(text_table(cols, [[k, *(v.get(c) for c in cols[1:])] for k, v in rows.items()]))
        after = rows["after"]
        if "wall_s" in after and "tasks" in after:
            print(
                f"whole sweep {after['wall_s']:.0f} s (target <= {TARGET_TOTAL_S:.0f} s for all 137 "
                f"origins), {after['task_mean_s']:.1f} s a task (target <= {TARGET_TASK_S:.0f} s)"
            )
        if "before" in rows and "wall_s" in rows["before"] and "tasks" in after:
            print(
                f"speed-up against {args.reference}: {rows['before']['wall_s'] / after['wall_s']:.2f}x"
            )
        if compared is not None:
            print(json.dumps(compared, indent=1))
    print(f"load average at start {load_start}, at end {loadavg()}")
    if args.json:
        payload = {"rows": rows, "comparison": compared, "reference": args.reference,
                   "origins": args.origins or "all", "loadavg_start": load_start}  # fmt: skip
        Path(args.json).write_text(json.dumps(payload, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
