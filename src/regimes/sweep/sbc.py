"""Simulation-based calibration (Talts et al. 2018) as a sweep: one task a simulation, each
drawing the parameters from the base experiment's own prior, simulating a series of its fit
window's length, fitting, and ranking each true scalar among L thinned posterior draws; the
combine step writes `sbc.nc` (dimension `sim`) and rank-histogram and ECDF-difference figures
with simultaneous bands (Säilynoja, Bürkner & Vehtari 2022).

What is tested is the family's own `build()` (priors, transforms, transition rows, likelihood)
with y a symbolic input on the model's own scale: `build()` standardises y over the fit window,
which puts the prior on a data-dependent scale, so `design` is patched to return y unstandardised
(everything else is the family's code). The sampler is numpyro's NUTS kernel (the one behind
`backend = "numpyro"`) jitted once per process with y as an argument (`Fitter`), so a worker
compiles once and every later simulation on it only samples. Supported: `markov` family models
whose free variables are `intercept`, `sigma` and `P` (switching mean and variance, no factors).
`validation/sbc_markov.py` and `sbc_structures.py` drive the same parts directly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import xarray as xr

from regimes.errors import ConfigError
from regimes.sweep.combine import SBC_NC  # in the sweep folder: every simulation along `sim`
from regimes.sweep.expand import Task
from regimes.sweep.task import DONE, failure, start_record, write_json_atomic

SBC_JSON = "sbc.json"  # in a task folder: that simulation's ranks and diagnostics
NAMES = ("intercept", "sigma", "P")  # the free variables an SBC model may have
_FITTERS: dict[str, tuple[Any, Any, list[str]]] = {}  # per process: compiled once, reused


def placeholder_frame(t: int) -> Any:
    """A frame of `t` months and no factors: `build()` only reads its index and length."""
    from regimes.dataset import FitFrame

    index = pd.date_range("2000-01-01", periods=t, freq="MS")
    frame = pd.DataFrame({"y": np.zeros(t)}, index=index)
    return FitFrame("y", (), frame, pd.Series(True, index=index))


def build_unstandardised(spec: Any, t: int) -> tuple[Any, Any]:
    """The markov family's `build()` with y a symbolic (t,) input on the model's own scale
    (its `design` patched: no standardisation, no factors); returns (model, y)."""
    import pytensor.tensor as pt

    from regimes.families import markov
    from regimes.families.markov import model as markov_model

    y = pt.tensor("y", shape=(t,), dtype="float64")
    with mock.patch.object(markov_model, "design", plain_design(y, t)):
        model = markov.FAMILY.build(spec, placeholder_frame(t))
    return model, y


def plain_design(y: Any, t: int) -> Any:
    """A stand-in for `markov.model.design`: y (symbolic or simulated, length `t`) on the
    model's own scale, no factors, no standardisation."""
    from regimes.families import markov

    def raw_design(frame: Any, opts: Any, where: str = "") -> Any:
        empty = np.zeros((t, 0))
        return markov.Design(
            y=y, x_switch=empty, x_shared=empty, x_switch_all=empty, x_shared_all=empty,
            switch_terms=[], shared_terms=[], z=empty, z_all=empty, dx=np.zeros((t - 1, 0)),
            covariates=[], y_mean=0.0, y_sd=1.0, x_mean={}, x_sd={},
        )  # fmt: skip

    return raw_design


def simulate(rng: np.random.Generator, truth: dict[str, np.ndarray], t: int) -> np.ndarray:
    """A regime path from the stationary start and P, then y = a[s] + sigma[s]·eps."""
    from regimes.hmm import stationary_distribution

    P = np.asarray(truth["P"])
    k = P.shape[0]
    s = np.empty(t, dtype=int)
    s[0] = rng.choice(k, p=stationary_distribution(P))
    for i in range(1, t):
        s[i] = rng.choice(k, p=P[s[i - 1]])
    sigma = np.asarray(truth["sigma"])
    return np.asarray(truth["intercept"])[s] + (sigma[s] if sigma.ndim else sigma) * rng.normal(
        size=t
    )


