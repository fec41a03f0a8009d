"""Benchmark: a sweep of N small fits with 1 and with 2 Dask workers (issue 16, target: 2 workers
at least 1.7x faster on 2 cores), and the peak memory of each worker.

The fits are the cheapest real ones: the static fair-value model (gold on the dollar and the real
rate, level regression, iid errors, 2012-2019) with `--quick` settings of `--draws` draws and
tuning steps and `--chains` chains, one fit per seed (`seeds = [1..N]`). A local cluster of each
worker count is started and warmed up first (one task per worker: imports and the per-worker
compile cache); then the N-task sweeps take turns, 1 worker, 2 workers, 1, 2, ... for `--repeat`
rounds, each timed from submission to the combined sweep.nc. Taking turns lets a change in the
machine's load meet both counts alike; the fastest of each count is kept and each round's own
ratio printed. Peak memory is each worker process's `ru_maxrss` after the sweeps. No assertions:
it prints a table and the speed-up, and `--json PATH` writes the numbers.

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


def timed_sweep(cluster: Any, path: Path, out: Path, data_dir: str | None) -> tuple[float, Path]:
    """Wall seconds of one sweep on a running cluster, submission to the combined sweep.nc, and
    the sweep folder."""
    from regimes.sweep import run_sweep
    from regimes.sweep.executor import DaskExecutor

    t0 = time.perf_counter()
    ex = DaskExecutor(scheduler=cluster.scheduler_address)
    folder = run_sweep(path, executor=ex, data_dir=data_dir, out=out, quick=True, quiet=True)
    return time.perf_counter() - t0, folder


def measure(
    counts: list[int],
    n: int,
    folder: Path,
    data_dir: str | None,
    draws: int,
    chains: int,
    repeat: int,
) -> list[dict[str, Any]]:
    """Wall time of an n-task sweep on a warmed-up local cluster of each worker count, and each
    worker's peak memory. The clusters run side by side and the sweeps take turns (1, 2, 1, 2,
    ... workers), `repeat` rounds, so a change in the machine's load between rounds meets every
    worker count alike; the fastest of each count is kept."""
    from contextlib import ExitStack

    from regimes.sweep.executor import DaskExecutor, local_cluster

    rows: dict[int, dict[str, Any]] = {}
    with ExitStack() as stack:
        clusters = {}
        for w in counts:
            t0 = time.perf_counter()
            clusters[w] = stack.enter_context(local_cluster(workers=w, cores=os.cpu_count()))
            rows[w] = {"workers": w, "tasks": n, "cluster_start_s": time.perf_counter() - t0}
            warm = write_sweep(folder, list(range(1000, 1000 + w)), f"warm{w}", draws, chains)
            timed_sweep(clusters[w], warm, folder / "warm", data_dir)  # imports, compile
        walls: dict[int, list[float]] = {w: [] for w in counts}
        last: dict[int, Path] = {}  # each count's latest sweep folder (its tasks.json)
        for i in range(repeat):
            for w in counts:
                main = write_sweep(folder, list(range(1, n + 1)), f"sweep{w}", draws, chains)
                wall, last[w] = timed_sweep(clusters[w], main, folder / f"out{w}-{i}", data_dir)
                walls[w].append(wall)
                print(f"round {i + 1}: {w} worker(s) {walls[w][-1]:.1f} s", file=sys.stderr)
        for w in counts:
            with DaskExecutor(scheduler=clusters[w].scheduler_address) as ex:
                peaks = ex.client.run(peak_rss_mb)
            tasks = json.loads((last[w] / "tasks.json").read_text(encoding="utf-8"))["tasks"]
            fit = [t["wall_s"] for t in tasks if t["status"] == "complete"]
            rows[w].update(
                complete=len(fit),
                cluster_start_s=round(rows[w]["cluster_start_s"], 2),
                wall_s=round(min(walls[w]), 2),
                walls_s=[round(x, 2) for x in walls[w]],
                task_s_mean=round(sum(fit) / max(1, len(fit)), 2),
                peak_rss_mb_per_worker=sorted(round(v, 1) for v in peaks.values()),
            )
    base = walls[counts[0]]
    for w in counts:  # each round's own ratio: how much the result moves with the load
        rows[w]["round_speedups"] = [round(a / b, 2) for a, b in zip(base, walls[w], strict=True)]
    return [rows[w] for w in counts]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="fits in the sweep (default 20)")
    p.add_argument("--draws", type=int, default=150, help="draws and tuning steps per fit")
    p.add_argument("--chains", type=int, default=1, help="chains per fit (default 1)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    p.add_argument(
        "--repeat", type=int, default=3, help="rounds of sweeps (default 3); keep the fastest"
    )
    p.add_argument("--data-dir", default=None, help="data directory (default $REGIMES_DATA_DIR)")
    p.add_argument("--json", type=Path, default=None, help="write results to this JSON file")
    args = p.parse_args()
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        rows = measure(
            args.workers, args.n, Path(tmp), args.data_dir, args.draws, args.chains, args.repeat
        )
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup"] = round(base / r["wall_s"], 2) if r["wall_s"] else None
    cols = [
        "workers",
        "tasks",
        "complete",
        "wall_s",
        "task_s_mean",
        "speedup",
        "per round",
        "peak MB/worker",
    ]
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
                    ", ".join(f"{v:.2f}" for v in r["round_speedups"]),
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
