"""Benchmark: the multi-start optimisation alone and with other processes doing the same on the
same cores, with one BLAS thread per process (`regimes.cache.setup_process`'s default) and with
one per core (OpenBLAS's default).

Why: the multistart's L-BFGS (scipy) and its thousands of small jitted calls do tiny numpy/BLAS
work between them. OpenBLAS threads spin while they wait for work; with processes side by side
on the same cores (SBC runs, the test suite's xdist workers; Dask's nanny already gives its
workers one thread) the spinning threads starve the ones doing the work: the panel SBC's 12
starts took 348 s beside two other SBC processes against 12.8 s alone. (JAX's CPU async
dispatch, `jax_cpu_enable_async_dispatch`, was measured too and is not the cause: 103 s on,
99 s off, 3 processes.)

Each configuration starts `--procs` identical worker processes at once; every worker builds the
panel model of `validation/sbc_panel.py`'s design (5 assets, 150 months), compiles it, warms up
with one start and then times `sampling.multistart_compiled` with `--starts` starts. The
reference is one worker alone with one BLAS thread per core, in the same invocation; the table
prints every configuration's median worker time and its ratio to the reference. No assertions.

    .venv/bin/python benchmarks/bench_side_by_side.py               # 1 and 3 processes
    .venv/bin/python benchmarks/bench_side_by_side.py --procs 2 --starts 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import loadavg, text_table
from regimes.cache import BLAS_VARS

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")


def worker(starts: int) -> None:
    """Time one multistart in this process; print its seconds as JSON on stdout."""
    from regimes.cache import setup_process

    setup_process()  # keeps the BLAS thread count the driver set in the environment
    from regimes import compiled
    from regimes.families import get_family
    from regimes.families.panel.simulate import simulate_panel
    from regimes.sampling import multistart_compiled
    from regimes.spec import ModelSpec

    frame, _ = simulate_panel(1, n_months=150, late_by=50)
    options = {"k_regimes": 2, "order_by": "x1", "sticky": 18.0, "n_starts": starts}
    model = get_family("panel").build(ModelSpec(family="panel", options=options, name="b"), frame)
    cm = compiled.compiled_for(model, "bench-side-by-side")
    data = cm.data_of(model)
    multistart_compiled(model, cm, data, 1, seed=0)  # compile and warm up
    t0 = time.perf_counter()
    out = multistart_compiled(model, cm, data, starts, seed=1)
    took = time.perf_counter() - t0
    print(json.dumps({"seconds": took, "optima": len(out["log_densities"])}))


def run_config(procs: int, starts: int, blas_threads: int) -> list[float]:
    """Start `procs` workers at once with `blas_threads` BLAS threads each; their seconds."""
    cmd = [sys.executable, __file__, "--worker", "--starts", str(starts)]
    env = {**os.environ, **dict.fromkeys(BLAS_VARS, str(blas_threads))}
    running = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        for _ in range(procs)
    ]
    times = []
    for proc in running:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker failed (exit {proc.returncode}); run it with --worker")
        times.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the configurations and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=3, help="processes side by side")
    ap.add_argument("--starts", type=int, default=12)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.starts)
        return 0
    print(f"cores {os.cpu_count()}, load before {loadavg()}", flush=True)
    rows, results = [], {}
    cores = os.cpu_count() or 1
    for procs in (1, args.procs):
        for blas in (cores, 1):
            times = sorted(run_config(procs, args.starts, blas))
            label = f"{procs} proc, {blas} BLAS thread{'s' if blas > 1 else ''}"
            results[label] = times
            print(f"{label}: {', '.join(f'{t:.1f}' for t in times)} s", flush=True)
    reference = results[next(iter(results))][0]
    for label, times in results.items():
        median = times[len(times) // 2]
        rows.append([label, median, median / reference])
    print(text_table(["configuration", "median s", "× reference"], rows))
    print(f"load after {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
