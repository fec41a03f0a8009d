"""MS-AR(4) with covariate-driven transitions on a simulated series: this code against the code
before (issue 30).

A Hamilton-type model (K = 2 regimes, switching mean, AR(4) on deviations from the regime mean,
so 2^5 = 32 lagged states; each regime's stay probability logistic in a covariate z_t) on
`--T` simulated months, fitted the way `regimes run` fits it (12-start multi-start, then numpyro
NUTS), and its derived quantities and posterior predictive check (`fit.derive_checked`). One
invocation runs the same data, sizes and seed with:

- "before": the code before this work (`--reference COMMIT`), in a temporary git worktree,
  in a subprocess;
- "now": this checkout, in a subprocess started the same way.

Printed per side: seconds of one log density + gradient evaluation (the sampler's unit of
work; median of 30 after a warm-up), of the fit (build, multi-start, NUTS, compilation
included) and of derive + PPC; then the ratios before / now. The issue's targets: sampling
>= 4x faster at 4 x 1000 draws after 1000 tuning steps, derive <= 10 s.

    .venv/bin/python benchmarks/bench_msar.py                    # T = 500, 4 x 1000 + 1000
    .venv/bin/python benchmarks/bench_msar.py --chains 2 --draws 200 --tune 200   # shorter
    .venv/bin/python benchmarks/bench_msar.py --smoke --json out.json   # T = 120, 1 x 30, now only

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

REFERENCE_COMMIT = "20ad3d8"  # main before issue 30's work

CASE = """
import json, sys, tempfile, time
from pathlib import Path
args = json.loads(sys.argv[1])
from regimes.cache import setup_process
setup_process()
import logging
for n in ("pymc", "pymc.sampling.jax", "jax", "regimes"):
    logging.getLogger(n).setLevel(logging.ERROR)
import numpy as np
import pandas as pd
import tomli_w

def simulate(t, seed):
    rng = np.random.default_rng(seed)
    mu, phi, sigma = np.array([-1.0, 0.8]), np.array([0.3, 0.15, -0.1, 0.05]), 0.6
    z = np.zeros(t)
    for i in range(1, t):
        z[i] = 0.9 * z[i - 1] + rng.normal(0, 0.45)
    s = np.zeros(t, dtype=int)
    s[0] = 1
    y = np.zeros(t)
    for i in range(1, t):
        stay = 1 / (1 + np.exp(-(2.5 + np.where(s[i - 1] == 0, -1.0, 1.0) * z[i])))
        s[i] = s[i - 1] if rng.random() < stay else 1 - s[i - 1]
    dev = np.zeros(t)
    for i in range(t):
        ar = sum(phi[j] * dev[i - 1 - j] for j in range(4) if i - 1 - j >= 0)
        dev[i] = ar + sigma * rng.normal()
    y = mu[s] + dev
    return y, z

from regimes.config import load_experiment
from regimes.dataset import FitFrame
from regimes.families import get_family
from regimes.fit import derive_checked, fit_frame

t = args["T"]
y, z = simulate(t, args["seed"])
index = pd.date_range("1900-01-01", periods=t, freq="MS")
model = {
    "family": "markov",
    "description": "MS-AR(4), switching mean, covariate-driven transitions (simulated)",
    "options": {
        "k_regimes": 2, "switching": ["intercept"], "ar_order": 4, "order_by": "intercept",
        "transform": "level", "transition": "covariates", "transition_covariates": ["z"],
        "init": "multistart", "n_starts": args["starts"],
    },
}
with tempfile.TemporaryDirectory() as tmp:
    spec = Path(tmp) / "msar_tvtp.toml"
    spec.write_text(tomli_w.dumps(model), encoding="utf-8")
    raw = {
        "name": "msar_tvtp", "model": str(spec),
        "data": {"target": "simulated", "factors": ["z"], "start": f"{index[0]:%Y-%m}",
                 "end": f"{index[-1]:%Y-%m}", "min_obs": 3},
        "sampler": {"chains": args["chains"], "draws": args["draws"], "tune": args["tune"],
                    "seed": args["seed"]},
    }
    path = Path(tmp) / "msar_tvtp_experiment.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    exp = load_experiment(path)
