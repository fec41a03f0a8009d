"""One function per CLI verb, shared by the command line, tests and notebooks."""

from __future__ import annotations

import json
import logging
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regimes.advice import with_advice
from regimes.cache import environment_kept
from regimes.cf import cf_dataset
from regimes.compiled import Adaptation
from regimes.config import (
    DICT_LABEL,
    Experiment,
    ExperimentSource,
    experiment_to_toml,
    load_experiment,
    run_version,
)
from regimes.data import resolve_data_dir
from regimes.data.checks import dataframe_columns
from regimes.families import get_family
from regimes.figures import background, marked, run_mark, save_figure, write_rendered
from regimes.figures.fair_value import plot_fair_value
from regimes.fit import derive_checked, fit_frame, import_stack, posterior_of
from regimes.logs import quiet_keyword
from regimes.reopen import columns_dataset, run_inputs
from regimes.report.arviz_figures import report_inputs, report_renders
from regimes.report.write import write_report_files
from regimes.results import (
    CONFIG,
    DATA,
    DERIVED,
    FIGURES,
    POSTERIOR,
    TUNING,
    Run,
    check_out_root,
    new_run_id,
    read_manifest,
    write_netcdf,
    write_run,
)
from regimes.timing import phase, recording
from regimes.userdata import credits, data_sources, described, experiment_frame, variables

# deferred to the functions that use them: matplotlib, Pillow (docs/modules.md#imports)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import pandas as pd
    import xarray as xr

PACKAGES = (
    "regimes",
    "pymc",
    "pytensor",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "pandas",
    "xarray",
    "h5netcdf",
    "h5py",
    "matplotlib",
)

log = logging.getLogger(__name__)


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on, for the manifest."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@environment_kept()  # what it imports may rewrite the environment: the user's process keeps its
@quiet_keyword
def run_experiment(
    experiment: ExperimentSource,
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "results",
    seed: int | None = None,
    quick: bool = False,
    progress: bool = True,
    figures: bool | None = None,
    report: bool = True,
    on_written: Callable[[Path, xr.Dataset], None] | None = None,
) -> Run:
    """Validate a config, build the data, fit, and write one complete run directory; return the
    finished `Run` (its directory is `.path`).

    `experiment` is a TOML file's path, a dict with the same tables or an `Experiment`
    (`regimes.config.load_experiment`). With figures on, `report` also writes report.html
    (ArviZ plots included) into the run, as part of it: the run directory appears only once
    every file, the report included, is written. `on_written(run_dir, derived)` is called once
    it is, with derived.nc's dataset still in memory (a sweep hands it to its combine without
    reading the file back). Progress goes to the `regimes` loggers at INFO: `with
    regimes.logs.quiet():` silences it (`quiet=True` does too, deprecated for one release)."""
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    exp: Experiment = run_version(load_experiment(experiment), quick=quick, seed=seed)
    assert exp.spec is not None
    check_out_root(out)  # a results root that cannot hold the run is refused before sampling
    data_path = resolve_data_dir(data_dir)
    log.info(f"{exp.name}: loading data from {data_path}")
    frame = experiment_frame(exp, data_path)
    timing["data_s"] = time.perf_counter() - t0
    return fit_and_write(
        exp,
        frame,
        out=out,
        provenance={
            "config_path": _config_path(exp),
            "quick": quick,
            "data_dir": str(data_path),
            "data_sources": data_sources(exp, data_path),
        },
        timing=timing,
        progress=progress,
        figures=figures,
        report=report,
        on_written=on_written,
    )


def optimum_of(seed: int) -> Callable[[Any, int], dict[str, Any] | None]:
    """A model's multi-start optimum (`sampling.multistart`) from `n` starts with `seed`: what a
    family's `resolve_spec` chooses from."""

    def optimum(model: Any, n: int) -> dict[str, Any] | None:
        from regimes.sampling import multistart

        return multistart(model, n, seed)["best"]

    return optimum


def _config_path(exp: Experiment) -> str:
    """Where the experiment came from, for the manifest: its file (resolved, so the run reopens
    from any directory), or that it was a dict."""
    return str(Path(exp.path).resolve()) if exp.path else DICT_LABEL


def fit_and_write(exp: Experiment, frame: Any, **kwargs: Any) -> Run:
    """Fit `exp`'s model to `frame`, derive, check, and write one complete run directory (with
    figures and report.html unless turned off); `provenance` (config_path, quick, data_dir,
    data_sources: what each variable was read from) goes into the manifest with the data files
    read and the run's reuse inputs; `columns` (a DataFrame's) are kept in the run as data.nc,
    so it reopens; `on_written` as in `run_experiment`. The verdict gets the gate's advice
    (`regimes.advice`) and derived.nc its CF-style attributes. The manifest's timing holds the
    seconds of each phase (`regimes.timing`: imports, build, compile, multistart, sampling,
    derive, ppc, netcdf, figures, report). Shared by `run_experiment` and `run_dataframe`;
    returns the `Run`."""
    with recording() as phases:
        return _fit_and_write(exp, frame, phases=phases, **kwargs)


