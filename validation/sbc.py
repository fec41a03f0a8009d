"""Simulation-based calibration (Talts et al. 2018) of any experiment's model, any family.

Each simulation draws the parameters from the model's own prior, simulates the target over the
experiment's fit window with the family's `simulate` (on the experiment's own factors, the scaling
pinned so truth and fit share one scale), fits it exactly as `regimes run` would (the same
compiled model, multi-start and sampler settings; modes stacked where the experiment asks), and
ranks every free scalar among `--keep` thinned posterior draws (`regimes.calibration`). The
simulations run as an SBC sweep (`regimes.sweep`: one task a simulation, on Dask workers with
`--workers`, resumable with `--resume`), so this script only writes the sweep file, runs it,
and turns its `sbc.nc` into a per-simulation CSV record and a summary.

    python validation/sbc.py validation/sbc_markov_k2.toml --n 100 --seed 1 --workers 2
    python validation/sbc.py validation/sbc_panel.toml --n 100 --record validation/records/sbc_panel.csv

Prints, per scalar, whether the rank ECDF stays in its simultaneous band, the χ² p-value and the
90%-interval coverage (within binomial error of 0.90 when calibrated), then the sampler's trouble
counts. A `--shift` fit (every draw moved by a constant) is the negative control: it must be
flagged.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

from regimes.cache import setup_process  # noqa: E402

setup_process()

import numpy as np  # noqa: E402

from regimes.sweep import open_sweep, run_sweep  # noqa: E402
from regimes.sweep.sbc import summary_lines  # noqa: E402


def sweep_file(experiment: Path, n: int, seed: int, keep: int, shift: float, out: Path) -> Path:
    """The SBC sweep of `experiment`, written into `out`."""
    path = out / f"{experiment.stem}_sbc_s{seed}.toml"
    path.write_text(
        f'description = "SBC of {experiment.name}, {n} simulations, seed {seed}"\n'
        f'experiment = "{experiment.resolve()}"\n\n'
        f"[sbc]\nsims = {n}\nseed = {seed}\nkeep = {keep}\nshift = {shift}\n",
        encoding="utf-8",
    )
    return path


def write_record(ds, path: Path) -> None:
    """One row per simulation: truth, rank, bulk ESS and 90% hit of each scalar, and the run's
    divergences, worst R-hat, distinct optima and seconds."""
    params = [str(p) for p in ds["param"].values]
    header = ["sim", "divergences", "max_rhat", "optima", "fit_s"]
    for p in params:
        header += [f"truth:{p}", f"rank:{p}", f"ess:{p}", f"cover90:{p}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i, sim in enumerate(ds["sim"].values):
            row = [int(sim), int(ds["divergences"][i]), float(ds["max_rhat"][i])]
            row += [int(ds["optima"][i]), float(ds["fit_s"][i])]
            for j in range(len(params)):
                row += [f"{float(ds['truth'][i, j]):.6g}", int(ds["rank"][i, j])]
                row += [float(ds["ess_bulk"][i, j]), int(ds["cover90"][i, j])]
            w.writerow(row)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment", type=Path, help="the experiment whose model is calibrated")
    ap.add_argument("--n", type=int, default=100, help="simulations")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=int, default=99, help="thinned draws each rank is taken among")
    ap.add_argument("--shift", type=float, default=0.0, help="negative control (0: real SBC)")
    ap.add_argument("--quick", action="store_true", help="the experiment's quick sampler")
    ap.add_argument("--workers", type=int, default=None, help="local Dask workers")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "validation" / "results")
    ap.add_argument("--resume", type=Path, default=None, help="an interrupted run's sweep folder")
    ap.add_argument("--record", type=Path, default=None, help="CSV record (default: in --out)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = sweep_file(args.experiment, args.n, args.seed, args.keep, args.shift, args.out)
    folder = run_sweep(
        path,
        data_dir=args.data_dir,
        out=args.out,
        quick=args.quick,
        resume=args.resume,
        workers=args.workers,
    )
    with open_sweep(folder) as ds:
        ds = ds.load()
    record = args.record or folder / f"{path.stem}.csv"
    write_record(ds, record)
    fit_s = ds["fit_s"].values
    print("\n".join(summary_lines(ds)))
    print(f"fit seconds: median {np.median(fit_s):.1f}, total {fit_s.sum():.0f}; record {record}")
    print(f"sweep folder: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
