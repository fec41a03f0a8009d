"""Compare runs by PSIS-LOO predictive fit on the same observations (`regimes compare`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regimes.errors import RegimesError
from regimes.figures import memo_style, save_figure

# deferred to the functions that use them: ArviZ, xarray (docs/modules.md#imports)

K_BAD = 0.7  # Pareto k above this: the PSIS estimate for that observation is unreliable
LOG_LIK_VAR = "y"


class CompareError(RegimesError):
    """Runs cannot be compared (missing log-likelihood, different observations, too few runs)."""


def run_label(run, taken: set[str]) -> str:
    """A short, unique name for a run: `<experiment>/<run-id>`, else its folder path."""
    exp = run.manifest.get("experiment") or run.path.parent.name
    label = f"{exp}/{run.manifest.get('run_id') or run.path.name}"
    return label if label not in taken else str(run.path)


def pointwise_log_lik(tree, label: str):
    """The pointwise log-likelihood DataArray of a run, or a CompareError saying what is missing."""
    if "log_likelihood" not in tree.children:
        raise CompareError(
            f"run {label} has no log_likelihood group in its posterior.nc; re-run it with a "
            "model family that records pointwise log-likelihoods"
        )
    ll = tree["log_likelihood"].to_dataset()
    names = list(ll.data_vars)
    if LOG_LIK_VAR in ll:
        return ll[LOG_LIK_VAR]
    if len(names) == 1:
        return ll[names[0]]
    raise CompareError(
        f"run {label}: log_likelihood has variables {names} but no {LOG_LIK_VAR!r} to compare on"
    )


def describe_obs(da) -> str:
    """A human description of the observation axis of a log-likelihood array."""
    obs_dims = [d for d in da.dims if d not in ("chain", "draw")]
    if "time" in da.coords:
        t = (
            pd.DatetimeIndex(da["time"].values)
            if np.issubdtype(da["time"].dtype, np.datetime64)
            else None
        )
        if t is not None and len(t):
            return f"{len(t)} time points {t[0]:%Y-%m}..{t[-1]:%Y-%m}"
        return f"{da.sizes['time']} time points"
    return f"dims {dict((d, da.sizes[d]) for d in obs_dims)}"


def _check_same_observations(lls: dict[str, Any]) -> None:
    """Raise CompareError unless every run's log-likelihood covers the same `time` coordinate."""
    (ref_label, ref), *rest = lls.items()
    for label, da in rest:
        ref_obs = [d for d in ref.dims if d not in ("chain", "draw")]
        obs = [d for d in da.dims if d not in ("chain", "draw")]
        same = obs == ref_obs and all(ref.sizes[d] == da.sizes[d] for d in obs)
        if same and "time" in obs:
            same = (
                "time" in ref.coords
                and "time" in da.coords
                and np.array_equal(ref["time"].values, da["time"].values)
            )
        if not same:
            raise CompareError(
                f"runs {ref_label} and {label} were fit to different observations "
                f"({describe_obs(ref)} vs {describe_obs(da)}); LOO compares only runs on the "
                "same data window"
            )


def _check_same_scale(trees: dict[str, Any]) -> None:
    """Refuse to compare log-likelihoods stored on different scales (natural units vs the older
    standardised model scale): their differences would be meaningless."""
    scales = {
        label: tree["log_likelihood"].attrs.get("scale", "standardised model scale (old run)")
        for label, tree in trees.items()
    }
    if len(set(scales.values())) > 1:
        detail = "; ".join(f"{label}: {scale}" for label, scale in scales.items())
        raise CompareError(
            f"runs store log-likelihoods on different scales ({detail}); re-run the older runs "
            "so all are in natural units of the target"
        )


def compare_runs(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """Rank runs by PSIS-LOO elpd (best first) with differences, their se and Pareto-k checks.

    Columns: rank, elpd_loo, se, p_loo, elpd_diff (elpd of the best run minus this run's, >= 0),
    dse (se of that difference), weight (stacking), n_k_high (observations with Pareto k > 0.7),
    max_k. `df.attrs["arviz"]` keeps ArviZ's own compare table for `plot_compare`.
    """
    import arviz as az

    from regimes.results import open_run

    if len(run_dirs) < 2:
        raise CompareError(f"compare needs at least two run directories, got {len(run_dirs)}")
    lls: dict[str, Any] = {}
    trees: dict[str, Any] = {}
    for path in run_dirs:
        run = open_run(path)
        label = run_label(run, set(trees))
        tree = run.posterior()
        lls[label] = pointwise_log_lik(tree, label)
        trees[label] = tree
    _check_same_observations(lls)
    _check_same_scale(trees)

    loos = {}
    for label, tree in trees.items():
        var = lls[label].name
        loos[label] = az.loo(tree, pointwise=True, var_name=var)
    cmp = az.compare(loos, round_to="none")
    rows = []
    for label, rec in cmp.iterrows():
        k = np.asarray(loos[label].pareto_k, dtype=float)
        rows.append(
            {
                "run": label,
                "rank": int(rec["rank"]),
                "elpd_loo": float(rec["elpd"]),
                "se": float(rec["se"]),
                "p_loo": float(rec["p"]),
                "elpd_diff": -float(rec["elpd_diff"]),
                "dse": float(rec["dse"]),
                "weight": float(rec["weight"]),
                "n_k_high": int(np.sum(k > K_BAD)),
                "max_k": float(np.nanmax(k)),
            }
        )
    df = pd.DataFrame(rows).set_index("run")
    df.attrs["arviz"] = cmp
    return df


def format_compare(df: pd.DataFrame) -> str:
    """Plain-text table of `compare_runs` output, with a one-line legend."""
    shown = df.copy()
    for col in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "max_k"):
        shown[col] = shown[col].map(lambda x: f"{x:.2f}")
    shown["weight"] = shown["weight"].map(lambda x: f"{x:.3f}")
    legend = (
        "PSIS-LOO, best first; elpd_diff = elpd(best) - elpd(run), dse its se; "
        f"n_k_high = observations with Pareto k > {K_BAD} (LOO unreliable there)"
    )
    return legend + "\n" + shown.to_string()


def plot_compare(df: pd.DataFrame, out: str | Path, stem: str = "compare") -> list[Path]:
    """Draw ArviZ's compare plot (elpd differences with se) in memo style; save PNG and SVG
    (`<out>/<stem>.png`, `.svg`)."""
    import arviz as az

    cmp = df.attrs.get("arviz")
    if cmp is None:
        raise CompareError("plot_compare needs the table returned by compare_runs")
    with memo_style():
        pc = az.plot_compare(cmp, backend="matplotlib")
        fig = pc.viz["figure"].item()
        fig.set_size_inches(8, 1.6 + 0.4 * len(cmp))
    return save_figure(fig, Path(out), stem)
