"""Compile once: what refits cost when the compiled model is reused, against a cold fit.

One invocation, one process, the same models and data on both sides:

1. Leave-future-out refits of the quick gold study's regime models (`experiments/gold/`
   ms1_ecm, ms2_ecm, ms3_ecm, ms2_tvtp, changepoint; quick sampler) at `--refits` origins, one a
   year back from the end of the fit window, each fitted with `fit_frame` without the
   log-likelihood pass (as `regimes.lfo` refits):
   - "before": the code before compile-once (`--reference COMMIT`, default the commit before
     it), checked out into a temporary git worktree and run in a subprocess of this invocation:
     every refit on its own short window, PyMC's numpyro path, the density compiled three times;
   - "cold": this code with nothing reused (no compilation cache, no persistent XLA cache);
   - "reused": this code as `regimes run` then `regimes lfo` run it: the run (untimed) stores
     its final tuning, which is saved, loaded and, with the in-memory compilations dropped,
     warm-starts the first refit; refits padded to the full window
     (`dataset.truncate(..., padded=True)`) share one compilation, and each later refit
     warm-starts from the one before (`compiled.Adaptation`: its chains' positions, step size
     and mass matrix; a third of the warm-up; no multi-start).
   Prints per-model seconds and the ratios before / reused (target: >= 3x) and cold / reused.
2. An SBC-style sequence: one model, `--sims` simulated data sets of the same shape, fitted one
   after the other with the cache on, and the same data sets fitted by the reference code.
   Prints a later (reused) simulation against a cold fit of this code and against a fit of the
   reference code (target: a simulation <= 0.3x a cold fit as before).

    .venv/bin/python benchmarks/bench_compile.py                 # 3 refits x 5 models, 4 sims
    .venv/bin/python benchmarks/bench_compile.py --smoke --json out.json   # one model, no reference

No wall-clock assertions anywhere: the ratios are printed; `tests/test_benchmark_smoke.py`
runs the smoke size and only checks the JSON is sane.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchutil import loadavg, reference_tree, text_table  # noqa: E402

MODELS = ["ms1_ecm", "ms2_ecm", "ms3_ecm", "ms2_tvtp", "changepoint"]


def _quiet() -> None:
    import logging

    for name in ("pymc", "pymc.sampling.jax", "pymc.sampling.mcmc", "jax"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load(name: str, data_dir: Path):
    """The quick version of a gold study experiment and its frame."""
    from regimes.config import load_experiment, run_version
    from regimes.userdata import experiment_frame

    exp = run_version(load_experiment(ROOT / "experiments" / "gold" / f"{name}.toml"), quick=True)
    return exp, experiment_frame(exp, data_dir)


def one_fit(exp, frame, *, cached: bool, seed: int, adaptation=None) -> float:
    """Seconds for one fit (build, multistart, sampling) of `exp` on `frame`; with an
    `adaptation` carried from the previous fit, warm-started as `regimes.lfo` refits are."""
    import jax

    from regimes.families import get_family
    from regimes.fit import compile_key
    from regimes.sampling import sample

    # the cold side reuses nothing: no in-process cache and no persistent XLA cache either
    jax.config.update("jax_enable_compilation_cache", cached)
    t0 = time.perf_counter()
    family = get_family(exp.spec.family)
    model = family.build(exp.spec, frame)
    init, n_starts = family.sampling_init(exp.spec)
    sampler = exp.sampler.model_copy(update={"seed": seed})
    sample(
        model, sampler, progress=False, init=init, n_starts=n_starts,
        compile_key=compile_key(exp, frame) if cached else None, adaptation=adaptation,
    )  # fmt: skip
    return time.perf_counter() - t0


REFERENCE_COMMIT = "b84bfce"  # main before the family interface and compile-once work
REFERENCE_SCRIPT = """
import json, sys, time
from pathlib import Path
from regimes.cache import configure_compile_caches
configure_compile_caches()
import logging
for n in ("pymc", "pymc.sampling.jax", "pymc.sampling.mcmc", "jax"):
    logging.getLogger(n).setLevel(logging.ERROR)