class Fitter:
    """One compiled numpyro NUTS sampler for the model, reused for every simulated y.

    PyMC's numpyro backend replaces shared data by constants before jaxifying (a fresh JAX
    compilation per simulation); here the log density is jaxified once with y an argument and
    the kernel (`numpyro.infer.hmc.hmc(algo="NUTS")`: diagonal mass matrix, step size and mass
    adapted in warm-up, target_accept 0.9) runs in one `jax.jit(vmap(chain))` taking y."""

    def __init__(
        self, model: Any, y_sym: Any, tune: int, draws: int, chains: int,
        names: tuple[str, ...] = NAMES,
    ) -> None:  # fmt: skip
        """Jaxify the log density (y an argument) and the map to the constrained `names`, once."""
        import jax
        import jax.numpy as jnp
        from numpyro.infer.hmc import hmc
        from pymc.sampling.jax import get_jaxified_graph

        self.model, self.chains = model, chains
        values = model.value_vars
        point = model.initial_point()
        self.shapes = [np.shape(point[v.name]) for v in values]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x0 = np.concatenate([np.ravel(point[v.name]) for v in values])
        logp = get_jaxified_graph(inputs=[*values, y_sym], outputs=[model.logp()])
        self.names = names
        outs = [model.unobserved_value_vars[[v.name for v in model.unobserved_value_vars].index(n)]
                for n in names]  # fmt: skip
        constrain = get_jaxified_graph(inputs=values, outputs=outs)
        splits = np.cumsum(self.sizes)[:-1].tolist()
        shapes = self.shapes

        def unravel(z: Any) -> list[Any]:
            return [p.reshape(s) for p, s in zip(jnp.split(z, splits), shapes, strict=True)]

        kernel_init, kernel_step = hmc(potential_fn_gen=lambda y: lambda z: -logp(*unravel(z), y)[0],
                                       algo="NUTS")  # fmt: skip
        n_iter = tune + draws

        def one_chain(key: Any, z0: Any, y: Any) -> tuple[Any, Any]:
            state = kernel_init(z0, num_warmup=tune, target_accept_prob=0.9, dense_mass=False,
                                model_args=(y,), rng_key=key)  # fmt: skip

            def body(state: Any, _: Any) -> tuple[Any, Any]:
                state = kernel_step(state, model_args=(y,))
                return state, (state.z, state.diverging)

            _, (zs, div) = jax.lax.scan(body, state, None, length=n_iter)
            return zs[tune:], div[tune:]

        self.run = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)))
        self.potential = jax.jit(jax.value_and_grad(lambda z, y: -logp(*unravel(z), y)[0]))
        self.constrain = jax.jit(jax.vmap(lambda z: constrain(*unravel(z))))
        self.jax = jax
        self.optima: list[float] = []

    def multistart(
        self, y: np.ndarray, rng: np.random.Generator, n_starts: int
    ) -> tuple[np.ndarray, list[float]]:
        """The family's initialisation (`sampling.maximise_from`) on this compiled density, from
        `n_starts` dispersed points (uniform(-2, 2) around the initial point, unconstrained): the
        best optimum and the log densities of all optima, best first."""
        from regimes.sampling import maximise_from

        def logp_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
            neg, grad = self.potential(z, y)
            return -float(neg), -np.asarray(grad, dtype=float)

        starts = self.x0 + rng.uniform(-2, 2, size=(n_starts, self.x0.size))
        optima = maximise_from(logp_and_grad, starts)
        return optima[0][1], [lp for lp, _ in optima]

    def fit(
        self, y: np.ndarray, seed: int, init: str = "jitter", n_starts: int = 12
    ) -> tuple[dict[str, np.ndarray], int]:
        """Posterior draws (chain, draw, ...) of each of `names` and the divergence count.

        `init="jitter"`: chains start at the initial point plus uniform(-1, 1) jitter (PyMC's
        default); `"multistart"`: every chain starts at the best of `n_starts` optimisations, as
        `backend="numpyro"` runs do with the markov family (sampling.multistart)."""
        rng = np.random.default_rng(seed)
        self.optima = []
        if init == "multistart":
            best, self.optima = self.multistart(y, rng, n_starts)
            start = np.tile(best, (self.chains, 1))
        else:
            start = self.x0 + rng.uniform(-1, 1, size=(self.chains, self.x0.size))
        keys = self.jax.random.split(self.jax.random.PRNGKey(seed), self.chains)
        zs, div = self.run(keys, start, y)
        z = np.asarray(zs)
        c, d = z.shape[:2]
        outs = [np.asarray(o) for o in self.constrain(z.reshape(c * d, -1))]
        return {
            name: o.reshape(c, d, *o.shape[1:]) for name, o in zip(self.names, outs, strict=True)
        }, int(np.asarray(div).sum())


def param_names(values: dict[str, np.ndarray]) -> list[str]:
    """The scalar parameters ranked, from one draw: intercept[k], sigma[k] (or sigma), P[k,k]
    (the off-diagonal of each transition row is implied by its diagonal only for K = 2, and the
    diagonals are what the stay probabilities mean)."""
    names = []
    for name in NAMES:
        shape = np.shape(values[name])
        if name == "P":
            names += [f"P[{k},{k}]" for k in range(shape[0])]
        elif shape:
            names += [f"{name}[{k}]" for k in range(shape[0])]
        else:
            names.append(name)
    return names


def scalars(x: dict[str, np.ndarray], ndim: int = 0) -> np.ndarray:
    """The scalar parameters of `param_names` on the trailing axis; `ndim` leading axes (0 for
    one draw, 2 for (chain, draw))."""
    cols = []
    for name in NAMES:
        v = np.asarray(x[name])
        if name == "P":
            cols += [v[..., k, k] for k in range(v.shape[-1])]
        elif v.ndim > ndim:
            cols += [v[..., k] for k in range(v.shape[-1])]
        else:
            cols.append(v)
    return np.stack(cols, axis=-1)