def _fit_and_write(
    exp: Experiment,
    frame: Any,
    *,
    phases: Any,
    out: str | Path = "results",
    provenance: dict[str, Any],
    timing: dict[str, float] | None = None,
    progress: bool = True,
    figures: bool | None = None,
    report: bool = True,
    on_written: Callable[[Path, xr.Dataset], None] | None = None,
    columns: Mapping[str, pd.Series] | None = None,
) -> Run:
    """`fit_and_write` inside its recording of phases."""
    assert exp.spec is not None
    check_out_root(out)
    inputs = run_inputs(exp, frame)  # the config as asked: choices below follow from it
    family = get_family(exp.spec.family)
    resolved, choices = family.resolve_spec(exp.spec, frame, optimum_of(exp.sampler.seed))
    if choices:  # made once on this run's data (e.g. order_by = "auto"), kept in config.toml
        exp = exp.model_copy(update={"spec": resolved})
        log.info(f"{exp.name}: chose {json.dumps(choices)}")
    timing = dict(timing or {})
    t0 = time.perf_counter() - timing.get("data_s", 0.0)
    want_figures = exp.outputs.figures if figures is None else figures
    if want_figures and report:  # the report's figures are drawn beside the run's own work
        background.prepare(warm=("arviz_plots", "regimes.report.arviz_figures"))
    with phase("imports"):  # the modelling stack, loaded on first use (`regimes --help` needs none)
        import_stack(figures=want_figures)
    t1 = time.perf_counter()
    tuning = Adaptation()  # filled by the compiled sampler; leave-future-out starts from it
    tree = fit_frame(exp, frame, progress=progress, adaptation=tuning)
    timing["sampling_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    drawing = None
    with phase("derive"):  # the posterior predictive check inside it is a phase of its own
        combined, verdict = posterior_of(exp, tree)  # the verdict each figure's mark shows
        mark_text = run_mark(provenance["quick"], verdict["converged"])
        if want_figures and report:  # the report's figures: by the figure helper meanwhile
            drawing = background.submit(report_renders, report_inputs(tree), mark_text)
        derived, verdict = derive_checked(exp, tree, frame, (combined, verdict))
        verdict = with_advice(verdict, tree, derived.attrs.get("order_by"))
        derived = cf_attributes(exp, derived, frame, provenance.get("data_sources", []))
    timing["derive_s"] = time.perf_counter() - t2
    run_id = new_run_id(exp.sampler.seed)

    def writer(tmp: Path) -> dict[str, Any]:
        with phase("netcdf"):
            write_netcdf(tree, tmp / POSTERIOR)
            write_netcdf(derived, tmp / DERIVED)
            if columns:
                write_netcdf(columns_dataset(columns), tmp / DATA)
        (tmp / CONFIG).write_text(experiment_to_toml(exp), encoding="utf-8")
        if tuning.step_size is not None:
            tuning.save(tmp / TUNING)
        if want_figures:
            from regimes.figures.ppc import plot_ppc

            source = source_line(exp, provenance.get("data_sources", []))
            log_scale = exp.outputs.log_scale
            with phase("figures"), marked(mark_text):
                fig = plot_fair_value(derived, log_scale=log_scale, source=source)
                save_figure(fig, tmp / FIGURES, "fair_value")
                save_figure(plot_ppc(derived, log_scale=log_scale), tmp / FIGURES, "ppc")
                family.figures(derived, tmp / FIGURES, log_scale=log_scale, source=source)
        finished(timing)
        return {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config_path": provenance["config_path"],
            "quick": provenance["quick"],
            "seed": exp.sampler.seed,
            "sampler": {
                **exp.sampler.model_dump(exclude={"quick"}),
                "backend_used": tree.attrs.get("sampling_backend"),
            },
            "data_dir": provenance["data_dir"],
            "data_files": frame.attrs.get("data_files", {}),
            "data_sources": provenance.get("data_sources", []),
            "data_hash": frame.data_hash(),
            "inputs": inputs.to_json(),
            "reuse_key": inputs.key,
            "data_window": {
                "fit_start": frame.attrs["fit_start"],
                "fit_end": frame.attrs["fit_end"],
                "last": f"{frame.time[-1]:%Y-%m}",
            },
            "verdict": verdict,
            "choices": choices,
            "packages": package_versions(),
            "timing": timing,
        }

    def finished(timing: dict[str, Any]) -> None:  # the manifest holds this same dict
        timing["total_s"] = time.perf_counter() - t0
        timing["phases"] = phases.snapshot() | {"data": round(timing.get("data_s", 0.0), 3)}

    finish = None
    if want_figures and report:  # report.html + ArviZ figures: part of the run, written before

        def finish(run: Run) -> None:
            assert drawing is not None  # submitted whenever there is a report
            with phase("report"):  # the helper's figures, then the page
                drawn = write_rendered(run.path / FIGURES, drawing.result())
                write_report_files(run, tree, derived, drawn)  # as written: not read back
            finished(timing)  # the manifest (written after this) holds this same dict

    run_dir = write_run(Path(out), exp.name, run_id, writer, finish=finish)
    if on_written is not None:
        on_written(run_dir, derived)
    if not verdict["converged"]:
        log.info(f"{exp.name}: WARNING: {describe_verdict(verdict)}")
    seconds = {k: round(v, 1) for k, v in timing.items() if k != "phases"}
    log.info(f"{exp.name}: wrote {run_dir} ({json.dumps(seconds)})")
    return Run(path=run_dir, manifest=read_manifest(run_dir))  # written just now: not re-hashed


@environment_kept()
@quiet_keyword
def run_dataframe(
    data: Any,
    experiment: ExperimentSource,
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "results",
    seed: int | None = None,
    quick: bool = False,
    progress: bool = True,
    figures: bool | None = None,
    report: bool = True,
) -> Run:
    """Fit an experiment on your own pandas DataFrame (in a notebook) and return the finished
    run, the same `results.Run` a run directory opens as.

    `data` has a DatetimeIndex of month starts (quarter starts with `data.frequency = "Q"`) and
    one column per variable the experiment names (`data.target`, `data.factors`, or the `of` of
    a declared transform); columns not named there are ignored, and catalog series (from
    `data_dir`, default $REGIMES_DATA_DIR, else the user cache) are used for variables it does
    not hold. `experiment` is a TOML path, a dict with the same tables or an `Experiment`; it
    gives the model, the window and the sampler as usual; the same checks apply (holes,
    coverage, minimum length, finite and varying values; an index with a time zone or repeated
    dates, or text in a column, is refused), and the run keeps the columns it used in data.nc
    (listed in its manifest with their data hash and each column's sha256), so `regimes
    forecast` and `regimes lfo` reopen it like any run."""
    exp: Experiment = run_version(load_experiment(experiment), quick=quick, seed=seed)
    t0 = time.perf_counter()
    columns = dataframe_inputs(data, exp)
    data_path = resolve_data_dir(data_dir)
    frame = experiment_frame(exp, data_path, columns=columns)
    return fit_and_write(
        exp,
        frame,
        out=out,
        provenance={
            "config_path": _config_path(exp),
            "quick": quick,
            "data_dir": str(data_path),
            "data_sources": data_sources(exp, data_path, columns=columns),
        },
        timing={"data_s": time.perf_counter() - t0},
        progress=progress,
        figures=figures,
        report=report,
        columns=columns,
    )


def cf_attributes(
    exp: Experiment, derived: xr.Dataset, frame: Any, sources: list[dict[str, str]]
) -> xr.Dataset:
    """derived.nc as it is written: CF-style attributes (`regimes.cf`) with a title and the
    target named in words, in the run's own period."""
    assert exp.spec is not None
    target = described(exp.data.target, sources)
    title = (
        f"{exp.name}: {exp.spec.name} model ({exp.spec.family}) of {target}, fit "
        f"{frame.attrs['fit_start']} to {frame.attrs['fit_end']}"
    )
    period = "quarter" if exp.data.frequency == "Q" else "month"
    return cf_dataset(derived, title=title, target=target, units=frame.units, period=period)


def dataframe_inputs(data: Any, exp: Experiment) -> dict[str, pd.Series]:
    """The columns of a user's DataFrame that `exp` names, checked (`data.checks`: a
    DatetimeIndex without time zone or repeated dates, numbers not text), as float series."""
    return dataframe_columns(data, variables(exp))


def describe_verdict(verdict: dict[str, Any]) -> str:
    """One plain sentence on why a run did not pass the convergence gate."""
    said = (verdict.get("reasons") or ["see regimes diagnose"]) + [
        f"advice: {a}" for a in verdict.get("advice") or []
    ]
    return "run did not converge: " + "; ".join(said)


def source_line(exp: Experiment, sources: list[dict[str, str]]) -> str:
    """A figure's source line: the config's note, else what the data were actually read from
    (your file or DataFrame column with its sha256, the catalog series' publishers) and the
    run."""
    if exp.outputs.source_note:
        return exp.outputs.source_note
    return "; ".join([*credits(sources), f"regimes posterior ({exp.name})"])