from regimes.api import fit_frame
from regimes.config import load_experiment, run_version
from regimes.dataset import build_frame, truncate
args = json.loads(sys.argv[1])
out = {}
for name in args["models"]:
    exp = run_version(load_experiment(Path(args["root"]) / "experiments/gold" / f"{name}.toml"), quick=True)
    d = exp.data
    frame = build_frame(d.target, d.factors, d.start_ts, d.end_ts, Path(args["data_dir"]),
                        predict_end=d.predict_end, min_obs=d.min_obs, frequency=d.frequency)
    n = int(frame.fit.sum())
    times = []
    for i in [n - 1 - 12 * j for j in range(args["refits"])][::-1]:
        e = exp.model_copy(update={"sampler": exp.sampler.model_copy(update={"seed": i})})
        t0 = time.perf_counter()
        fit_frame(e, truncate(frame, i), progress=False, quiet=True, log_likelihood=False)
        times.append(time.perf_counter() - t0)
    out[name] = times
sbc = []
for sim in range(args["sims"]):
    exp, frame = sbc_case(sim)
    t0 = time.perf_counter()
    fit_frame(exp, frame, progress=False, quiet=True, log_likelihood=False)
    sbc.append(time.perf_counter() - t0)
out["sbc"] = sbc
print("RESULT" + json.dumps(out))
"""


def reference_refits(
    commit: str, models: list[str], data_dir: Path, n_refits: int, n_sims: int
) -> dict:
    """Seconds per refit with the code at `commit` (a temporary git worktree, a subprocess)."""
    import subprocess

    with reference_tree(ROOT, commit) as tree:
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        arg = json.dumps(
            {"models": models, "root": str(tree), "data_dir": str(data_dir),
             "refits": n_refits, "sims": n_sims}
        )  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-c", SBC_CASE + REFERENCE_SCRIPT, arg],
            cwd=tree, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def lfo_refits(name: str, data_dir: Path, n_refits: int) -> dict:
    """Cold short-window refits against padded refits that reuse one compilation and
    warm-start each refit from the one before (as `regimes.lfo` does)."""
    import tempfile

    import jax

    from regimes import graphs
    from regimes.compiled import Adaptation
    from regimes.dataset import truncate
    from regimes.families import get_family

    exp, frame = load(name, data_dir)
    n = int(frame.fit.sum())
    origins = [n - 1 - 12 * j for j in range(n_refits)][::-1]  # a refit a year, up to the end
    padded = get_family(exp.spec.family).weighted_likelihood
    cold = [one_fit(exp, truncate(frame, i), cached=False, seed=i) for i in origins]
    # as `regimes run` then `regimes lfo`: the run (untimed: it is fitted either way) stores its
    # final tuning (`tuning.npz`); the LFO, as in a new process (in-memory compilations
    # dropped, the on-disk XLA cache kept), loads it for the first refit, and each later refit
    # warm-starts from the one before
    run_tuning = Adaptation()
    one_fit(exp, frame, cached=True, seed=0, adaptation=run_tuning)
    with tempfile.TemporaryDirectory() as tmp:
        run_tuning.save(Path(tmp) / "tuning.npz")
        carry = Adaptation.load(Path(tmp) / "tuning.npz")
    graphs.clear_cache()
    jax.clear_caches()
    reused = [
        one_fit(
            exp, truncate(frame, i, score_until=n, padded=padded), cached=True, seed=i,
            adaptation=carry,
        )
        for i in origins
    ]  # fmt: skip
    return {
        "model": name,
        "refits": len(origins),
        "cold_s": sum(cold),
        "reused_s": sum(reused),
        "first_reused_s": reused[0],
        "ratio": sum(cold) / sum(reused),
    }


SBC_CASE = """
def sbc_case(sim, t=226):
    import numpy as np
    import pandas as pd
    from regimes.config import Experiment, ModelSpec
    from regimes.dataset import FitFrame
    spec = ModelSpec(family="markov", name="sbc",
                     options={"k_regimes": 2, "switching_variance": True, "n_starts": 4})
    exp = Experiment.model_validate({
        "name": "sbc", "model": "sbc", "spec": spec,
        "data": {"target": "y", "start": "1990-01", "end": "2008-10"},
        "sampler": {"draws": 300, "tune": 300, "chains": 2, "seed": sim},
    })
    rng = np.random.default_rng(sim)
    s = np.zeros(t, dtype=int)
    for i in range(1, t):
        s[i] = s[i - 1] if rng.random() < 0.95 else 1 - s[i - 1]
    y = np.array([0.0, 2.0])[s] + np.array([0.5, 1.0])[s] * rng.normal(size=t)
    index = pd.date_range("1990-01-01", periods=t, freq="MS")
    frame = FitFrame("y", (), pd.DataFrame({"y": y}, index=index), pd.Series(True, index=index))
    return exp, frame
