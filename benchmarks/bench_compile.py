"""Compile once: what refits cost when the compiled model is reused, against a cold fit.

One invocation, one process, the same models and data on both sides:

1. Leave-future-out refits of the quick gold study's regime models (`experiments/gold/`
   ms1_ecm, ms2_ecm, ms3_ecm, ms2_tvtp, changepoint; quick sampler) at `--refits` origins:
   - reference "cold": each refit on its own short window with nothing reused (a new
     compilation per refit, as every refit did before compile-once; the old path compiled the
     density three times per fit, so this reference is, if anything, fast);
   - "reused": each refit padded to the full window (`dataset.truncate(..., padded=True)`) with
     the compilation cache on, as `regimes.lfo` now does.
   Prints per-model seconds and the ratio cold / reused (target: >= 3x).
2. An SBC-style sequence: one model, `--sims` simulated data sets of the same shape, fitted one
   after the other with the cache on. Prints the first (cold) fit, the mean of the later ones and
   their ratio (target: a simulation <= 0.3x a cold fit).

    .venv/bin/python benchmarks/bench_compile.py                 # 3 refits x 5 models, 4 sims
    .venv/bin/python benchmarks/bench_compile.py --smoke --json out.json   # one model, 2 + 2

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

from benchutil import loadavg, text_table  # noqa: E402

MODELS = ["ms1_ecm", "ms2_ecm", "ms3_ecm", "ms2_tvtp", "changepoint"]


def _quiet() -> None:
    import logging

    for name in ("pymc", "pymc.sampling.jax", "pymc.sampling.mcmc", "jax"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load(name: str, data_dir: Path):
    """The quick version of a gold study experiment and its frame."""
    from regimes.config import load_experiment, run_version
    from regimes.dataset import build_frame

    exp = run_version(load_experiment(ROOT / "experiments" / "gold" / f"{name}.toml"), quick=True)
    d = exp.data
    frame = build_frame(
        d.target, d.factors, d.start_ts, d.end_ts, data_dir,
        predict_end=d.predict_end, min_obs=d.min_obs, frequency=d.frequency,
    )  # fmt: skip
    return exp, frame


def one_fit(exp, frame, *, cached: bool, seed: int) -> float:
    """Seconds for one fit (build, multistart, sampling) of `exp` on `frame`."""
    import jax

    from regimes.families import get_family
    from regimes.sampling import sample

    # the cold side reuses nothing: no in-process cache and no persistent XLA cache either
    jax.config.update("jax_enable_compilation_cache", cached)
    t0 = time.perf_counter()
    family = get_family(exp.spec.family)
    model = family.build(exp.spec, frame)
    init, n_starts = family.sampling_init(exp.spec)
    sampler = exp.sampler.model_copy(update={"seed": seed})
    key = f"{exp.spec.model_dump_json()}|{frame.target}|{','.join(frame.factors)}"
    sample(
        model, sampler, progress=False, init=init, n_starts=n_starts,
        compile_key=key if cached else None,
    )  # fmt: skip
    return time.perf_counter() - t0


def lfo_refits(name: str, data_dir: Path, n_refits: int) -> dict:
    """Cold short-window refits against padded refits that reuse one compilation."""
    from regimes.dataset import truncate
    from regimes.families import get_family

    exp, frame = load(name, data_dir)
    n = int(frame.fit.sum())
    origins = [n - 1 - 12 * j for j in range(n_refits)][::-1]  # a refit a year, up to the end
    padded = get_family(exp.spec.family).weighted_likelihood
    cold = [one_fit(exp, truncate(frame, i), cached=False, seed=i) for i in origins]
    reused = [
        one_fit(exp, truncate(frame, i, score_until=n, padded=padded), cached=True, seed=i)
        for i in origins
    ]
    return {
        "model": name,
        "refits": len(origins),
        "cold_s": sum(cold),
        "reused_s": sum(reused),
        "first_reused_s": reused[0],
        "ratio": sum(cold) / sum(reused),
    }


def sbc_sequence(n_sims: int, t: int = 226) -> dict:
    """Fits of one 2-regime model to `n_sims` simulated series of the same length."""
    import numpy as np
    import pandas as pd

    from regimes.config import Experiment
    from regimes.dataset import FitFrame
    from regimes.spec import ModelSpec

    spec = ModelSpec(
        family="markov",
        options={"k_regimes": 2, "switching_variance": True, "n_starts": 4},
        name="sbc",
    )
    exp = Experiment.model_validate(
        {
            "name": "sbc",
            "model": "sbc",
            "data": {"target": "y", "start": "1990-01", "end": "2008-10"},
            "sampler": {"draws": 300, "tune": 300, "chains": 2},
            "spec": spec,
        }
    )
    times = []
    for sim in range(n_sims):
        rng = np.random.default_rng(sim)
        s = np.zeros(t, dtype=int)
        for i in range(1, t):
            s[i] = s[i - 1] if rng.random() < 0.95 else 1 - s[i - 1]
        y = np.array([0.0, 2.0])[s] + np.array([0.5, 1.0])[s] * rng.normal(size=t)
        index = pd.date_range("1990-01-01", periods=t, freq="MS")
        frame = FitFrame("y", (), pd.DataFrame({"y": y}, index=index), pd.Series(True, index=index))
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
    p.add_argument("--smoke", action="store_true", help="one model, 2 refits, 2 simulations")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.smoke:
        args.refits, args.sims, args.models = 2, 2, ["ms1_ecm"]
    from regimes.cache import setup_process

    setup_process()
    _quiet()
    data_dir = Path(os.environ.get("REGIMES_DATA_DIR", ROOT.parent / "shared" / "data"))
    load_start = loadavg()
    lfo = [lfo_refits(name, data_dir, args.refits) for name in args.models]
    sbc = sbc_sequence(args.sims)
    print(f"load average at start {load_start}, end {loadavg()}")
    print("\nleave-future-out refits (quick sampler), seconds for all refits of a model:")
    print(
        text_table(
            ["model", "refits", "cold_s", "reused_s", "first_reused_s", "cold/reused"],
            [[r["model"], r["refits"], r["cold_s"], r["reused_s"], r["first_reused_s"], r["ratio"]]
             for r in lfo],
        )
    )  # fmt: skip
    total = sum(r["cold_s"] for r in lfo) / sum(r["reused_s"] for r in lfo)
    print(f"target: LFO refits >= 3x faster with one compilation: measured {total:.2f}x "
          f"({'met' if total >= 3 else 'not met'})")  # fmt: skip
    print(f"\nSBC-style sequence ({sbc['sims']} simulated series, T = 226): cold fit "
          f"{sbc['cold_s']:.1f} s, later fits {sbc['later_mean_s']:.1f} s on average")  # fmt: skip
    print(f"target: one simulation <= 0.3x a cold fit: measured {sbc['ratio']:.2f}x "
          f"({'met' if sbc['ratio'] <= 0.3 else 'not met'})")  # fmt: skip
    if args.json:
        out = {"lfo": lfo, "lfo_ratio": total, "sbc": sbc, "loadavg_start": load_start}
        Path(args.json).write_text(json.dumps(out | {"loadavg_end": loadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
