"""Tempered SMC at filter speed: the full SMC of `changepoint_2000` against the code before (issue 30).

One invocation, the same experiment, data, particle count and seeds on both sides:

- "before": the code before this work (`--reference COMMIT`), checked out into a temporary git
  worktree and run in a subprocess of this invocation;
- "now": this checkout, in a subprocess started the same way.

Each side builds the model (untimed), then for every seed times one whole
`regimes.sampling.sample` call with `sampler.modes = "smc"` (`--chains` independent runs of
`--draws` particles: prior draws, compilation on the first seed, every stage), and derives the
family's outputs from each run alone (untimed) for the answers compared below. The two sides
take turns seed by seed, so a change in the machine's load meets both.

Printed: seconds per seed, particles × stages per second, the speed-up before / now (the
issue's target: >= 5x at equal particle count), and the answers of both sides with their Monte
Carlo error: each run's log evidence, and each run's break mass by period (the posterior
probability that the first break falls in each period, from derived.nc's `break_prob`), as
means over all runs with standard errors and the difference in standard errors (|z| <= 3:
the same answer within Monte Carlo error).

    .venv/bin/python benchmarks/bench_smc.py                        # 4 x 3000 particles, 2 seeds
    .venv/bin/python benchmarks/bench_smc.py --smoke --json out.json   # 2 x 300, 1 seed, no reference

No wall-clock assertions anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchutil import loadavg, reference_tree, text_table  # noqa: E402

REFERENCE_COMMIT = "20ad3d8"  # main before issue 30's SMC work
EXPERIMENT = "experiments/gold/changepoint_2000.toml"
PERIODS = ["2011-01", "2014-01", "2022-01"]  # break mass before, in and after 2011-2013, recent

# run in each side's subprocess: argv[1] is a JSON object of the settings
CASE = """
import json, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
from regimes.cache import setup_process
setup_process()
import logging
for n in ("pymc", "pymc.sampling.jax", "jax", "regimes"):
    logging.getLogger(n).setLevel(logging.ERROR)
import numpy as np
import pandas as pd
from regimes.config import load_experiment, run_version
from regimes.families import get_family
from regimes.families.base import Fit
from regimes.fit import compile_key
from regimes.sampling import sample
from regimes.userdata import experiment_frame

exp = run_version(load_experiment(args["experiment"]), quick=False)
frame = experiment_frame(exp, Path(args["data_dir"]))
family = get_family(exp.spec.family)
edges = [pd.Timestamp(p) for p in args["periods"]]
out = []
for seed in args["seeds"]:
    model = family.build(exp.spec, frame)
    sampler = exp.sampler.model_copy(
        update={"seed": seed, "draws": args["draws"], "chains": args["chains"], "modes": "smc"}
    )
    t0 = time.perf_counter()
    tree = sample(model, sampler, progress=False, compile_key=compile_key(exp, frame))
    seconds = time.perf_counter() - t0
    mass = []
    for chain in range(args["chains"]):  # each run's own answer
        one = tree.isel(chain=[chain], missing_dims="ignore")
        derived = family.derive(Fit(one, frame, exp.spec), exp.outputs.quantiles)
        if "break_prob" not in derived:
            continue
        first = derived["break_prob"].isel({"break": 0})
        times = pd.DatetimeIndex(first["time"].values)
        bounds = [times[0], *edges, times[-1] + pd.Timedelta(days=1)]
        mass.append([float(first.values[(times >= a) & (times < b)].sum()) for a, b in zip(bounds[:-1], bounds[1:])])
    out.append({
        "seed": seed,
        "seconds": seconds,
        "log_evidence": [float(v) for v in tree.attrs["smc_log_evidence"]],
        "stages": [int(v) for v in tree.attrs["smc_stages"]],
        "break_mass": mass,
    })