frame = FitFrame(
    target="simulated", factors=("z",),
    frame=pd.DataFrame({"simulated": y, "z": z}, index=index),
    fit=pd.Series(True, index=index, name="in_sample"),
    attrs={"fit_start": f"{index[0]:%Y-%m}", "fit_end": f"{index[-1]:%Y-%m}"},
)
family = get_family(exp.spec.family)
out = {}
from regimes.compiled import CompiledModel
m = family.build(exp.spec, frame)
compiled = CompiledModel.from_model(m)
data = compiled.data_of(m)
fn = compiled.logp_and_grad()
x = np.concatenate([np.ravel(m.initial_point()[n]) for n in compiled.value_names]).astype(float)
fn(x, data)[1].block_until_ready()
times = []
for _ in range(30):
    t0 = time.perf_counter()
    fn(x, data)[1].block_until_ready()
    times.append(time.perf_counter() - t0)
out["gradient_s"] = float(np.median(times))
t0 = time.perf_counter()
tree = fit_frame(exp, frame, progress=False, quiet=True)
out["fit_s"] = time.perf_counter() - t0
t0 = time.perf_counter()
derived, verdict = derive_checked(exp, tree, frame)
out["derive_s"] = time.perf_counter() - t0
out["min_ess_bulk"] = verdict["min_ess_bulk"]
out["max_rhat"] = verdict["max_rhat"]
print("RESULT" + json.dumps(out))
"""


def run_side(src: Path, settings: dict) -> dict:
    """One side's timings: the CASE script in a subprocess on the code at `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(
        [sys.executable, "-c", CASE, json.dumps(settings)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"bench_msar: the side at {src} failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=500, help="months simulated")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--starts", type=int, default=12, help="multi-start optimisations")
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument(
        "--reference", default=REFERENCE_COMMIT, help="commit of the code before ('' skips it)"
    )
    p.add_argument("--smoke", action="store_true", help="T = 120, 1 x 30 + 30, 2 starts, now only")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.smoke:
        args.T, args.chains, args.draws, args.tune, args.starts = 120, 1, 30, 30, 2
        args.reference = ""
    settings = {
        "T": args.T, "chains": args.chains, "draws": args.draws, "tune": args.tune,
        "starts": args.starts, "seed": args.seed,
    }  # fmt: skip
    start_load = loadavg()
    print(
        f"MS-AR(4), covariate-driven transitions, K = 2 (32 lagged states), T = {args.T}; "
        f"{args.chains} x {args.draws} draws after {args.tune}; reference "
        f"{args.reference or '-'}; load average at start {start_load}"
    )
    results: dict[str, dict] = {}
    with reference_tree(ROOT, args.reference) as tree:
        if tree is not None:
            results["before"] = run_side(tree / "src", settings)
        results["now"] = run_side(ROOT / "src", settings)
    cols = ["code", "gradient_ms", "fit_s", "derive_s", "min_ess_bulk", "max_rhat"]
    rows = [
        [side, round(1000 * r["gradient_s"], 3), round(r["fit_s"], 1), round(r["derive_s"], 1),
         r["min_ess_bulk"], r["max_rhat"]]
        for side, r in results.items()
    ]  # fmt: skip
    print()
    print(text_table(cols, rows))
    now = results["now"]
    if "before" in results:
        b = results["before"]
        print(
            f"\nbefore / now: gradient {b['gradient_s'] / now['gradient_s']:.2f}x, fit "
            f"{b['fit_s'] / now['fit_s']:.2f}x, derive + PPC {b['derive_s'] / now['derive_s']:.2f}x"
        )
        ratio = b["fit_s"] / now["fit_s"]
        print(
            f"target: sampling >= 4x faster than before: measured {ratio:.2f}x "
            f"({'met' if ratio >= 4 else 'not met'})"
        )
    d = now["derive_s"]
    print(f"target: derive <= 10 s: measured {d:.1f} s ({'met' if d <= 10 else 'not met'})")
    end_load = loadavg()
    print(f"load average at start {start_load}, at end {end_load}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"settings": settings, "results": results,
                        "loadavg_start": start_load, "loadavg_end": end_load})
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
