"""Run a study folder: every experiment into its own run directory, then the leave-future-out
comparison, the scenario forecasts, the brief's figures beside ours, and the study report.

Layout of one study: `<out>/<folder>/<study-id>/` with `runs/<experiment>/<run-id>/` (each a
normal, atomically written run directory), `figures/`, `study.json` and `study.html`. A failed
run is recorded and the study goes on; `study.json` and `study.html` are written last, each
atomically, so a study folder without `study.json` is incomplete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from regimes.api import run_experiment
from regimes.compare import plot_compare
from regimes.config import load_experiment, parse_month, run_version
from regimes.data import resolve_data_dir
from regimes.errors import RegimesError
from regimes.files import (
    copy_atomic,
    is_dir,
    is_file,
    make_dirs,
    read_json,
    shorten,
    write_text_atomic,
)
from regimes.forecast import ensure_forecast, write_forecast_figure
from regimes.logs import quiet_keyword
from regimes.reopen import inputs_now, reuse_problem
from regimes.results import MANIFEST, check_out_root, load_derived, new_run_id, read_manifest
from regimes.study.config import STUDY_FILE, Study, experiment_files, load_study
from regimes.study.page import (
    answer_panels,
    brief_rows,
    page_context,
    study_figures,
    write_page,
)
from regimes.study.result import STUDY_HTML, STUDY_JSON, RunRecord, StudyResult, run_path
from regimes.sweep.task import LfoJob, RunJob, failure, lfo_job, run_job

# deferred to the functions that use them: SciPy, statsmodels (docs/modules.md#imports)

log = logging.getLogger(__name__)


class StudyError(RegimesError):
    """A study could not be run as configured."""


def is_study_folder(path: str | Path) -> bool:
    """True when `path` is a folder holding a study.toml (what `regimes run FOLDER` needs)."""
    return is_dir(path) and is_file(Path(path) / STUDY_FILE)


def resumable(folder: Path, resume: str | Path) -> Path:
    """The study folder `--resume` names, checked: written by `regimes run` for this study (it
    has runs/ and the same study.toml as `folder`), else a StudyError saying so."""
    study_dir = Path(resume)
    stored = study_dir / STUDY_FILE
    if not is_dir(study_dir / "runs") or not is_file(stored):
        raise StudyError(
            f"--resume {shorten(str(study_dir))}: not a study folder (no runs/ and {STUDY_FILE}); "
            "pass a folder printed by `regimes run STUDY_FOLDER/`"
        )
    if stored.read_bytes() != (folder / STUDY_FILE).read_bytes():
        raise StudyError(
            f"--resume {shorten(str(study_dir))}: a folder of another study (its {STUDY_FILE} "
            f"differs from {folder / STUDY_FILE}); resume it with the study it was run from, or "
            "drop --resume to start a new study folder"
        )
    return study_dir


@quiet_keyword
def run_study(
    folder: str | Path,
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "results",
    quick: bool = False,
    seed: int | None = None,
    progress: bool = True,
    resume: str | Path | None = None,
    figures: bool | None = None,
    report: bool = True,
    executor: Any = None,
) -> Path:
    """Run every experiment of a study folder, then write the study report; return its folder.

    `executor` (a sweep executor as a context manager: `regimes.sweep.executor.DaskExecutor(
    workers=2)`, `SerialExecutor()`) runs the study's runs side by side, each in a worker with
    its own compile caches; None (the default) runs them one after another in this process.

    `figures` / `report` are passed to every run (`run_experiment`); the study's own figures and
    study.html are written either way.

    `resume`: an earlier (possibly interrupted) study folder of the same study (its stored
    study.toml equal to the folder's, else a StudyError); a run of it is reused only when it
    opens verified and was computed from the inputs a run would have now (config, code, seed
    and the sha256 of every data file it read: `regimes.reuse`), the others run again with one
    log line saying why; LFO results and forecasts stored in reused runs are reused on the same
    terms."""
    folder = Path(folder)
    if not is_dir(folder):
        raise StudyError(f"{shorten(str(folder))} is not a folder")
    study = load_study(folder)
    paths = experiment_files(folder)
    for p in paths:  # every config (and --seed) must be valid before hours of sampling start
        run_version(load_experiment(p), quick=quick, seed=seed)
    data_path = resolve_data_dir(data_dir)
    t0 = time.perf_counter()
    if resume is not None:
        study_dir = resumable(folder, resume)
    else:
        study_dir = check_out_root(out) / folder.name / new_run_id(seed if seed is not None else 0)
    make_dirs(study_dir / "figures")
    # the study config as run
    copy_atomic(folder / STUDY_FILE, study_dir / STUDY_FILE)
    res = StudyResult(title=study.title, folder=str(folder), quick=quick)
    with executor if executor is not None else contextlib.nullcontext() as ex:
        common = {"data_dir": str(data_path), "quick": quick, "seed": seed}
        runs = _Runs(res, study_dir, folder, paths, resume, common, figures, report)
        if ex is not None:
            runs.on(ex)
        else:
            runs.here(progress)
        res.timing["runs_s"] = time.perf_counter() - t0
        res.timing |= where_runs_went(res, study_dir)
        t2 = time.perf_counter()
        if study.lfo is not None:
            _lfo(study, res, study_dir, quick, ex)
        res.timing["lfo_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    if study.scenarios is not None:
        _forecasts(study, res, study_dir, folder, data_path, quick)
    res.timing["forecasts_s"] = time.perf_counter() - t3
    res.timing["total_s"] = time.perf_counter() - t0
    _render(study, res, study_dir, data_path)
    failed = [r.experiment for r in res.runs.values() if r.status != "complete"]
    if failed:
        log.info(f"study {folder.name}: {len(failed)} run(s) failed: {', '.join(failed)}")
    log.info(f"study {folder.name}: wrote {study_dir / STUDY_HTML}")
    return study_dir


def where_runs_went(res: StudyResult, study_dir: Path) -> dict[str, Any]:
    """Where the runs' time went: each run's seconds (`runs`, 0 for one reused), and the seconds
    of each phase summed over the runs computed now (`phases`, from their manifests'
    `timing.phases`: imports, compile, sampling, derive, figures, report, ...), whatever
    ran side by side."""
    phases: dict[str, float] = {}
    for rec in res.runs.values():
        if rec.status != "complete" or rec.wall_s <= 0:
            continue
        timing = read_manifest(study_dir / rec.run_dir).get("timing", {})
        for name, seconds in timing.get("phases", {}).items():
            phases[name] = round(phases.get(name, 0.0) + seconds, 3)
    runs = {name: round(rec.wall_s, 3) for name, rec in res.runs.items()}
    return {"runs": runs, "phases": dict(sorted(phases.items(), key=lambda kv: -kv[1]))}


@dataclass
class _Runs:
    """The study's runs and what every way of running them shares: where they go, the settings
    passed to each run, and the reuse of a resumed study's unchanged runs."""

    res: StudyResult
    study_dir: Path
    folder: Path
    paths: list[Path]
    resume: str | Path | None
    common: dict[str, Any]
    figures: bool | None
    report: bool

    def reused(self, path: Path) -> Path | None:
        """A resumed study's run of `path` computed from the inputs a run would have now
        (logged), else None (with one log line saying why it runs again)."""
        if self.resume is None:
            return None
        quick, seed = self.common["quick"], self.common["seed"]
        data_dir = Path(self.common["data_dir"])
        reused, why = _reusable(self.study_dir, path, data_dir, quick=quick, seed=seed)
        if reused is not None:
            log.info(f"study {self.folder.name}: reusing {reused}")
        elif why:
            log.info(f"study {self.folder.name}: running {path.stem} again: {why}")
        return reused

    def here(self, progress: bool) -> None:
        """One after another in this process, recorded in `res.runs`; a failed run is recorded
        and the others go on."""
        name, paths = self.folder.name, self.paths
        for i, p in enumerate(paths, 1):
            log.info(f"study {name}: run {i}/{len(paths)} {p.stem}")
            t1 = time.perf_counter()
            reused = self.reused(p)
            try:
                run_dir = (
                    reused
                    or run_experiment(
                        p,
                        data_dir=self.common["data_dir"],
                        out=self.study_dir / "runs",
                        seed=self.common["seed"],
                        quick=self.common["quick"],
                        progress=progress,
                        figures=self.figures,
                        report=self.report,
                    ).path
                )
            except Exception as exc:  # record, go on with the other runs
                rec = failure(exc, t1)  # the record a worker returns for a failed run
                msg = _failure_message(rec, f"study {name}: {p.stem}")
                self.res.runs[p.stem] = RunRecord(p.stem, "failed", error=msg, wall_s=rec["wall_s"])
                continue
            elapsed = 0.0 if reused else time.perf_counter() - t1  # reused: as `on` records it
            self.res.runs[p.stem] = _complete(p.stem, run_dir, self.study_dir, elapsed)

    def on(self, executor: Any) -> None:
        """Through a sweep executor (side by side), recorded in `res.runs` in the folder's
        order; reusable runs of a resumed study are not run again."""
        name, study_dir = self.folder.name, self.study_dir
        outcomes: dict[str, RunRecord] = {}
        jobs = []
        out = str((study_dir / "runs").resolve())
        for p in self.paths:
            reused = self.reused(p)
            if reused is not None:
                outcomes[p.stem] = _complete(p.stem, reused, study_dir, 0.0)
                continue
            job = RunJob(p.stem, str(p.resolve()), out, figures=self.figures, report=self.report,
                         **self.common)  # fmt: skip
            jobs.append(job)
        log.info(f"study {name}: {len(jobs)} runs on {executor.describe()}")
        for job, rec in executor.map(run_job, jobs):
            if rec["status"] == "complete":
                log.info(f"study {name}: {job.id} done ({rec['wall_s']:.0f} s)")
                run_dir = Path(rec["run_dir"])
                outcomes[job.id] = _complete(job.id, run_dir, study_dir, rec["wall_s"])
                continue
            msg = _failure_message(rec, f"study {name}: {job.id}")
            wall = rec.get("wall_s", 0.0)
            outcomes[job.id] = RunRecord(job.id, "failed", error=msg, wall_s=wall)
        self.res.runs.update({p.stem: outcomes[p.stem] for p in self.paths})


def _failure_message(rec: dict[str, Any], what: str) -> str:
    """A failed executor record's message, logged (with the traceback of a non-user error)."""
    err = rec["error"]
    msg = err["message"] if err.get("user_error") else f"{err['type']}: {err['message']}"
    log.info(f"{what} FAILED: {msg}")
    if not err.get("user_error"):
        log.info(err["traceback"])
    return msg


def _complete(name: str, run_dir: Path, study_dir: Path, wall_s: float) -> RunRecord:
    """The record of a complete run of the study (its convergence from the manifest)."""
    manifest = read_manifest(run_dir)
    return RunRecord(
        name,
        "complete",
        run_dir=str(run_dir.resolve().relative_to(study_dir.resolve())),
        wall_s=wall_s,
        converged=bool(manifest["verdict"]["converged"]),
    )


def _reusable(
    study_dir: Path, path: Path, data_dir: Path, *, quick: bool, seed: int | None
) -> tuple[Path | None, str]:
    """The newest run of `path` in a study folder that opens verified and was computed from the
    inputs a run would have now (`reopen.inputs_now`: config as stored, code, seed, the data
    files' sha256), and "" ; else None and why the newest run is not reused ("" without any)."""
    exp = run_version(load_experiment(path), quick=quick, seed=seed)
    runs = sorted((study_dir / "runs" / exp.name).glob("*"), reverse=True)
    runs = [r for r in runs if (r / MANIFEST).exists() and not r.name.startswith(".")]
    if not runs:
        return None, ""
    wanted = inputs_now(exp, data_dir, experiment_dir=path.parent)
    first = ""
    for run in runs:
        why = reuse_problem(run, wanted)
        if not why:
            return run, ""
        first = first or f"{run.name}: {why}"
    return None, first


def _render(study: Study, res: StudyResult, study_dir: Path, data_path: Path) -> None:
    """The brief table, the study's figures, study.html and study.json, from finished runs."""
    from regimes.study.answer import study_answer

    asked = [study.answer.experiment, *study.answer.also] if study.answer else []
    runs = {name: run_path(res, study_dir, name) for name in asked}
    source = Path(study.path).parent if study.path else Path(".")
    res.answer = study_answer(study.answer, runs, study_dir / "figures", source)
    ctx = page_context(study, res, study_dir, data_path)
    res.brief = brief_rows(ctx, res, study_dir)
    res.figures = [f for f in res.figures if f[0] and not f[0].startswith(STUDY_OWN)]
    res.figures += study_figures(ctx, res, study_dir)
    if res.answer:
        res.answer["panels"] = answer_panels(ctx, study_dir)
    write_page(ctx, res, study_dir)
    text = json.dumps(_jsonable(res), indent=2, default=str) + "\n"
    write_text_atomic(study_dir / STUDY_JSON, text, root=study_dir)


# figures drawn (or copied) by study_figures, redrawn on re-render (as are the panels'
# statements, which have no file)
STUDY_OWN = "figures/study_"


def rerender_study(study_dir: str | Path, data_dir: str | Path | None = None) -> Path:
    """Redo a finished study's table, figures and page from its runs, its stored study.toml and
    the LFO and forecast results in study.json (no sampling): for a changed brief table or
    page. Returns the path of study.html."""
    study_dir = Path(study_dir)
    data = read_study_json(study_dir)
    study = load_study(study_dir, experiments=set(data["runs"]))
    try:
        res = StudyResult(
            title=study.title,
            folder=data["folder"],
            quick=data["quick"],
            runs={k: RunRecord(**v) for k, v in data["runs"].items()},
            lfo=data["lfo"],
            lfo_note=data["lfo_note"],
            forecasts=data["forecasts"],
            figures=[tuple(f) for f in data["figures"]],  # type: ignore[misc]
            timing=data["timing"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StudyError(
            f"{study_dir / STUDY_JSON}: not a study record ({type(exc).__name__}: {exc}); "
            "run the study again"
        ) from None
    _render(study, res, study_dir, resolve_data_dir(data_dir))
    return study_dir / STUDY_HTML


def read_study_json(study_dir: str | Path) -> dict[str, Any]:
    """A finished study's study.json, checked for shape (an object whose `runs` maps each
    experiment to a record with a status); a missing, truncated or corrupt one is a StudyError."""
    path = Path(study_dir) / STUDY_JSON
    try:
        data = read_json(path, "study record")
    except RegimesError as exc:
        raise StudyError(f"{exc}; run the study again") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, dict) or not all(
        isinstance(r, dict) and isinstance(r.get("status"), str) for r in runs.values()
    ):
        raise StudyError(f"{path}: not a study record (no 'runs' with a status each); run the "
                         "study again")  # fmt: skip
    return data


def failed_runs(study_dir: str | Path) -> list[str]:
    """The experiments of a finished study whose runs failed (from its study.json)."""
    data = read_study_json(study_dir)
    return [name for name, rec in data["runs"].items() if rec["status"] != "complete"]


def _jsonable(res: StudyResult) -> dict[str, Any]:
    out = asdict(res)
    out["runs"] = {k: asdict(v) for k, v in res.runs.items()}
    return out


def _lfo(study: Study, res: StudyResult, study_dir: Path, quick: bool, executor: Any) -> None:
    """Rank the LFO experiments by approximate leave-future-out elpd; draw the comparison.
    With an executor, each run's refits go to a worker first (side by side, stored in the run as
    lfo.nc); the ranking then reads them."""
    from regimes.lfo import compare_lfo

    cfg = study.lfo
    assert cfg is not None
    dirs = {e: run_path(res, study_dir, e) for e in cfg.experiments}
    ok = {e: d for e, d in dirs.items() if d is not None}
    missing = sorted(set(dirs) - set(ok))
    if len(ok) < 2:
        res.lfo_note = f"not computed: fewer than two runs completed (failed: {', '.join(missing)})"
        return
    first = (
        study.quick.lfo_first_scored if quick and study.quick.lfo_first_scored else cfg.first_scored
    )
    ts = parse_month(first)
    trained: dict[str, int] = {}  # per run: its fit-window months before the first scored one
    for e, d in ok.items():  # (windows may start in different months)
        derived = load_derived(d)
        fit_time = pd.DatetimeIndex(
            derived["time"].values[derived["in_sample"].values.astype(bool)]
        )
        if ts not in fit_time:
            raise StudyError(
                f"{study.path}: lfo.first_scored {first} is outside {e}'s fit window "
                f"{fit_time[0]:%Y-%m}..{fit_time[-1]:%Y-%m}"
            )
        trained[e] = int(fit_time.get_loc(ts))
    log.info(f"study: leave-future-out comparison from {first} ({len(ok)} runs)")
    refit_quick = cfg.quick_refits or quick
    if executor is not None:
        jobs = [
            LfoJob(e, str(d), trained[e], cfg.k_threshold, refit_quick, cfg.asset or None)
            for e, d in ok.items()
        ]
        for job, rec in executor.map(lfo_job, jobs):
            if rec["status"] == "complete":
                log.info(f"study: LFO of {job.id} done ({rec['wall_s']:.0f} s)")
            else:  # the ranking below computes it again here and reports the error
                _failure_message(rec, f"study: LFO of {job.id}")
    try:
        df = compare_lfo(
            list(ok.values()),
            min_train={str(d): trained[e] for e, d in ok.items()},
            k_threshold=cfg.k_threshold,
            quick=refit_quick,
            asset=cfg.asset or None,
        )
    except RegimesError as exc:
        res.lfo_note = f"not computed: {exc}"
        return
    rows = []
    for label, row in df.iterrows():  # labels are "<experiment>/<run-id>"
        values = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        values.update({k: int(values[k]) for k in ("rank", "n_refits")})
        rows.append({"experiment": str(label).split("/")[0], **values})
    res.lfo = rows
    refits = "quick-sampler refits" if refit_quick else "full refits"
    res.lfo_note = (
        f"approximate 1-step-ahead LFO scored {first}..{fit_time[-1]:%Y-%m} "
        f"({len(fit_time) - trained[e]} months), exact {refits} when Pareto k > {cfg.k_threshold}"
        + (f"; missing (run failed): {', '.join(missing)}" if missing else "")
    )
    png = plot_compare(df, study_dir / "figures", "lfo_compare")[0]
    res.figures.append(
        (
            str(png.relative_to(study_dir)),
            "Leave-future-out comparison of the regime models: "
            "elpd (higher is better) with its standard error; best model on top.",
        )
    )


def _forecasts(
    study: Study,
    res: StudyResult,
    study_dir: Path,
    folder: Path,
    data_path: Path,
    quick: bool,
) -> None:
    """Fair value and regime probabilities along the scenario paths, for each named run."""
    cfg = study.scenarios
    assert cfg is not None
    horizon = min(cfg.horizon, study.quick.horizon) if quick else cfg.horizon
    files = [folder / f for f in cfg.files]
    for exp in cfg.experiments:
        run_dir = run_path(res, study_dir, exp)
        if run_dir is None:
            res.forecasts.append({"experiment": exp, "error": "run failed"})
            continue
        log.info(f"study: scenario forecasts of {exp} ({horizon} months)")
        try:
            ds = ensure_forecast(run_dir, files, horizon, data_dir=data_path)
            figs = write_forecast_figure(run_dir, ds)
        except RegimesError as exc:
            res.forecasts.append({"experiment": exp, "error": str(exc)})
            continue
        for p in figs:
            if p.suffix == ".png":
                dest = study_dir / "figures" / f"{exp}_forecast.png"
                copy_atomic(p, dest, root=study_dir)
                res.figures.append(
                    (
                        str(dest.relative_to(study_dir)),
                        f"{exp}: fair value along the scenarios "
                        f"({horizon} months ahead; 90% bands)",
                    )
                )
        end = ds.isel(time=-1)
        for sc in ds["scenario"].values:
            row: dict[str, Any] = {
                "experiment": exp,
                "scenario": str(sc),
                "month": f"{pd.Timestamp(end['time'].values):%Y-%m}",
                "fair_value": [
                    float(end["fair_value"].sel(scenario=sc, quantile=q)) for q in (0.05, 0.5, 0.95)
                ],
            }
            if "regime_prob" in ds:
                row["regime_prob"] = {
                    str(r): float(end["regime_prob"].sel(scenario=sc, regime=r))
                    for r in ds["regime"].values
                }
            res.forecasts.append(row)
