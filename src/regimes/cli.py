"""The `regimes` command line: a thin shell over `regimes.api`; user errors become one clear line.

SIGINT (Ctrl-C) and SIGTERM stop any verb promptly (`regimes.signals`): exit 130 or 143 with one
line on stderr, and nothing left under a final name."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import regimes
from regimes.cache import setup_process
from regimes.errors import RegimesError, RunError
from regimes.files import is_dir, is_file, printable, shorten, usable_name, write_text_atomic
from regimes.logs import quiet
from regimes.signals import EXIT_ON_SIGNAL, Stopper, Terminated, exit_now, interrupted_line

# deferred to the functions that use them: SciPy, Dask, xarray, numpy, pandas, pydantic (docs/modules.md#imports)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regimes",
        description="Bayesian regime-switching models: when did a market's pricing anchor change, "
        "and what is it worth now?",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--version", action="version", version=f"regimes {regimes.__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    run = sub.add_parser("run", help="fit an experiment config and write a run directory")
    run.add_argument(
        "experiment",
        help="an experiments/*.toml file, or a study folder with a study.toml (runs them all)",
    )
    run.add_argument(
        "--data-dir", help="data directory (default: $REGIMES_DATA_DIR, else the user cache)"
    )
    run.add_argument("--out", default="results", help="results root (default: results)")
    run.add_argument("--seed", type=int, help="override sampler.seed")
    run.add_argument("--quick", action="store_true", help="short, small-draw run for smoke tests")
    run.add_argument(
        "--no-figures",
        action="store_true",
        help="skip figures and the report (of each run, in a study; study.html is still written)",
    )
    run.add_argument("--no-report", action="store_true", help="skip report.html (of each run)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--no-summary",
        action="store_true",
        help="do not print the short summary before the run directory",
    )
    run.add_argument(
        "--resume",
        metavar="STUDY_DIR",
        help="with a study folder: continue an earlier study run, reusing its unchanged runs",
    )
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with a study folder: run its runs side by side on a local Dask cluster of N workers",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with a study folder: run its runs on the workers of a running Dask scheduler",
    )

    data = sub.add_parser("data", help="the data catalog and data directory")
    dsub = data.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    dsub.add_parser("list", help="series the catalog knows and which are present")
    check = dsub.add_parser("check", help="validate every series in the data directory")
    fetch = dsub.add_parser("fetch", help="download series from their public sources")
    fetch.add_argument("series", nargs="*", help="series ids (default: all downloadable)")
    fetch.add_argument("--force", action="store_true", help="ignore the download cache")
    for sp in (dsub.choices["list"], check, fetch):
        sp.add_argument(
            "--data-dir", help="data directory (default: $REGIMES_DATA_DIR, else the user cache)"
        )
    summ = sub.add_parser(
        "summary",
        help="a run's parameters in natural units with 90%% intervals, R-hat and ESS, transitions, "
        "durations, the current regime and the verdict",
    )
    summ.add_argument("run_dir", help="a run directory printed by `regimes run`")
    summ.add_argument(
        "--short", action="store_true", help="medians and intervals only (as `regimes run` prints)"
    )
    summ.add_argument(
        "--csv", metavar="FILE", help="also write the table as CSV to FILE ('-': standard output)"
    )
    diag = sub.add_parser("diagnose", help="convergence and fit diagnostics of a run, as a table")
    diag.add_argument("run_dir", help="a run directory printed by `regimes run`")
    diag.add_argument(
        "--strict", action="store_true", help="exit 1 when the run fails the convergence gate"
    )
    diag.add_argument("--rhat-max", type=float, help="largest acceptable R-hat (default 1.01)")
    diag.add_argument(
        "--ess-min", type=float, help="smallest bulk and tail ESS per chain (default 100)"
    )
    diag.add_argument("--bfmi-min", type=float, help="smallest E-BFMI per chain (default 0.3)")
    diag.add_argument(
        "--all", action="store_true", help="list every posterior element (default: worst 30)"
    )

    cmp = sub.add_parser("compare", help="rank runs on the same data by PSIS-LOO")
    cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more run directories")
    cmp.add_argument(
        "--out", default="compare", help="folder for compare.png/.svg (default: ./compare)"
    )
    cmp.add_argument(
        "--lfo",
        action="store_true",
        help="rank by approximate leave-future-out elpd (computes lfo.nc where missing)",
    )
    lfo = sub.add_parser(
        "lfo", help="approximate leave-future-out CV of a run (refits; writes lfo.nc into it)"
    )
    lfo.add_argument("run_dir", help="a run directory printed by `regimes run`")
    for sp in (lfo, cmp):
        sp.add_argument(
            "--min-train",
            type=int,
            metavar="L",
            help="fit-window months of the first training fit (default: half, at least 24)",
        )
        sp.add_argument(
            "--k-threshold",
            type=float,
            default=0.7,
            help="refit when the Pareto k of the weights exceeds this (default 0.7; 0: exact LFO)",
        )
        sp.add_argument(
            "--quick", action="store_true", help="refit with the quick sampler settings"
        )
        sp.add_argument(
            "--asset",
            metavar="NAME",
            help="panel runs score this asset's own one-step density (to compare them with "
            "single-asset models of it); default: the joint density of all assets",
        )
    rep = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run (report.html in the run), or redo a "
        "study folder's study.html from its runs",
    )
    rep.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (or study folders)"
    )
    rep.add_argument(
        "--compare", action="store_true", help="one page comparing the runs side by side"
    )
    rep.add_argument("--out", help="folder for compare.html (default: ./compare; with --compare)")
    fc = sub.add_parser(
        "forecast",
        help="h-step-ahead fair value and regime probabilities, unconditional and per scenario",
    )
    fc.add_argument("run_dir", help="a run directory printed by `regimes run`")
    fc.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="FILE",
        help="scenario CSV (month + one column per factor, natural units); repeatable",
    )
    fc.add_argument(
        "--horizon", type=int, default=24, help="periods ahead to forecast (default 24)"
    )
    fc.add_argument(
        "--data-dir", help="data directory (default: the run's, else $REGIMES_DATA_DIR)"
    )
    fc.add_argument("--no-figures", action="store_true", help="skip figures/forecast.png/.svg")
    sw = sub.add_parser(
        "sweep",
        help="many fits of one experiment (real-time origins, seeds, a grid, SBC simulations) on "
        "Dask, combined along a new dimension",
    )
    sw.add_argument("sweep", help="a sweep .toml file (see docs/sweeps.md)")
    sw.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running Dask scheduler (default: a local cluster)"
    )
    sw.add_argument(
        "--workers", type=int, metavar="N", help="local cluster workers (default: one per core)"
    )
    sw.add_argument(
        "--serial", action="store_true", help="no Dask: run the tasks one by one in this process"
    )
    sw.add_argument("--resume", metavar="SWEEP_DIR", help="continue an earlier sweep folder")
    sw.add_argument("--quick", action="store_true", help="short, small-draw fits (smoke tests)")
    sw.add_argument("--out", default="results", help="results root (default: results)")
    sw.add_argument(
        "--data-dir", help="data directory (default: $REGIMES_DATA_DIR, else the user cache)"
    )
    sw.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _cmd_sweep(args: argparse.Namespace) -> int:
    from regimes.sweep import failed_tasks, run_sweep

    if args.workers is not None and args.workers < 1:
        raise RegimesError(f"--workers must be at least 1 (found {args.workers})")
    if args.serial and (args.scheduler or args.workers):
        raise RegimesError("--serial runs in this process: drop --scheduler and --workers")
    if args.scheduler and args.workers:
        raise RegimesError(
            "--workers sizes the local cluster; with --scheduler the cluster's own workers run "
            "the tasks: drop one of them"
        )
    executor = None
    if args.serial:
        from regimes.sweep.executor import SerialExecutor

        executor = SerialExecutor()
    with quiet() if args.quiet else contextlib.nullcontext():
        folder = run_sweep(
            args.sweep,
            data_dir=args.data_dir,
            out=args.out,
            quick=args.quick,
            resume=args.resume,
            executor=executor,
            workers=args.workers,
            scheduler=args.scheduler,
        )
    from regimes.sweep.realtime import REALTIME_NC, detection_lines

    if (folder / REALTIME_NC).is_file():
        import xarray as xr

        with xr.open_dataset(folder / REALTIME_NC, engine="h5netcdf") as rt:
            for line in detection_lines(rt):
                print(line)
    print(folder)
    return 1 if failed_tasks(folder) else 0


def _cmd_forecast(args: argparse.Namespace) -> int:
    from regimes.forecast import forecast_run, summary, write_forecast, write_forecast_figure

    ds = forecast_run(args.run_dir, args.scenario, args.horizon, data_dir=args.data_dir)
    print(summary(ds))
    print(f"wrote {write_forecast(args.run_dir, ds)}")
    if not args.no_figures:
        print("wrote " + ", ".join(str(p) for p in write_forecast_figure(args.run_dir, ds)))
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from regimes.results import open_run

    run = open_run(args.run_dir)
    if args.csv == "-":
        print(run.summary().to_csv(), end="")
        return 0
    print(run.summary_text(short=args.short))
    if args.csv:
        try:
            write_text_atomic(args.csv, run.summary().to_csv())
        except OSError as exc:
            raise RegimesError(
                f"--csv {shorten(args.csv)}: cannot be written ({exc.strerror or exc}); name a "
                "file in an existing, writable folder"
            ) from None
        print(f"wrote {args.csv}")
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from regimes.diagnostics import Thresholds, diagnose, table
    from regimes.results import POSTERIOR, open_run

    run = open_run(args.run_dir)
    if not (run.path / POSTERIOR).is_file():
        raise RunError(f"{run.path} has no {POSTERIOR}")
    overrides = {
        k: v
        for k, v in {
            "rhat_max": args.rhat_max,
            "ess_min_per_chain": args.ess_min,
            "bfmi_min": args.bfmi_min,
        }.items()
        if v is not None
    }
    diagnosis = diagnose(run.posterior(), replace(Thresholds(), **overrides))
    print(f"run: {run.path}")
    print(table(diagnosis, max_rows=None if args.all else 30))
    return 1 if args.strict and not diagnosis.passed else 0


def _finite_threshold(value: float) -> float:
    """`--k-threshold`, a number (NaN would refit every period while looking like a setting)."""
    if not math.isfinite(value):
        raise RegimesError(
            f"--k-threshold must be a finite number (0 for exact LFO; default 0.7); got {value}"
        )
    return value


def _distinct_runs(run_dirs: Sequence[str], verb: str) -> list[str]:
    """The run directories of a comparison, each once: a run given twice would be ranked
    against itself."""
    seen: dict[str, str] = {}
    for run_dir in run_dirs:
        key = os.path.realpath(run_dir) if usable_name(run_dir) else run_dir
        if key in seen:
            raise RegimesError(
                f"{verb}: {shorten(run_dir)} is given twice (as {shorten(seen[key])}); a run "
                "compared with itself says nothing: pass different runs"
            )
        seen[key] = run_dir
    return list(run_dirs)


def _cmd_lfo(args: argparse.Namespace) -> int:
    from regimes.lfo import lfo_run, summary_line, write_lfo
    from regimes.results import open_run

    _finite_threshold(args.k_threshold)
    run = open_run(args.run_dir)
    ds = lfo_run(
        run.path,
        min_train=args.min_train,
        k_threshold=args.k_threshold,
        quick=args.quick,
        asset=args.asset,
    )
    path = write_lfo(run.path, ds)
    print(summary_line(ds))
    print(f"wrote {path}")
    return 0


def _cmd_compare_lfo(args: argparse.Namespace) -> int:
    from regimes.compare import plot_compare
    from regimes.lfo import compare_lfo, format_compare_lfo

    _finite_threshold(args.k_threshold)
    df = compare_lfo(
        args.run_dirs,
        min_train=args.min_train,
        k_threshold=args.k_threshold,
        quick=args.quick,
        asset=args.asset,
    )
    print(format_compare_lfo(df))
    paths = plot_compare(df, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from regimes.compare import compare_runs, format_compare, plot_compare
    from regimes.results import check_out_root

    _distinct_runs(args.run_dirs, "compare")
    check_out_root(args.out)  # before any refit: the figures go there last
    if args.lfo:
        return _cmd_compare_lfo(args)
    df = compare_runs(args.run_dirs)
    print(format_compare(df))
    paths = plot_compare(df, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _study_executor(workers: int | None, scheduler: str | None) -> object | None:
    """The executor a study's runs go through: None (one after another, as without the flags),
    a local Dask cluster of `workers`, or the cluster behind `scheduler`."""
    if workers is None and scheduler is None:
        return None
    if workers is not None and workers < 1:
        raise RegimesError(f"--workers must be at least 1 (found {workers})")
    if workers is not None and scheduler is not None:
        raise RegimesError(
            "--workers sizes the local cluster; with --scheduler the cluster's own workers run "
            "the study: drop one of them"
        )
    from regimes.sweep.executor import DaskExecutor

    return DaskExecutor(scheduler=scheduler, workers=workers)


def _cmd_run(args: argparse.Namespace) -> int:

    from regimes.api import run_experiment
    from regimes.study import is_study_folder, run_study

    common = {
        "data_dir": args.data_dir,
        "out": args.out,
        "seed": args.seed,
        "quick": args.quick,
        "progress": not args.no_progress,
        "figures": False if args.no_figures else None,
        "report": not args.no_report,
    }
    if is_dir(args.experiment):
        if not is_study_folder(args.experiment):
            raise RegimesError(
                f"{args.experiment} is a folder without a study.toml; pass one experiment .toml "
                "file, or add a study.toml to run the folder as a study"
            )
        executor = _study_executor(args.workers, args.scheduler)
        study_dir = run_study(args.experiment, resume=args.resume, executor=executor, **common)
        print(study_dir)
        from regimes.study.runner import failed_runs

        return 1 if failed_runs(study_dir) else 0
    if args.resume:
        raise RegimesError("--resume applies to a study folder, not to one experiment file")
    for flag, value in (("--workers", args.workers), ("--scheduler", args.scheduler)):
        if value is not None:
            raise RegimesError(
                f"{flag} applies to a study folder, not to one experiment file "
                f"({args.experiment}); drop {flag}, or use `regimes sweep` for many fits of it"
            )
    run = run_experiment(args.experiment, **common)
    if not args.no_summary:
        print(run.summary_text(short=True))
    print(run.path)  # the last line: scripts read the run directory from it
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from regimes.data import CATALOG, check_data_dir, fetch_series, resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    if args.data_verb == "fetch":
        ids = args.series or [s.id for s in CATALOG.values() if s.downloadable]
        for prov in fetch_series(ids, data_dir, force=args.force):
            print(
                f"{prov.series_id:<20} {prov.rows:>6} rows  sha256 {prov.sha256[:12]}  {prov.source_url}"
            )
        return 0
    results = check_data_dir(data_dir)
    print(f"data directory: {data_dir}")
    if args.data_verb == "list":
        for res in results:
            s = CATALOG[res.series_id]
            where = f"{res.first:%Y-%m}..{res.last:%Y-%m}" if res.present else "missing"
            print(f"{s.id:<20} {s.frequency:<2} {where:<22} {s.units:<28} {s.description}")
        return 0
    problems = [r for r in results if r.problem]
    for res in results:
        status = "ok" if not res.problem else "PROBLEM"
        print(
            f"{res.series_id:<20} {status:<8} {res.problem or f'{res.n_obs} obs {res.first:%Y-%m}..{res.last:%Y-%m}'}"
        )
    print(f"{len(results) - len(problems)} ok, {len(problems)} with problems")
    return 1 if problems else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from regimes.report import ReportError, write_compare_report, write_report

    if args.compare:
        from regimes.results import check_out_root

        _distinct_runs(args.run_dirs, "report --compare")
        check_out_root(args.out or "compare")
        print(write_compare_report(args.run_dirs, args.out or "compare"))
        return 0
    if args.out:
        raise ReportError("--out applies only with --compare; report.html goes into the run")

    from regimes.study import STUDY_JSON
    from regimes.study.runner import rerender_study

    for run_dir in args.run_dirs:  # a study folder (with study.json) gets its study.html redone
        is_study = is_file(Path(run_dir) / STUDY_JSON)
        print(rerender_study(run_dir) if is_study else write_report(run_dir))
    return 0


# Errors speak Python (a notebook's keyword arguments); on the command line they name the flags.
FLAG_OF_KEYWORD = {"data_dir=": "--data-dir"}


def command_line_words(line: str) -> str:
    """An error line as the command line says it: `data_dir=` becomes `--data-dir`."""
    for keyword, flag in FLAG_OF_KEYWORD.items():
        line = line.replace(keyword, flag)
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `regimes` command."""
    with Stopper(hard=argv is None) as stopper:
        try:
            code = _main(argv, stopper)
        except (KeyboardInterrupt, Terminated, Exception) as exc:
            if not isinstance(exc, KeyboardInterrupt | Terminated) and not stopper.signum:
                raise
            # a signal arrived: whatever unwinds now is its doing (a library that swallows
            # KeyboardInterrupt, e.g. PyMC's forward sampling, leaves a half result that fails
            # further on), so the command ends as interrupted, not with that error
            if isinstance(exc, KeyboardInterrupt | Terminated):
                signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
            else:
                signum = signal.Signals(stopper.signum)
            from regimes.results import written_runs  # light: the run writer's own module

            print(interrupted_line(signum, stopper.verb, written_runs()), file=sys.stderr)
            code = EXIT_ON_SIGNAL[signum]
        stopper.code = code
    if argv is None:  # the command itself, finished or interrupted: end without the
        # interpreter's teardown of JAX and XLA (about a second of freeing), nor waiting at
        # interpreter exit for JAX computations still running (or crashing there)
        exit_now(code)
    return code


def _main(argv: Sequence[str] | None, stopper: Stopper) -> int:
    args = _parser().parse_args(argv)
    stopper.verb = args.verb

    try:
        setup_process()  # compile caches, XLA host devices, progress lines on stderr: once, first
        if args.verb == "run":
            return _cmd_run(args)
        if args.verb == "data":
            return _cmd_data(args)
        if args.verb == "diagnose":
            return _cmd_diagnose(args)
        if args.verb == "summary":
            return _cmd_summary(args)
        if args.verb == "compare":
            return _cmd_compare(args)
        if args.verb == "report":
            return _cmd_report(args)
        if args.verb == "lfo":
            return _cmd_lfo(args)
        if args.verb == "forecast":
            return _cmd_forecast(args)
        if args.verb == "sweep":
            return _cmd_sweep(args)
    except RegimesError as exc:
        if args.debug or stopper.signum:  # after a signal: reported as interrupted by main
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:  # one line per problem
            print(f"regimes: error: {printable(command_line_words(line))}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