def thin(flat: np.ndarray, keep: int) -> np.ndarray:
    """`keep` draws evenly spaced through (draw, param) draws (all chains pooled)."""
    return flat[np.linspace(0, len(flat) - 1, keep).round().astype(int)]


def ranks(flat: np.ndarray, truth: np.ndarray, keep: int) -> np.ndarray:
    """Rank of each true value among `keep` thinned draws: how many are below it, in 0..keep."""
    return (thin(flat, keep) < truth).sum(axis=0).astype(int)


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Split-R-hat (Gelman et al. BDA3) of (chain, draw, param) draws, per parameter."""
    half = draws.shape[1] // 2
    parts = np.concatenate([draws[:, :half], draws[:, half : 2 * half]], axis=0)
    n = parts.shape[1]
    w = parts.var(axis=1, ddof=1).mean(axis=0)
    b = n * parts.mean(axis=1).var(axis=0, ddof=1)
    return np.sqrt(((n - 1) / n * w + b / n) / w)


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS (rank-normalised, Vehtari et al. 2021) of (chain, draw, param) draws."""
    from arviz_stats.base import array_stats

    return np.asarray(array_stats.ess(np.moveaxis(draws, -1, 0), chain_axis=1, draw_axis=2))


def compiled(spec: Any, t: int, tune: int, draws: int, chains: int) -> tuple[Any, Any, list[str]]:
    """(Fitter, model, parameter names) for this model, length and run length: built and
    jitted on first use in this process, reused by every later simulation."""
    key = json.dumps([spec.model_dump(mode="json"), t, tune, draws, chains], sort_keys=True)
    if key not in _FITTERS:
        if spec.family != "markov":
            raise ConfigError(
                f"sbc: model family {spec.family!r} is not supported; SBC sweeps run markov "
                "models with a switching intercept and variance (e.g. models/ms_mean_variance)"
            )
        model, y_sym = build_unstandardised(spec, t)
        free = sorted(rv.name for rv in model.free_RVs)
        if set(free) != set(NAMES):
            raise ConfigError(
                f"sbc: the model's free variables are {free}; SBC sweeps support exactly "
                f"{sorted(NAMES)} (a markov model with switching = ['intercept'], no factors)"
            )
        fitter = Fitter(model, y_sym, tune, draws, chains)
        names = param_names(dict(zip(NAMES, draw_truth(model, 0).values(), strict=True)))
        _FITTERS[key] = (fitter, model, names)
    return _FITTERS[key]


def draw_truth(model: Any, rng: np.random.Generator | int) -> dict[str, np.ndarray]:
    """One draw of (intercept, sigma, P) from the model's own prior; the intercepts sorted (an
    ordered transform on iid priors makes the prior the distribution of the sorted draws)."""
    import pymc as pm

    a, s, P = pm.draw([model[n] for n in NAMES], random_seed=rng)
    return {"intercept": np.sort(a), "sigma": s, "P": P}


def simulate_and_rank(task: Task) -> dict[str, Any]:
    """One simulation: truth from the prior, data from the truth, a fit, the ranks."""
    from regimes.config import load_experiment, run_version

    cfg = task.sbc
    exp = run_version(load_experiment(task.config), quick=task.quick)
    assert exp.spec is not None
    s = exp.sampler
    t0 = time.perf_counter()
    fitter, model, names = compiled(exp.spec, cfg["length"], s.tune, s.draws, s.chains)
    rng = np.random.default_rng([cfg["seed"], cfg["sim"]])  # the same sim, whatever the order
    truth = draw_truth(model, rng)
    y = simulate(rng, truth, cfg["length"])
    post, div = fitter.fit(y, int(rng.integers(2**31)), init=cfg["init"], n_starts=cfg["starts"])
    draws = scalars(post, ndim=2) + cfg["shift"]  # (chain, draw, param)
    flat = draws.reshape(-1, draws.shape[-1])
    true = scalars(truth)
    q05, q95 = np.quantile(flat, [0.05, 0.95], axis=0)
    modes = int(np.sum(np.diff(fitter.optima) < -0.5)) + 1 if fitter.optima else 0
    return {
        "sim": cfg["sim"],
        "params": names,
        "rank": ranks(flat, true, cfg["keep"]).tolist(),
        "keep": cfg["keep"],
        "n_posterior": int(flat.shape[0]),
        "truth": true.tolist(),
        "ess_bulk": [round(float(e), 1) for e in ess_bulk(draws)],
        "cover90": ((q05 <= true) & (true <= q95)).astype(int).tolist(),
        "divergences": div,
        "max_rhat": round(float(split_rhat(draws).max()), 4),
        "optima": modes,
        "length": cfg["length"],
        "fit_s": round(time.perf_counter() - t0, 2),
    }


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
        status="complete", run_dir=SBC_JSON, wall_s=round(time.perf_counter() - t0, 2), key=task.key
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
    path = sweep_dir / SBC_NC
    tmp = sweep_dir / f".{SBC_NC}.{os.getpid()}.tmp"
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