print("RESULT" + json.dumps(out))
"""


def run_side(src: Path, settings: dict, seeds: list[int]) -> list[dict]:
    """One side's results for `seeds`: the CASE script in a subprocess on the code at `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    arg = json.dumps({**settings, "seeds": seeds})
    proc = subprocess.run(
        [sys.executable, "-c", CASE, arg], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench_smc: the side at {src} failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of independent values (runs)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def compare(before: list[dict], now: list[dict], labels: list[str]) -> list[list]:
    """Rows of (quantity, before mean ± se, now mean ± se, z of the difference)."""
    import numpy as np

    def per_run(side: list[dict], key: str) -> list:
        return [v for r in side for v in r[key]]

    rows = []
    quantities = [("log evidence", per_run(before, "log_evidence"), per_run(now, "log_evidence"))]
    b_mass, n_mass = per_run(before, "break_mass"), per_run(now, "break_mass")
    if b_mass and n_mass:
        for i, label in enumerate(labels):
            quantities.append(
                (f"break mass {label}", [m[i] for m in b_mass], [m[i] for m in n_mass])
            )
    for name, b, n in quantities:
        (mb, sb), (mn, sn) = mean_se(b), mean_se(n)
        se = float(np.hypot(sb, sn))
        z = (mn - mb) / se if se > 0 else float("nan")
        rows.append([name, f"{mb:.3f} ± {sb:.3f}", f"{mn:.3f} ± {sn:.3f}", round(z, 2)])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default=EXPERIMENT)
    p.add_argument("--draws", type=int, default=3000, help="particles per run")
    p.add_argument("--chains", type=int, default=4, help="independent runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--periods", nargs="*", default=PERIODS, help="break-mass period edges")
    p.add_argument(
        "--reference", default=REFERENCE_COMMIT, help="commit of the code before ('' skips it)"
    )
    p.add_argument("--data-dir", default=os.environ.get("REGIMES_DATA_DIR", "../shared/data"))
    p.add_argument(
        "--smoke", action="store_true", help="2 runs x 300 particles, 1 seed, no reference"
    )
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.smoke:
        args.draws, args.chains, args.seeds, args.reference = 300, 2, [1], ""
    settings = {
        "experiment": str(ROOT / args.experiment),
        "data_dir": str(Path(args.data_dir).resolve()),
        "draws": args.draws,
        "chains": args.chains,
        "periods": args.periods,
    }
    start_load = loadavg()
    print(
        f"SMC: {args.experiment}; {args.chains} runs x {args.draws} particles; seeds "
        f"{args.seeds}; reference {args.reference or '-'}; load average at start {start_load}"
    )
    before: list[dict] = []
    now: list[dict] = []
    with reference_tree(ROOT, args.reference) as tree:
        for seed in args.seeds:  # the sides take turns, seed by seed
            if tree is not None:
                before += run_side(tree / "src", settings, [seed])
            now += run_side(ROOT / "src", settings, [seed])
    rows = []
    for side, results in (("before", before), ("now", now)):
        for r in results:
            work = args.draws * sum(r["stages"])
            rows.append(
                [
                    side,
                    r["seed"],
                    round(r["seconds"], 1),
                    sum(r["stages"]),
                    round(work / r["seconds"]),
                ]
            )
    print()
    print(text_table(["code", "seed", "smc_s", "stages", "particle_stages_per_s"], rows))
    speedup = None
    if before:
        speedup = sum(r["seconds"] for r in before) / sum(r["seconds"] for r in now)
        per_seed = [b["seconds"] / n["seconds"] for b, n in zip(before, now, strict=True)]
        met = "met" if speedup >= 5 else "not met"
        print(
            f"\ntarget: full SMC >= 5x faster at equal particle count: measured {speedup:.2f}x "
            f"({met}; per seed {', '.join(f'{s:.2f}x' for s in per_seed)})"
        )
        labels = (
            [f"< {args.periods[0]}"]
            + [f"{a} - {b}" for a, b in zip(args.periods[:-1], args.periods[1:], strict=True)]
            + [f">= {args.periods[-1]}"]
        )
        print(
            "\nanswers, mean over runs ± standard error (|z| <= 3: same within Monte Carlo error)"
        )
        print(text_table(["quantity", "before", "now", "z"], compare(before, now, labels)))
    end_load = loadavg()
    print(f"load average at start {start_load}, at end {end_load}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"settings": settings, "before": before, "now": now, "speedup": speedup,
                 "loadavg_start": start_load, "loadavg_end": end_load}
            )
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
