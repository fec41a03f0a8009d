"""Simulation-based calibration (Talts et al. 2018) as a sweep: one task a simulation, each
drawing the parameters from the base experiment's own prior, simulating the target over its fit
window with the family's `simulate` (on the experiment's own factors), fitting it as a run
would, and ranking each true scalar among L thinned posterior draws (`regimes.calibration`); the
combine step writes `sbc.nc` (dimension `sim`) and rank-histogram and ECDF-difference figures
with simultaneous bands (Säilynoja, Bürkner & Vehtari 2022). Any family: the fit goes through the
run's compiled model, so a worker compiles once and every later simulation only samples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from regimes.calibration import fit_simulation, rank_record, ranks, simulation_rng
from regimes.config import load_experiment, run_version
from regimes.families import get_family
from regimes.files import write_atomic
from regimes.sweep.combine import SBC_NC  # in the sweep folder: every simulation along `sim`
from regimes.sweep.expand import Task
from regimes.sweep.task import DONE, failure, start_record, write_json_atomic
from regimes.userdata import experiment_frame

__all__ = ["SBC_JSON", "combine_sbc", "ranks", "run_sbc_task", "summary_lines", "uniformity"]

SBC_JSON = "sbc.json"  # in a task folder: that simulation's ranks and diagnostics


def simulate_and_rank(task: Task) -> dict[str, Any]:
    """One simulation: truth from the prior, data from the truth, a run's fit, the ranks."""
    cfg = task.sbc
    exp = run_version(load_experiment(task.config), quick=task.quick)
    assert exp.spec is not None
    frame = experiment_frame(exp, Path(task.data_dir), experiment_dir=Path(task.config).parent)
    rng = simulation_rng(cfg["seed"], cfg["sim"])
    fitted = fit_simulation(exp, frame, rng)
    model = get_family(exp.spec.family).build(exp.spec, fitted.simulation.frame)
    record = rank_record(model, fitted, cfg["keep"], cfg["shift"])
    return {"sim": cfg["sim"], "length": int(frame.fit.sum()), **record}


def run_sbc_task(task: Task) -> dict[str, Any]:
    """Run one SBC simulation (in a Dask worker, set up first, or in-process): its result is
    written atomically as `sbc.json` in the task folder and recorded in `done.json`; a failure
    is returned as a record, never raised."""
    record = start_record(task.id)
    t0 = time.perf_counter()
    try:
        result = simulate_and_rank(task)
    except Exception as exc:  # recorded, never raised: the other simulations go on
        return {**record, **failure(exc, t0), "key": task.key}
    write_json_atomic(Path(task.folder) / SBC_JSON, result)
    record.update(
        status="complete",
        run_dir=SBC_JSON,
        wall_s=round(time.perf_counter() - t0, 2),
        key=task.key,
        inputs=task.inputs,  # so a resumed sweep can say what changed
    )
    write_json_atomic(Path(task.folder) / DONE, record)
    return record


