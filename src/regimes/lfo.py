"""Approximate leave-future-out cross-validation of a run (`regimes lfo`, `regimes compare --lfo`).

LOO conditions on the future; in a time series the honest question is how well a model fitted
on months 1..i predicts month i+1. Exact 1-step-ahead LFO refits the model at every month i;
the approximation of Bürkner, Gabry & Vehtari (2020, "Approximate leave-future-out
cross-validation for Bayesian time series models", J. Stat. Comput. Simul. 90(14)) refits only
when it must:

    start with an exact fit on the first L fit-window months (i* = L);
    for i = L .. T−1:  log r_s = Σ_{j=i*+1..i} log p(y_j | y_{1:j−1}, θ_s)   (θ_s ~ p(θ | y_{1:i*}))
                       w = PSIS(r);  if Pareto k(w) > threshold: refit on y_{1:i}, i* = i, w = 1
                       elpd_{i+1} = log Σ_s w_s p(y_{i+1} | y_{1:i}, θ_s) / Σ_s w_s.

Every family's pointwise log-likelihood is a one-step-ahead conditional (static AR(1) errors are
written as exact conditionals, markov gives forward-filter predictive densities), so sums of
them are log p(y_{i*+1:i} | y_{1:i*}, θ). A refit sees only what was known at month i: its fit and
standardisation windows both end there (`dataset.truncate`); it scores later months on its own
scale, and every density is in natural units of the target (`Family.natural_log_likelihood`), so runs with
different transforms compare. The index i counts fit-window months (quarters for quarterly data).

Default L = min(T − 1, max(24, ⌈T/2⌉)): the second half of the fit window is scored (at least
24 training months), which keeps early, prior-dominated fits out and the number of refits small.
`k_threshold <= 0` refits at every month: exact LFO.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from regimes.compare import CompareError, describe_obs, pointwise_log_lik, run_label
from regimes.compiled import Adaptation
from regimes.config import quick_version
from regimes.dataset import truncate
from regimes.errors import RegimesError
from regimes.families import get_family
from regimes.families.base import NATURAL_SCALE, Fit
from regimes.files import exists
from regimes.fit import fit_frame
from regimes.logs import quiet, quiet_keyword
from regimes.reopen import current_result, result_inputs, run_config, run_frame, stamp
from regimes.results import TUNING, add_file_to_run, load_listed, open_run, write_netcdf

# deferred to the functions that use them: ArviZ (docs/modules.md#imports)

if TYPE_CHECKING:
    from regimes.config import Experiment
    from regimes.dataset import FitFrame
    from regimes.results import Run
    from regimes.reuse import Inputs

LFO_FILE = "lfo.nc"
K_THRESHOLD = 0.7
MIN_TRAIN = 24

log = logging.getLogger(__name__)


class LFOError(RegimesError):
    """Leave-future-out CV cannot run on these runs or settings (the message says why)."""


def default_min_train(n_months: int) -> int:
    """Default first training length L for a fit window of `n_months`: see the module doc."""
    return min(n_months - 1, max(MIN_TRAIN, math.ceil(n_months / 2)))


# ------------------------------------------------------------------ the pure core


@dataclass(frozen=True)
class Refit:
    """What an exact fit on the first i months provides: log p(y_j | y_{1:j−1}, θ_s) for the
    months j = i..T−1 (0-based, so column 0 is the month right after the training window) at
    its S posterior draws, and the draws' relative efficiency for PSIS."""

    log_lik: np.ndarray  # (S, T − i)
    r_eff: float = 1.0


def psis_step(ll_added: np.ndarray, ll_next: np.ndarray, r_eff: float = 1.0) -> tuple[float, float]:
    """elpd of the next observation from draws of an earlier posterior, and the Pareto k.

    `ll_added` (S, m): log-likelihood of the m observations added since that posterior's fit;
    `ll_next` (S,): of the observation to predict. The draws are importance-weighted to the
    posterior given the added observations (ratios ∝ their likelihood, Pareto-smoothed with
    arviz_stats' PSIS); m = 0 is the plain posterior mean (k = NaN). An unusable ratio gives
    k = inf (forcing a refit)."""
    ll_next = np.asarray(ll_next, dtype=float).reshape(-1)
    ll_added = np.asarray(ll_added, dtype=float).reshape(ll_next.size, -1)
    if ll_added.shape[1] == 0:
        return float(logsumexp(ll_next) - np.log(ll_next.size)), math.nan
    log_ratio = ll_added.sum(axis=1)
    if (
        np.any(np.isnan(log_ratio))
        or np.any(np.isposinf(log_ratio))
        or np.all(np.isneginf(log_ratio))
    ):
        return math.nan, math.inf
    from arviz_stats.base import array_stats

    # psislw takes the negated log ratios (its LOO convention: −log-likelihood) and returns
    # normalised, smoothed log weights
    log_w, k = array_stats.psislw(-log_ratio, r_eff=r_eff)
    k = float(k)
    if not np.isfinite(k) or not np.all(np.isfinite(log_w) | np.isneginf(log_w)):
        return math.nan, math.inf
    return float(logsumexp(log_w + ll_next) - logsumexp(log_w)), k


