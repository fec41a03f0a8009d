"""One function per CLI verb, shared by the command line, tests and notebooks."""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regimes.config import Experiment, experiment_to_toml, load_experiment, run_version
from regimes.results import CONFIG, DERIVED, FIGURES, POSTERIOR, new_run_id, write_netcdf, write_run

if TYPE_CHECKING:
    import xarray as xr

    from regimes.dataset import FitFrame

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


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on, for the manifest."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def run_experiment(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "results",
    seed: int | None = None,
    quick: bool = False,
    progress: bool = True,
    figures: bool | None = None,
    report: bool = True,
    quiet: bool = False,
) -> Path:
    """Validate a config, build the data, fit, and write one complete run directory; return its path.

    With figures on, `report` also writes report.html (ArviZ plots included) into the run."""
    from regimes.cache import configure_compile_caches

    configure_compile_caches()
    from regimes.data import resolve_data_dir
    from regimes.dataset import build_frame
    from regimes.families import get_family

    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    exp: Experiment = run_version(load_experiment(path), quick=quick, seed=seed)
    assert exp.spec is not None
    family = get_family(exp.spec.family)
    data_path = resolve_data_dir(data_dir)
    _log(f"[regimes] {exp.name}: loading data from {data_path}", quiet)
    frame = build_frame(
        exp.data.target,
        exp.data.factors,
        exp.data.start_ts,
        exp.data.end_ts,
        data_path,
        predict_end=exp.data.predict_end,
        min_obs=exp.data.min_obs,
        frequency=exp.data.frequency,
    )
    timing["data_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    tree = fit_frame(exp, frame, progress=progress, quiet=quiet)
    timing["sampling_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    derived = family.derive(tree, frame, exp.spec, exp.outputs.quantiles)
    from regimes.diagnostics import quick_verdict
    from regimes.ppc import run_checks

    verdict = quick_verdict(tree)
    import xarray as xr

    pp, additions, ppc_result = run_checks(
        family, tree, frame, exp.spec, exp.outputs.quantiles, seed=exp.sampler.seed
    )
    tree["posterior_predictive"] = xr.DataTree(pp)
    attrs = {**derived.attrs, **additions.attrs}
    derived = derived.merge(additions)
    derived.attrs = attrs
    verdict["ppc"] = {"ok": ppc_result.ok, "reasons": ppc_result.reasons}
    derived.attrs["chain_agreement"] = "ok" if verdict["chains_agree"] else "chains_disagree"
    derived.attrs.update(
        {
            "experiment": exp.name,
            "model": exp.spec.name,
            "family": exp.spec.family,
            "target": exp.data.target,
            "factors": ",".join(exp.data.factors),
            "sample_start": frame.attrs["fit_start"],
            "sample_end": frame.attrs["fit_end"],
            "converged": int(verdict["converged"]),
            "max_rhat": verdict["max_rhat"],
            "min_ess_bulk": verdict["min_ess_bulk"],
            "divergences": verdict["divergences"],
            "data_hash": frame.data_hash(),
            "seed": exp.sampler.seed,
        }
    )
    timing["derive_s"] = time.perf_counter() - t2
    run_id = new_run_id(exp.sampler.seed)
    want_figures = exp.outputs.figures if figures is None else figures

    def writer(tmp: Path) -> dict[str, Any]:
        write_netcdf(tree, tmp / POSTERIOR)
        write_netcdf(derived, tmp / DERIVED)
        (tmp / CONFIG).write_text(experiment_to_toml(exp), encoding="utf-8")
        if want_figures:
            from regimes.figures import save_figure
            from regimes.figures.fair_value import plot_fair_value
            from regimes.figures.ppc import plot_ppc

            source = source_line(exp)
            log_scale = exp.outputs.log_scale
            fig = plot_fair_value(derived, log_scale=log_scale, source=source)
            save_figure(fig, tmp / FIGURES, "fair_value")
            save_figure(plot_ppc(derived, log_scale=log_scale), tmp / FIGURES, "ppc")
            family.figures(derived, tmp / FIGURES, log_scale=log_scale, source=source)
        timing["total_s"] = time.perf_counter() - t0
        return {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config_path": str(Path(path)),
            "quick": quick,
            "seed": exp.sampler.seed,
            "sampler": {
                **exp.sampler.model_dump(exclude={"quick"}),
                "backend_used": tree.attrs.get("sampling_backend"),
            },
            "data_dir": str(data_path),
            "data_hash": frame.data_hash(),
            "data_window": {
                "fit_start": frame.attrs["fit_start"],
                "fit_end": frame.attrs["fit_end"],
                "last": f"{frame.time[-1]:%Y-%m}",
            },
            "verdict": verdict,
            "packages": package_versions(),
            "timing": timing,
        }

    run_dir = write_run(Path(out), exp.name, run_id, writer)
    if want_figures and report:
        from regimes.report import write_report

        write_report(run_dir)  # report.html + ArviZ figures, written atomically into the run
    if not verdict["converged"]:
        _log(f"[regimes] {exp.name}: WARNING: {describe_verdict(verdict)}", quiet)
    _log(
        f"[regimes] {exp.name}: wrote {run_dir} ({json.dumps({k: round(v, 1) for k, v in timing.items()})})",
        quiet,
    )
    return run_dir


def fit_frame(
    exp: Experiment,
    frame: FitFrame,
    *,
    progress: bool = True,
    quiet: bool = False,
    log_likelihood: bool = True,
) -> xr.DataTree:
    """Build, sample and record the pointwise log-likelihood in natural units: one fit of `exp`'s
    model to `frame` as a DataTree (used by `run_experiment` and by leave-future-out refits;
    `log_likelihood=False` skips a family's own log-likelihood pass, for refits that score
    another frame)."""
    import xarray as xr

    from regimes.families import get_family
    from regimes.sampling import sample

    assert exp.spec is not None
    family = get_family(exp.spec.family)
    model = family.build(exp.spec, frame)
    _log(
        f"[regimes] {exp.name}: sampling {exp.spec.family} model ({exp.sampler.chains} chains × "
        f"{exp.sampler.draws} draws after {exp.sampler.tune} tuning steps, seed {exp.sampler.seed})",
        quiet,
    )
    init, n_starts = family.sampling_init(exp.spec)
    tree = sample(model, exp.sampler, progress=progress and not quiet, init=init, n_starts=n_starts)
    if log_likelihood:
        if "log_likelihood" not in tree.children:
            tree["log_likelihood"] = xr.DataTree(family.log_likelihood(tree, frame, exp.spec))
        ll = tree["log_likelihood"].to_dataset()
        tree["log_likelihood"] = xr.DataTree(family.natural_log_likelihood(ll, frame, exp.spec))
    return tree


def describe_verdict(verdict: dict[str, Any]) -> str:
    """One plain sentence on why a run did not pass the convergence gate."""
    return "run did not converge: " + "; ".join(verdict.get("reasons") or ["see regimes diagnose"])


def source_line(exp: Experiment) -> str:
    """A figure's source line: the config's note, else the publishers of the series the
    experiment actually uses (from the catalog) and the run."""
    from regimes.dataset import series_publishers

    if exp.outputs.source_note:
        return exp.outputs.source_note
    publishers = series_publishers([exp.data.target, *exp.data.factors])
    return "; ".join([*publishers, f"regimes posterior ({exp.name})"])
