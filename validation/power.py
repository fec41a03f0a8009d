"""Power of a regime-switching design to see an anchor shift: a Monte Carlo at the actual design.

The data are simulated from the experiment's own model (its factors, window and months
conditioned on) with the parameters at a central draw of its posterior (the draw nearest the
posterior median: realistic σ, speeds, loadings and transition matrices), and a planted regime
path: `--from` until the month before `--at`, `--to` from `--at` on (a shift), or `--from`
throughout (none). Each simulation is fitted exactly as a run would (`regimes.calibration`), and
read as the study reads its answer:

- dated: the posterior probability that the current spell is in `--to` and began within
  `--tol` months of `--at` (`spell_start_prob`) is at least 0.5;
- claims a shift (the false alarm when none was planted): the probability of `--to` in the
  last month is at least 0.5;
- filtered delay (every shift simulation): months from `--at` to the first month whose filtered
  probability of `--to` (p(s_t | data to t), at the full-sample posterior) exceeds 0.5;
- real-time delay (`--realtime N`, the first N shift simulations): refits on the data up to each
  origin from `--at` on, every `--step` months (padded windows: one compiled model; the
  probability of `--to` at the origin is then the filtered one), until it exceeds 0.5
  (Chauvet & Piger 2008): months from `--at` to that origin. It checks the filtered delay,
  which uses parameters estimated on data after the origin.

    python validation/power.py experiments/gold/loadings.toml --n 40 --realtime 10 \\
        --record validation/records/power_loadings.csv

Rows are appended to the record after each simulation (an interrupted run resumes with the same
command); `--summary` prints the rates with their binomial intervals from a record.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

from regimes.cache import setup_process  # noqa: E402

setup_process()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import beta as beta_dist  # noqa: E402

from regimes.calibration import fit_simulation, scalars  # noqa: E402
from regimes.config import load_experiment, run_version  # noqa: E402
from regimes.data import resolve_data_dir  # noqa: E402
from regimes.dataset import truncate  # noqa: E402
from regimes.families import get_family  # noqa: E402
from regimes.families.base import Fit  # noqa: E402
from regimes.fit import fit_frame, posterior_of  # noqa: E402
from regimes.results import open_run  # noqa: E402
from regimes.userdata import experiment_frame  # noqa: E402

FIELDS = ["model", "history", "sim", "planted", "dated_prob", "dated", "end_prob", "claims_shift",
          "median_start", "filtered_delay", "realtime", "delay_months", "divergences",
          "max_rhat", "fit_s"]  # fmt: skip


def central_draw(tree, model) -> dict[str, np.ndarray]:
    """The posterior draw nearest the posterior median, in sd units over every free scalar."""
    post = tree["posterior"].to_dataset().stack(sample=("chain", "draw"))
    values = {rv.name: post[rv.name].transpose("sample", ...).values for rv in model.free_RVs}
    first = {n: v[0] for n, v in values.items()}
    flat = scalars(model, first, values)
    z = (flat - np.median(flat, axis=0)) / (flat.std(axis=0) + 1e-12)
    best = int(np.argmin((z**2).sum(axis=1)))
    return {n: v[best] for n, v in values.items()}


def planted_path(
    frame,
    names: list[str],
    src: str,
    dst: str,
    at: pd.Timestamp,
    shift: bool,
    history: np.ndarray | None = None,
) -> np.ndarray:
    """The regime path over the fit window: before `at`, `history` (the run's own most likely
    path) or `src` throughout; from `at` on, `dst` (a shift) or `src` (none). A history whose
    last spell before `at` is already `dst` has that spell set to `src`, so the month before
    `at` is always in `src` and a shift is a switch at `at` (a run whose most likely path
    entered `dst` years earlier would otherwise plant no switch at all)."""
    time = frame.time[frame.fit.to_numpy()]
    path = np.full(len(time), names.index(src), dtype=int) if history is None else history.copy()
    before = np.flatnonzero(time < at)
    j = len(before) - 1
    while j >= 0 and path[before[j]] == names.index(dst):
        path[before[j]] = names.index(src)
        j -= 1
    path[time >= at] = names.index(dst if shift else src)
    return path


def run_history(run, frame, names: list[str]) -> np.ndarray:
    """The run's most likely regime path (Viterbi) over the fit window, as regime indices."""
    derived = run.derived()
    values = derived["most_likely_regime"].sel(time=frame.time[frame.fit.to_numpy()]).values
    return np.array([names.index(str(v)) if isinstance(v, str) else int(v) for v in values])