@dataclass(frozen=True)
class LFOResult:
    """Per scored month (i = L..T−1): elpd, Pareto k of the weights used (NaN after an exact
    refit), and whether the model was refit there."""

    elpd: np.ndarray
    pareto_k: np.ndarray
    refit: np.ndarray
    min_train: int
    k_threshold: float

    @property
    def elpd_lfo(self) -> float:
        """Sum of the pointwise elpds."""
        return float(self.elpd.sum())

    @property
    def se(self) -> float:
        """Standard error of elpd_lfo: sqrt(n · var(pointwise)), as for LOO."""
        n = self.elpd.size
        return float(np.sqrt(n * np.var(self.elpd))) if n > 1 else 0.0


def approximate_lfo(
    refit: Callable[[int], Refit],
    n_months: int,
    min_train: int,
    k_threshold: float = K_THRESHOLD,
    on_step: Callable[[int, float, bool], None] | None = None,
) -> LFOResult:
    """The forward PSIS-LFO scheme over months L..T−1, given `refit(i)` (an exact fit on the
    first i months); `k_threshold <= 0` refits at every month (exact LFO).
    `on_step(i, k, refitting)` is called at each month before any refit (for progress lines)."""
    if not 1 <= min_train < n_months:
        raise LFOError(f"min_train must be in 1..{n_months - 1}, got {min_train}")
    n = n_months - min_train
    elpd, ks, refits = np.empty(n), np.full(n, np.nan), np.zeros(n, dtype=bool)
    current: Refit | None = None
    last = min_train
    for pos, i in enumerate(range(min_train, n_months)):
        k = math.nan
        if current is not None:
            added = current.log_lik[:, : i - last]
            value, k = psis_step(added, current.log_lik[:, i - last], current.r_eff)
        refitting = current is None or k_threshold <= 0 or not k <= k_threshold
        if on_step is not None:
            on_step(i, k, refitting)
        if refitting:
            current, last = refit(i), i
            _check_refit(current, n_months - i)
            value, _ = psis_step(current.log_lik[:, :0], current.log_lik[:, 0])
            refits[pos], k = True, math.nan
        elpd[pos], ks[pos] = value, k
    return LFOResult(elpd, ks, refits, min_train, float(k_threshold))


def _check_refit(fit: Refit, n_left: int) -> None:
    if fit.log_lik.ndim != 2 or fit.log_lik.shape[1] != n_left:
        raise ValueError(
            f"refit must return log-likelihoods of shape (draws, {n_left}); got {fit.log_lik.shape}"
        )


# ------------------------------------------------------------------ runs on disk


