"""Benchmark: peak memory of one full gold error-correction `regimes run` (issue 6, target <= 2 GB).

The experiment is `experiments/gold/ms2_ecm.toml` (formerly `experiments/gold_ecm.toml`, which is
used where it still exists). The run is a subprocess (`regimes run EXPERIMENT --out <tmp> --no-progress`, with the experiment's
own sampler settings, or `--quick` for the smoke variant). Two peaks are recorded:

* `maxrss_mb`: `getrusage(RUSAGE_CHILDREN).ru_maxrss` after the run, i.e. the largest peak
  resident set of any single process in the run's tree (exact, kernel-tracked);
* `tree_peak_mb`: the largest sum of VmRSS over the run's whole process tree, polled from /proc
  every `--interval` seconds (catches worker processes running at once; may miss short spikes).

The target is judged on the larger of the two. No assertions: the script prints the numbers and
the ratio to 2048 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import loadavg, text_table

ROOT = Path(__file__).resolve().parents[1]
# the gold error-correction experiment (moved from experiments/gold_ecm.toml to experiments/gold/)
EXPERIMENT = next(
    (
        p
        for p in (
            ROOT / "experiments" / "gold" / "ms2_ecm.toml",
            ROOT / "experiments" / "gold_ecm.toml",
        )
        if p.exists()
    ),
    ROOT / "experiments" / "gold" / "ms2_ecm.toml",
)
TARGET_MB = 2048.0


def _children(pid: int, table: dict[int, list[int]]) -> list[int]:
    """`pid` and all its descendants, from a parent -> children table."""
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(table.get(p, []))
    return out


def tree_rss_mb(pid: int) -> float | None:
    """Sum of VmRSS (MB) over `pid` and its descendants from /proc; None where /proc is absent."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    table: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        table.setdefault(ppid, []).append(int(entry.name))
    total_kb = 0
    for p in _children(pid, table):
        try:
            for line in (proc / str(p) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024.0


def measure(
    experiment: Path, out: Path, quick: bool, interval: float, figures: bool = True
) -> dict[str, Any]:
    """Run `regimes run` once, polling its process tree's RSS; return peaks, wall time, verdict."""
    regimes_bin = Path(sys.executable).with_name("regimes")
    cmd = [str(regimes_bin), "run", str(experiment), "--out", str(out), "--no-progress"]
    if quick:
        cmd.append("--quick")
    if not figures:
        cmd.append("--no-figures")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        tree_peak = 0.0
        polled = False
        while proc.poll() is None:
            rss = tree_rss_mb(proc.pid)
            if rss is not None:
                polled = True
                tree_peak = max(tree_peak, rss)
            time.sleep(interval)
        wall = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"regimes run failed ({proc.returncode}):\n{stderr[-4000:]}")
    maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
    maxrss_mb = maxrss_kb / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss_kb / 1024.0
    manifests = sorted(out.rglob("manifest.json"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads(manifests[-1].read_text(encoding="utf-8")) if manifests else {}
    peak = max(maxrss_mb, tree_peak if polled else 0.0)
    return {
        "wall_s": wall,
        "maxrss_mb": maxrss_mb,
        "tree_peak_mb": tree_peak if polled else None,
        "peak_mb": peak,
        "ratio_to_2048": peak / TARGET_MB,
        "sampler": manifest.get("sampler"),
        "min_ess_bulk": (manifest.get("verdict") or {}).get("min_ess_bulk"),
        "timing": manifest.get("timing"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", type=Path, default=EXPERIMENT)
    p.add_argument("--quick", action="store_true", help="pass --quick to regimes run (smoke)")
    p.add_argument(
        "--no-figures", action="store_true", help="pass --no-figures to regimes run (smoke)"
    )
    p.add_argument("--interval", type=float, default=0.2, help="/proc polling interval, seconds")
    p.add_argument("--json", type=Path, default=None, help="write results to this JSON file")
    args = p.parse_args(argv)
    args.experiment = args.experiment.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure one run's peak memory, print it with the target line, optionally write JSON."""
    args = parse_args(argv)
    load_start = loadavg()
    what = "--quick" if args.quick else "the experiment's own sampler settings"
    flags = (" --quick" if args.quick else "") + (" --no-figures" if args.no_figures else "")
    print(
        f"peak memory of `regimes run {args.experiment.relative_to(ROOT)} --out <tmp> "
        f"--no-progress{flags}` ({what}); "
        f"load average at start {load_start}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        row = measure(
            args.experiment, Path(tmp) / "out", args.quick, args.interval, not args.no_figures
        )
    load_end = loadavg()
    sampler = row.get("sampler") or {}
    cols = ["wall_s", "maxrss_mb", "tree_peak_mb", "peak_mb", "ratio_to_2048", "min_ess_bulk"]
    print()
    print(text_table(cols, [[row.get(c) for c in cols]]))
    print(
        f"sampler: {sampler.get('chains')} chains x {sampler.get('draws')} draws, "
        f"{sampler.get('tune')} tune, backend {sampler.get('backend_used')}"
    )
    verdict = "met" if row["peak_mb"] <= TARGET_MB else "not met"
    target = (
        f"target: peak memory of a full gold run <= 2048 MB: measured {row['peak_mb']:.0f} MB "
        f"= {row['ratio_to_2048']:.2f}x of 2048 MB ({verdict})"
    )
    if args.quick or args.no_figures or args.experiment != EXPERIMENT:
        target += " [not the full gold run: smoke settings]"
    print(target)
    print(f"load average at start {load_start}, at end {load_end}")
    if args.json:
        payload = {
            "experiment": str(args.experiment.relative_to(ROOT)),
            "quick": args.quick,
            "figures": not args.no_figures,
            **row,
            "target": target,
            "loadavg_start": load_start,
            "loadavg_end": load_end,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