def read_answer(derived, dst: str, at: pd.Timestamp, tol: int) -> dict[str, float]:
    """What the study would read: the start mass near `at`, the last month's probability."""
    prob = derived["spell_start_prob"].sel(regime=dst)
    t = pd.DatetimeIndex(derived["time"].values)
    near = (t >= at - pd.DateOffset(months=tol)) & (t <= at + pd.DateOffset(months=tol))
    fit = derived["in_sample"].values.astype(bool)
    last = np.flatnonzero(fit)[-1]
    start = derived["spell_start"].sel(regime=dst, quantile=0.5).values
    return {
        "dated_prob": round(float(prob.values[near].sum()), 4),
        "end_prob": round(float(derived["regime_prob"].sel(regime=dst).values[last]), 4),
        "median_start": "" if pd.isna(start) else f"{pd.Timestamp(start):%Y-%m}",
    }


def filtered_delay(passes, frame, names: list[str], dst: str, at: pd.Timestamp) -> float:
    """Months from `at` to the first scored month from `at` on whose filtered probability of
    `dst` (posterior mean over draws) exceeds 0.5; NaN if none."""
    fit_time = frame.time[frame.fit.to_numpy()]
    time = fit_time[len(fit_time) - passes.filtered_prob.shape[1] :]
    prob = passes.filtered_prob[:, :, names.index(dst)].mean(axis=0)
    hit = np.flatnonzero((time >= at) & (prob > 0.5))
    if not hit.size:
        return float("nan")
    first = time[hit[0]]
    return float((first.year - at.year) * 12 + first.month - at.month)


def realtime_delay(exp, sim_frame, dst: str, at: pd.Timestamp, step: int, seed: int) -> float:
    """Months from `at` to the first origin whose filtered probability of `dst` exceeds 0.5
    (refits on padded windows up to each origin); NaN if never by the window's end."""
    family = get_family(exp.spec.family)
    fit_idx = np.flatnonzero(sim_frame.fit.to_numpy())
    time = sim_frame.time[fit_idx]
    first = int(np.searchsorted(time, at))
    for n_fit in range(first + 1, len(time) + 1, step):
        frame = truncate(sim_frame, n_fit, score_until=len(time), padded=True)
        tree = fit_frame(exp, frame, progress=False, log_likelihood=False)
        combined, _ = posterior_of(exp, tree)
        passes = family.passes(Fit(combined, frame, exp.spec))
        names = list(family.options(exp.spec).names)
        p = float(passes.regime_prob[:, 0, n_fit - 1, names.index(dst)].mean())
        if p > 0.5:
            return float((time[n_fit - 1].year - at.year) * 12 + time[n_fit - 1].month - at.month)
    return float("nan")


def done_sims(record: Path, model: str, history: str) -> set[tuple[int, int]]:
    if not record.is_file() or record.stat().st_size == 0:
        return set()
    rows = pd.read_csv(record)
    return {
        (int(r.sim), int(r.planted))
        for r in rows.itertuples()
        if r.model == model and r.history == history
    }