def _r_eff(tree: xr.DataTree) -> float:
    """Mean relative ESS of the posterior's scalar elements (1 for a single chain)."""
    import arviz_stats as azs

    post = tree["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    if post.sizes["chain"] == 1:
        return 1.0
    ess = azs.ess(post, method="mean")
    values = np.concatenate([np.ravel(ess[v].values) for v in ess.data_vars])
    values = values[np.isfinite(values)]
    return float(values.mean() / n) if values.size else 1.0


def score(
    exp: Experiment, tree: xr.DataTree, frame: FitFrame, asset: str | None = None
) -> xr.DataArray:
    """Pointwise natural-scale log p(y_t | y_<t, θ_s) over `frame`'s fit window at `tree`'s
    draws (the family's `log_likelihood`, put on the natural scale). `asset`: a panel run's
    density of that asset's own month given every asset's past (`y_asset`), comparable with a
    single-asset model of it."""
    assert exp.spec is not None
    family = get_family(exp.spec.family)
    try:
        ll = family.log_likelihood(Fit(tree, frame, exp.spec))
    except Exception as exc:  # e.g. latent per-month parameters of another length
        raise LFOError(
            f"family {exp.spec.family!r} cannot score months past a refit's window ({exc}); "
            "its `log_likelihood` must give one-step-ahead predictive densities"
        ) from exc
    ll = family.natural_log_likelihood(ll, frame, exp.spec)
    if asset is not None:
        return ll["y_asset"].sel(asset=asset).drop_vars("asset").transpose("chain", "draw", "time")
    name = "y" if "y" in ll else next(iter(ll.data_vars))
    return ll[name].transpose("chain", "draw", "time")


# what a refit would say about itself (PyMC's "NUTS[numpyro]: ...", the fit's "sampling ..."):
# silenced, so refits print one line each
REFIT_LOGGERS = ("pymc", "pymc.sampling.mcmc", "pymc.sampling.jax", "regimes.fit")


@quiet_keyword
def lfo_run(
    run_dir: str | Path,
    *,
    min_train: int | None = None,
    k_threshold: float = K_THRESHOLD,
    quick: bool = False,
    data_dir: str | Path | None = None,
    asset: str | None = None,
) -> xr.Dataset:
    """Approximate 1-step-ahead LFO of a finished run, refitting its own config on its own data
    (`quick`: with the quick sampler settings). Progress: one stderr line per refit. `asset`:
    a panel run scores that asset's own density (`score`); a single-asset run ignores it."""
    run = open_run(run_dir)
    inputs = lfo_inputs(run, min_train, k_threshold, quick, asset)
    exp = run_config(run)
    if quick:
        exp = quick_version(exp)
    frame = run_frame(run, exp, data_dir)
    fit_time = frame.time[frame.fit.to_numpy()]
    scored = scored_asset(exp, asset)
    ds = lfo_frame(
        exp,
        frame,
        min_train=min_train,
        k_threshold=k_threshold,
        first_scored=_first_scored(run, fit_time),
        label=f"{exp.name}/{run.manifest.get('run_id', run.path.name)}",
        asset=scored,
        warm_start=Adaptation.load(run.path / TUNING),
    )
    ds.attrs.update({"run": str(run.path.resolve()), "quick": int(quick)})
    return stamp(ds, inputs)


def lfo_inputs(
    run: Run, min_train: int | None, k_threshold: float, quick: bool, asset: str | None
) -> Inputs:
    """What a run's LFO depends on (`reopen.result_inputs`): the run and these settings."""
    settings = {"min_train": min_train, "k_threshold": k_threshold, "quick": quick, "asset": asset}
    return result_inputs(run, {"lfo": settings})


def scored_asset(exp: Experiment, asset: str | None) -> str | None:
    """The asset whose own density a run's LFO scores: `asset` for a panel run (which must hold
    it), None (the run's joint density `y`) for a single-asset run or without `asset`."""
    if asset is None or not exp.data.assets:
        return None
    if asset not in exp.data.assets:
        raise LFOError(
            f"{exp.name}: asset {asset!r} is not one of the panel's assets "
            f"({', '.join(exp.data.assets)})"
        )
    return asset


def scored_label(asset: str | None) -> str:
    """What an LFO scored, as lfo.nc's `scored` attribute records it."""
    return f"y_asset[{asset}]" if asset else "y"


@quiet_keyword
def lfo_frame(
    exp: Experiment,
    frame: FitFrame,
    *,
    min_train: int | None = None,
    k_threshold: float = K_THRESHOLD,
    first_scored: int = 0,
    label: str = "",
    asset: str | None = None,
    warm_start: Adaptation | None = None,
) -> xr.Dataset:
    """Approximate LFO of `exp`'s model on `frame`, refitting with `api.fit_frame` (seed + i at
    month i). `first_scored`: fit months the model conditions on (e.g. markov's ar_order).
    `asset`: score a panel's density of that asset (`score`). `warm_start`: the run's own final
    tuning (`tuning.npz`), where the first refit starts instead of a multi-start and full
    warm-up; each later refit starts from the one before."""
    fit_time = frame.time[frame.fit.to_numpy()]
    n = len(fit_time)
    lo = first_scored + 2
    L = max(default_min_train(n), lo) if min_train is None else int(min_train)
    if not lo <= L < n:
        cond = f", the first {first_scored} conditioned on" if first_scored else ""
        raise LFOError(
            f"{label or exp.name}: --min-train must be between {lo} and {n - 1} (the fit window "
            f"has {n} periods{cond}); got {L}"
        )
    label = label or exp.name
    log.info(
        f"lfo {label}: scoring {n - L} periods {fit_time[L]:%Y-%m}..{fit_time[-1]:%Y-%m} "
        f"after {L} training periods (Pareto k threshold {k_threshold})"
    )
    t_start = time.perf_counter()
    n_refits, why = 0, ""
    # each refit warm-starts from the one before (same compiled model), the first from the run
    carry = warm_start if warm_start is not None else Adaptation()
    warm_refits = 0
    # refits pad their own way (below), not to the run's `data.pad_to`
    unpadded = exp.model_copy(update={"data": exp.data.model_copy(update={"pad_to": None})})

    def refit(i: int) -> Refit:
        nonlocal n_refits, warm_refits
        t0 = time.perf_counter()
        sampler = exp.sampler.model_copy(update={"seed": exp.sampler.seed + i})
        exp_i = unpadded.model_copy(update={"sampler": sampler})
        # padded to the scoring shapes where the family weights its likelihood: every refit
        # then reuses one compiled model (`regimes.compiled`)
        padded = get_family(exp.spec.family).weighted_likelihood
        train = truncate(frame, i, score_until=n, padded=True) if padded else truncate(frame, i)
        with quiet(*REFIT_LOGGERS):
            tree = fit_frame(exp_i, train, progress=False, log_likelihood=False, adaptation=carry)
        ll = score(exp_i, tree, truncate(frame, i, score_until=n), asset)
        if not np.isin(fit_time[i:].values, ll["time"].values).all():
            raise LFOError(
                f"family {exp.spec.family!r} (options {exp.spec.options}) does not score periods "
                "past a refit's window; LFO needs one-step-ahead predictive densities there"
            )
        ll = ll.sel(time=fit_time[i:].values)
        values = ll.stack(sample=("chain", "draw")).transpose("sample", "time").values
        n_refits += 1
        warm = str(tree.attrs.get("init", "")).startswith("warm")
        warm_refits += warm
        log.info(
            f"lfo {label}: refit {n_refits} on {i} periods (..{fit_time[i - 1]:%Y-%m}"
            f"{why}) in {time.perf_counter() - t0:.1f} s{' (warm start)' if warm else ''}"
        )
        return Refit(np.asarray(values, dtype=float), _r_eff(tree))

    def on_step(i: int, k: float, refitting: bool) -> None:
        nonlocal why
        why = f"; Pareto k {k:.2f} > {k_threshold}" if refitting and not np.isnan(k) else ""

    result = approximate_lfo(refit, n, L, k_threshold, on_step)
    ds = lfo_dataset(result, fit_time[L:])
    ds.attrs.update(
        {
            "experiment": exp.name,
            "draws": exp.sampler.draws,
            "chains": exp.sampler.chains,
            "wall_s": round(time.perf_counter() - t_start, 1),
            "scored": scored_label(asset),
            "warm_refits": warm_refits,  # started from the fit before (the first: the run's)
        }
    )
    return ds


def _first_scored(run: Run, fit_time: pd.DatetimeIndex) -> int:
    """Index (in fit months) of the first month with a pointwise log-likelihood in the run."""
    ll = pointwise_log_lik(run.posterior(), str(run.path))
    start = pd.Timestamp(ll["time"].values[0])
    return int(fit_time.get_loc(start))


def lfo_dataset(result: LFOResult, time_index: pd.DatetimeIndex) -> xr.Dataset:
    """The lfo.nc contents: per-month elpd, pareto_k and refit, totals in attrs."""
    k = result.pareto_k[np.isfinite(result.pareto_k)]
    return xr.Dataset(
        {
            "elpd": ("time", result.elpd, {"long_name": "log p(y_t | y_<t), natural units"}),
            "pareto_k": ("time", result.pareto_k, {"note": "NaN where the model was refit"}),
            "refit": ("time", result.refit),
        },
        coords={"time": pd.DatetimeIndex(time_index).values},
        attrs={
            "method": "approximate 1-step-ahead LFO (Bürkner, Gabry & Vehtari 2020)",
            "elpd_lfo": result.elpd_lfo,
            "se": result.se,
            "n_refits": int(result.refit.sum()),
            "L": result.min_train,
            "threshold": result.k_threshold,
            "max_k": float(k.max()) if k.size else math.nan,
            "scale": NATURAL_SCALE,
        },
    )


def write_lfo(run_dir: str | Path, ds: xr.Dataset) -> Path:
    """Write lfo.nc into a run directory atomically and record it in the manifest."""
    return add_file_to_run(run_dir, LFO_FILE, lambda tmp: write_netcdf(ds, tmp))


def load_lfo(run_dir: str | Path) -> xr.Dataset | None:
    """A run's lfo.nc, or None if it has none yet; one its manifest does not list or whose
    sha256 differs (copied in from another run, edited) is a RunError, never read."""
    if not exists(Path(run_dir) / LFO_FILE):
        return None
    return load_listed(run_dir, LFO_FILE)


@quiet_keyword
def ensure_lfo(
    run_dir: str | Path,
    *,
    min_train: int | None = None,
    k_threshold: float = K_THRESHOLD,
    quick: bool = False,
    asset: str | None = None,
) -> xr.Dataset:
    """The run's stored LFO if its reuse key is the one these settings give now (the same run,
    settings and code: `lfo_inputs`) and its file is the one the manifest lists; else compute
    and store it, saying why in one log line."""
    run = open_run(run_dir)
    wanted = lfo_inputs(run, min_train, k_threshold, quick, asset)
    ds, why = current_result(run, LFO_FILE, wanted)
    if ds is not None:
        return ds
    if why:
        log.info(f"lfo {run.path}: computing it again: {why}")
    ds = lfo_run(run_dir, min_train=min_train, k_threshold=k_threshold, quick=quick, asset=asset)
    write_lfo(run_dir, ds)
    return ds


def summary_line(ds: xr.Dataset) -> str:
    """elpd_lfo, se, refits and the worst Pareto k of an lfo.nc, in one line."""
    a = ds.attrs
    return (
        f"elpd_lfo {a['elpd_lfo']:.2f} (se {a['se']:.2f}) over {ds.sizes['time']} periods from "
        f"L = {a['L']}; {a['n_refits']} exact refits; worst Pareto k {a['max_k']:.2f} "
        f"(threshold {a['threshold']})"
    )


# ------------------------------------------------------------------ comparison


@quiet_keyword
def compare_lfo(
    run_dirs: Sequence[str | Path],
    *,
    min_train: int | Mapping[str, int] | None = None,
    k_threshold: float = K_THRESHOLD,
    quick: bool = False,
    asset: str | None = None,
) -> pd.DataFrame:
    """Rank runs by elpd_lfo (best first), computing lfo.nc where missing. `asset`: panel runs
    score that asset's own density, so they compare with single-asset models of it. `min_train`
    is one count for every run, or one per run directory (runs whose windows start in different
    months reach the same first scored month at different counts).

    Columns: rank, elpd_lfo, se, elpd_diff (best minus this run, >= 0), dse (se of the pointwise
    difference), n_refits, max_k. Runs must score the same months (same window and L)."""
    if len(run_dirs) < 2:
        raise CompareError(f"compare needs at least two run directories, got {len(run_dirs)}")
    elpds: dict[str, xr.DataArray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for path in run_dirs:
        run = open_run(path)
        label = run_label(run, set(elpds))
        ds = ensure_lfo(
            run.path,
            min_train=min_train.get(str(path)) if isinstance(min_train, Mapping) else min_train,
            k_threshold=k_threshold,
            quick=quick,
            asset=asset,
        )
        elpds[label], attrs[label] = ds["elpd"], dict(ds.attrs)
    (ref_label, ref), *rest = elpds.items()
    for label, da in rest:
        if not np.array_equal(ref["time"].values, da["time"].values):
            raise CompareError(
                f"runs {ref_label} and {label} score different months in LFO "
                f"({describe_obs(ref)} vs {describe_obs(da)}); use runs on the same data window "
                "and the same --min-train"
            )
    totals = {label: float(da.sum()) for label, da in elpds.items()}
    order = sorted(totals, key=lambda lab: -totals[lab])
    best = elpds[order[0]].values
    rows = []
    for rank, label in enumerate(order):
        diff = best - elpds[label].values
        rows.append(
            {
                "run": label,
                "rank": rank,
                "elpd_lfo": totals[label],
                "se": float(attrs[label]["se"]),
                "elpd_diff": float(diff.sum()),
                "dse": float(np.sqrt(diff.size * np.var(diff))),
                "n_refits": int(attrs[label]["n_refits"]),
                "max_k": float(attrs[label]["max_k"]),
            }
        )
    df = pd.DataFrame(rows).set_index("run")
    # the columns ArviZ's plot_compare reads (its elpd_diff is this run minus the best)
    df.attrs["arviz"] = pd.DataFrame(
        {
            "rank": df["rank"],
            "elpd": df["elpd_lfo"],
            "se": df["se"],
            "elpd_diff": -df["elpd_diff"],
            "dse": df["dse"],
        }
    )
    return df


def format_compare_lfo(df: pd.DataFrame) -> str:
    """Plain-text table of `compare_lfo` output, with a one-line legend."""
    shown = df.copy()
    for col in ("elpd_lfo", "se", "elpd_diff", "dse", "max_k"):
        shown[col] = shown[col].map(lambda x: f"{x:.2f}")
    legend = (
        "approximate 1-step-ahead LFO, best first; elpd_diff = elpd(best) - elpd(run), dse its se; "
        "n_refits = exact refits, max_k = worst Pareto k of the importance weights used"
    )
    return legend + "\n" + shown.to_string()