"""
exec(SBC_CASE)  # defines sbc_case here; the reference subprocess runs the same source


def sbc_sequence(n_sims: int) -> dict:
    """Fits of one 2-regime model to `n_sims` simulated series of the same length (T = 226)."""
    times = []
    for sim in range(n_sims):
        exp, frame = sbc_case(sim)  # noqa: F821 (defined by exec above)
        times.append(one_fit(exp, frame, cached=True, seed=sim))
    later = times[1:]
    return {
        "sims": n_sims,
        "cold_s": times[0],
        "later_mean_s": sum(later) / len(later),
        "ratio": (sum(later) / len(later)) / times[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refits", type=int, default=3)
    p.add_argument("--sims", type=int, default=4)
    p.add_argument("--models", nargs="*", default=MODELS)
    p.add_argument(
        "--reference",
        default=REFERENCE_COMMIT,
        help="commit of the code before compile-once, run in a temporary worktree ('' skips it)",
    )
    p.add_argument("--smoke", action="store_true", help="one model, 2 refits, 2 simulations")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.smoke:
        args.refits, args.sims, args.models, args.reference = 2, 2, ["ms1_ecm"], ""
    from regimes.cache import setup_process

    setup_process()
    _quiet()
    data_dir = Path(os.environ.get("REGIMES_DATA_DIR", ROOT.parent / "shared" / "data"))
    load_start = loadavg()
    before = (
        reference_refits(args.reference, args.models, data_dir, args.refits, args.sims)
        if args.reference
        else {}
    )
    lfo = [lfo_refits(name, data_dir, args.refits) for name in args.models]
    for row in lfo:
        row["before_s"] = sum(before[row["model"]]) if row["model"] in before else None
        row["before_ratio"] = row["before_s"] / row["reused_s"] if row["before_s"] else None
    sbc = sbc_sequence(args.sims)
    print(f"load average at start {load_start}, end {loadavg()}")
    print("\nleave-future-out refits (quick sampler), seconds for all refits of a model:")
    print(
        text_table(
            ["model", "refits", "before_s", "cold_s", "reused_s", "first_reused_s",
             "before/reused", "cold/reused"],
            [[r["model"], r["refits"], r["before_s"], r["cold_s"], r["reused_s"],
              r["first_reused_s"], r["before_ratio"], r["ratio"]] for r in lfo],
        )
    )  # fmt: skip
    total = sum(r["cold_s"] for r in lfo) / sum(r["reused_s"] for r in lfo)
    if before:
        vs_before = sum(r["before_s"] for r in lfo) / sum(r["reused_s"] for r in lfo)
        print(f"target: LFO refits >= 3x faster than before: measured {vs_before:.2f}x "
              f"({'met' if vs_before >= 3 else 'not met'})")  # fmt: skip
    else:
        vs_before = None
        print("target: LFO refits >= 3x faster than before: not measured (no --reference)")
    print(f"cold / reused (this code, compilation reuse alone): {total:.2f}x")
    print(f"\nSBC-style sequence ({sbc['sims']} simulated series, T = 226): cold fit "
          f"{sbc['cold_s']:.1f} s, later fits {sbc['later_mean_s']:.1f} s on average")  # fmt: skip
    if before.get("sbc"):
        sbc["before_s"] = sum(before["sbc"]) / len(before["sbc"])
        sbc["before_ratio"] = sbc["later_mean_s"] / sbc["before_s"]
        print(f"the same fits with the code before: {sbc['before_s']:.1f} s on average")
        print(
            f"target: one simulation <= 0.3x a cold fit as before: measured "
            f"{sbc['before_ratio']:.2f}x ({'met' if sbc['before_ratio'] <= 0.3 else 'not met'})"
        )
    print(f"a later simulation against this code's own cold fit: {sbc['ratio']:.2f}x")  # fmt: skip
    if args.json:
        out = {"lfo": lfo, "lfo_ratio": total, "lfo_vs_before": vs_before, "sbc": sbc,
               "loadavg_start": load_start}  # fmt: skip
        Path(args.json).write_text(json.dumps(out | {"loadavg_end": loadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