def summary(record: Path) -> None:
    """The rates with 90% Jeffreys intervals, per model and condition."""
    rows = pd.read_csv(record)
    for (model, history, planted), g in rows.groupby(["model", "history", "planted"]):
        n = len(g)
        k = int(g["dated" if planted else "claims_shift"].sum())
        lo, hi = beta_dist.ppf([0.05, 0.95], k + 0.5, n - k + 0.5)
        what = "dated within tolerance" if planted else "false alarm (claims a shift)"
        line = f"{model} ({history} history) {'shift' if planted else 'none'}: {what} {k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]"
        if planted:
            f = g["filtered_delay"].dropna()
            line += (
                f"; filtered delay median {f.median():.0f} months ({len(f)} of {n} crossed 0.5)"
                if len(f)
                else "; never crossed 0.5 (filtered)"
            )
            rt = g[g["realtime"] == 1]
            d = rt["delay_months"].dropna()
            if len(rt):
                line += f"; real-time refits saw it in {len(d)} of {len(rt)} runs" + (
                    f", after a median {d.median():.0f} months" if len(d) else ""
                )
        print(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment", type=Path)
    ap.add_argument("--run", type=Path, default=None, help="a finished run of it (else fitted)")
    ap.add_argument("--n", type=int, default=40, help="simulations per condition")
    ap.add_argument("--from", dest="src", default="real_rate_anchor")
    ap.add_argument("--to", dest="dst", default="fiscal_anchor")
    ap.add_argument("--at", default="2022-01", help="the planted shift's first month")
    ap.add_argument("--tol", type=int, default=12, help="months either side that date it")
    ap.add_argument(
        "--history",
        choices=["posterior", "plain"],
        default="posterior",
        help="before --at: the run's most likely path (posterior; needs --run) or --from throughout",
    )
    ap.add_argument("--realtime", type=int, default=0, help="shift simulations with refits")
    ap.add_argument("--step", type=int, default=3, help="months between real-time origins")
    ap.add_argument("--draws", type=int, default=500, help="draws (= tuning steps) per chain")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--record", type=Path, default=None)
    ap.add_argument("--summary", action="store_true", help="only summarise the record")
    args = ap.parse_args(argv)
    record = args.record or ROOT / "validation" / "results" / f"power_{args.experiment.stem}.csv"
    if args.summary:
        summary(record)
        return 0
    exp = run_version(load_experiment(args.experiment), quick=False)
    sampler = exp.sampler.model_copy(
        update={"draws": args.draws, "tune": args.draws, "chains": args.chains}
    )
    exp = exp.model_copy(update={"sampler": sampler})
    data_dir = resolve_data_dir(args.data_dir)
    frame = experiment_frame(exp, data_dir, experiment_dir=args.experiment.parent)
    family = get_family(exp.spec.family)
    model = family.build(exp.spec, frame)
    if args.history == "posterior" and args.run is None:
        ap.error("--history posterior reads the run's most likely path: give --run")
    tree = open_run(args.run).posterior() if args.run else fit_frame(exp, frame, progress=False)
    truth = central_draw(tree, model)
    names = list(family.options(exp.spec).names)
    at = pd.Timestamp(args.at)
    history = run_history(open_run(args.run), frame, names) if args.history == "posterior" else None
    done = done_sims(record, exp.name, args.history)
    record.parent.mkdir(parents=True, exist_ok=True)
    new = not record.is_file() or record.stat().st_size == 0
    with record.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for sim in range(args.n):
            for planted in (1, 0):
                if (sim, planted) in done:
                    continue
                rng = np.random.default_rng([args.seed, sim, planted])
                path = planted_path(frame, names, args.src, args.dst, at, bool(planted), history)
                simulated = family.simulate(exp.spec, frame, truth, rng, {"regime": path})
                t0 = time.perf_counter()
                fitted = fit_simulation(exp, frame, rng, truth, simulated)
                fitted_view = Fit(fitted.tree, simulated.frame, exp.spec)
                derived = family.derive(fitted_view, [0.05, 0.5, 0.95])
                answer = read_answer(derived, args.dst, at, args.tol)
                passes = family.passes(fitted_view)
                answer["filtered_delay"] = filtered_delay(
                    passes, simulated.frame, names, args.dst, at
                )
                delay = float("nan")  # (with realtime = 1: never above 0.5 by the end)
                realtime = int(bool(planted) and sim < args.realtime)
                if realtime:
                    delay = realtime_delay(exp, simulated.frame, args.dst, at, args.step, sim)
                writer.writerow({
                    "model": exp.name, "history": args.history, "sim": sim, "planted": planted, **answer,
                    "dated": int(answer["dated_prob"] >= 0.5),
                    "claims_shift": int(answer["end_prob"] >= 0.5),
                    "realtime": realtime, "delay_months": delay, "divergences": fitted.verdict["divergences"],
                    "max_rhat": fitted.verdict["max_rhat"],
                    "fit_s": round(time.perf_counter() - t0, 1),
                })  # fmt: skip
                fh.flush()
                print(
                    f"{exp.name} sim {sim} {'shift' if planted else 'none'}: {answer}", flush=True
                )
    summary(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
