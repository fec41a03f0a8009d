"""Benchmark: a sweep of N small fits with 1 and with 2 Dask workers (issue 16, target: 2 workers
at least 1.7x faster on 2 cores), and the peak memory of each worker.

The fits are the cheapest real ones: the static fair-value model (gold on the dollar and the real
rate, level regression, iid errors, 2012-2019) with `--quick` settings of `--draws` draws and
tuning steps and `--chains` chains, one fit per seed (`seeds = [1..N]`). For each worker count a
local cluster is started and warmed up first (one task per worker: imports and the per-worker
compile cache), then the N-task sweep is timed from submission to the combined sweep.nc
(`--repeat R`: R times, keeping the fastest, the one least disturbed by other work). Peak
memory is each worker process's `ru_maxrss` after the sweep. No assertions: it prints a table and
the speed-up, and `--json PATH` writes the numbers.

    .venv/bin/python benchmarks/bench_sweep.py                 # 20 fits, 1 vs 2 workers
    .venv/bin/python benchmarks/bench_sweep.py --n 4 --json /tmp/s.json   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import loadavg, text_table

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

EXPERIMENT = """name = "bench_static"
model = "{model}"
[options]
transform = "level"
errors = "iid"
[data]
target = "gold"
factors = ["dollar", "real_rate"]
start = "2012-01"
end = "2019-12"
[sampler.quick]
draws = {draws}
tune = {draws}
chains = {chains}
[outputs]
figures = false
"""


def peak_rss_mb() -> float:
    """This process's peak resident set in MB (run on each worker)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_sweep(folder: Path, seeds: list[int], name: str, draws: int, chains: int) -> Path:
    """The benchmark's experiment and a seeds sweep of it."""
    exp = folder / "bench_static.toml"
    model = ROOT / "models" / "static_fair_value.toml"
    exp.write_text(EXPERIMENT.format(model=model, draws=draws, chains=chains), encoding="utf-8")
    path = folder / f"{name}.toml"
    path.write_text(f'experiment = "bench_static.toml"\nseeds = {seeds}\n', encoding="utf-8")
    return path


def measure(
    workers: int, n: int, folder: Path, data_dir: str | None, draws: int, chains: int, repeat: int
) -> dict[str, Any]:
    """Wall time of an n-task sweep on a warmed-up local cluster of `workers` (the fastest of
    `repeat`), and each worker's peak memory."""
    from regimes.sweep import run_sweep
    from regimes.sweep.executor import DaskExecutor, local_cluster

    warm = write_sweep(folder, list(range(1000, 1000 + workers)), f"warm{workers}", draws, chains)
    main = write_sweep(folder, list(range(1, n + 1)), f"sweep{workers}", draws, chains)
    t0 = time.perf_counter()
    with local_cluster(workers=workers, cores=os.cpu_count()) as cluster:
        started = time.perf_counter() - t0
        common = {"data_dir": data_dir, "out": folder / "out", "quick": True, "quiet": True}
        run_sweep(warm, executor=DaskExecutor(scheduler=cluster.scheduler_address), **common)
        walls = []
        for i in range(repeat):  # the fastest of `repeat` sweeps: the least disturbed by others
            t1 = time.perf_counter()
            ex = DaskExecutor(scheduler=cluster.scheduler_address)
            out = run_sweep(main, executor=ex, **{**common, "out": folder / f"out{workers}-{i}"})
            walls.append(time.perf_counter() - t1)
        wall = min(walls)
        with DaskExecutor(scheduler=cluster.scheduler_address) as ex:
            peaks = ex.client.run(peak_rss_mb)
    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))["tasks"]
    fit = [t["wall_s"] for t in tasks if t["status"] == "complete"]
    return {
        "workers": workers,
        "tasks": n,
        "complete": len(fit),
        "cluster_start_s": round(started, 2),
        "wall_s": round(wall, 2),
        "walls_s": [round(w, 2) for w in walls],
        "task_s_mean": round(sum(fit) / max(1, len(fit)), 2),
        "peak_rss_mb_per_worker": sorted(round(v, 1) for v in peaks.values()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="fits in the sweep (default 20)")
    p.add_argument("--draws", type=int, default=150, help="draws and tuning steps per fit")
    p.add_argument("--chains", type=int, default=1, help="chains per fit (default 1)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    p.add_argument(
        "--repeat", type=int, default=1, help="time each sweep this often; keep the fastest"
    )
    p.add_argument("--data-dir", default=None, help="data directory (default $REGIMES_DATA_DIR)")
    p.add_argument("--json", type=Path, default=None, help="write results to this JSON file")
    args = p.parse_args()
    load_before = loadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for w in args.workers:
            rows.append(
                measure(w, args.n, Path(tmp), args.data_dir, args.draws, args.chains, args.repeat)
            )
            print(f"{w} worker(s): {rows[-1]['wall_s']:.1f} s for {args.n} fits", file=sys.stderr)
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup"] = round(base / r["wall_s"], 2) if r["wall_s"] else None
    cols = ["workers", "tasks", "complete", "wall_s", "task_s_mean", "speedup", "peak MB/worker"]
    print(
        text_table(
            cols,
            [
                [
                    r["workers"],
                    r["tasks"],
                    r["complete"],
                    r["wall_s"],
                    r["task_s_mean"],
                    r["speedup"],
                    ", ".join(f"{v:.0f}" for v in r["peak_rss_mb_per_worker"]),
                ]
                for r in rows
            ],
        )
    )
    payload = {
        "benchmark": "bench_sweep",
        "cores": os.cpu_count(),
        "draws": args.draws,
        "chains": args.chains,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "rows": rows,
    }
    print(f"load average before {load_before}, after {payload['loadavg_after']}")
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