def uniformity(
    rank: np.ndarray, keep: int, band: float = 0.95, seed: int = 0
) -> dict[str, np.ndarray]:
    """Per parameter, whether the ranks (sim, param) look uniform on 0..keep: the ECDF of their
    randomised PITs (rank + u) / (keep + 1) against the simultaneous `band` of uniform ECDFs
    (arviz_stats' simulation of Säilynoja et al. 2022), and a chi-square p-value over bins.

    Returns `z` (eval points), `ecdf`, `lower`, `upper` (eval point, param), `uniform` (param,
    1 = the ECDF stays inside the band) and `chi2_p` (param)."""
    from arviz_stats.ecdf_utils import ecdf_pit
    from scipy.stats import chisquare

    rank = np.asarray(rank)
    rng = np.random.default_rng(seed)
    pit = (rank + rng.uniform(size=rank.shape)) / (keep + 1)
    cols = [
        ecdf_pit(pit[:, j], band, 1000, rng=np.random.default_rng(seed))
        for j in range(rank.shape[1])
    ]
    z = cols[0][0]
    ecdf, lower, upper = (np.stack([c[i] for c in cols], axis=-1) for i in (1, 2, 3))
    inside = ((ecdf >= lower - 1e-12) & (ecdf <= upper + 1e-12)).all(axis=0)
    bins = n_bins(keep, rank.shape[0])
    counts = np.stack([np.bincount(rank[:, j] * bins // (keep + 1), minlength=bins)
                       for j in range(rank.shape[1])], axis=-1)  # fmt: skip
    chi2 = np.array([chisquare(counts[:, j]).pvalue for j in range(rank.shape[1])])
    return {
        "z": z, "ecdf": ecdf, "lower": lower, "upper": upper,
        "uniform": inside.astype(np.int8), "chi2_p": chi2, "counts": counts,
    }  # fmt: skip


def n_bins(keep: int, n_sims: int) -> int:
    """Histogram bins for ranks 0..keep: the largest divisor of keep + 1 (every bin holds the
    same number of rank values) up to 20 and up to n_sims / 5 (about 5 ranks expected per bin,
    as the chi-square test needs), at least 2 where keep + 1 allows."""
    most = max(2, min(20, n_sims // 5))
    return max(d for d in range(1, min(most, keep + 1) + 1) if (keep + 1) % d == 0)


def combine_sbc(
    sweep_dir: Path,
    tasks: Sequence[Task],
    records: dict[str, dict[str, Any]],
    attrs: dict[str, Any],
    band: float = 0.95,
) -> Path | None:
    """Every complete simulation's sbc.json into `sbc.nc` along `sim` (ranks, truths, ESS,
    coverage, divergences, R-hat) with the uniformity check per parameter, written atomically;
    None when no simulation completed."""
    done = [t for t in tasks if records.get(t.id, {}).get("status") == "complete"]
    results = [json.loads((Path(t.folder) / SBC_JSON).read_text(encoding="utf-8")) for t in done]
    if not results:
        return None
    keep = results[0]["keep"]
    params = results[0]["params"]
    rank = np.array([r["rank"] for r in results], dtype=np.int64)
    check = uniformity(rank, keep, band)
    sims = [t.coord for t in done]
    ds = xr.Dataset(
        {
            "rank": (("sim", "param"), rank),
            "truth": (("sim", "param"), np.array([r["truth"] for r in results])),
            "ess_bulk": (("sim", "param"), np.array([r["ess_bulk"] for r in results])),
            "cover90": (("sim", "param"), np.array([r["cover90"] for r in results], np.int8)),
            "divergences": ("sim", np.array([r["divergences"] for r in results], np.int64)),
            "max_rhat": ("sim", np.array([r["max_rhat"] for r in results])),
            "n_posterior": ("sim", np.array([r["n_posterior"] for r in results], np.int64)),
            "optima": ("sim", np.array([r["optima"] for r in results], np.int64)),
            "fit_s": ("sim", np.array([r["fit_s"] for r in results])),
            "task": ("sim", np.array([t.id for t in done])),
            "uniform": ("param", check["uniform"]),
            "chi2_p": ("param", check["chi2_p"]),
            "ecdf": (("z", "param"), check["ecdf"]),
            "ecdf_lower": (("z", "param"), check["lower"]),
            "ecdf_upper": (("z", "param"), check["upper"]),
        },
        coords={"sim": np.array(sims, dtype=np.int64), "param": params, "z": check["z"]},
    )
    ds["rank"].attrs["description"] = (
        f"number of the {keep} thinned posterior draws below the truth"
    )
    ds["uniform"].attrs["description"] = (
        f"1: the ECDF of the ranks stays inside the simultaneous {band:.0%} band of uniform ranks"
    )
    ds.attrs.update({k: v for k, v in attrs.items() if v is not None})
    ds.attrs.update(keep=keep, band=band, length=results[0]["length"], n_sims=len(results))
    return write_atomic(sweep_dir / SBC_NC, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def summary_lines(ds: xr.Dataset) -> list[str]:
    """One line per parameter: uniform or not (ECDF band), the chi-square p-value, the 90%
    interval coverage; then the sampler's trouble counts."""
    lines = [f"{'parameter':<14}{'ECDF band':>10}{'chi2 p':>9}{'cover90':>9}"]
    for p in ds["param"].values:
        ok = "ok" if int(ds["uniform"].sel(param=p)) else "FLAGGED"
        lines.append(
            f"{p:<14}{ok:>10}{float(ds['chi2_p'].sel(param=p)):9.3f}"
            f"{float(ds['cover90'].sel(param=p).mean()):9.2f}"
        )
    lines.append(
        f"N={ds.sizes['sim']} simulations, ranks among L={ds.attrs['keep']} draws; "
        f"max R-hat > 1.05 in {int((ds['max_rhat'] > 1.05).sum())}, divergences in "
        f"{int((ds['divergences'] > 0).sum())}"
    )
    return lines
