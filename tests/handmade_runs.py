"""Run directories written by hand, as `regimes run` writes them but without sampling: for the
tests that damage, swap or delete a run's files (test_faults, test_property_loaders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimes.results import CONFIG, DERIVED, POSTERIOR, write_netcdf, write_run


def derived_of(value: float) -> xr.Dataset:
    return xr.Dataset({"price": ("time", np.full(4, value))}, coords={"time": np.arange(4)})


def posterior_of(seed: int) -> xr.DataTree:
    draws = np.random.default_rng(seed).normal(size=(2, 50))
    post = xr.Dataset(
        {"mu": (("chain", "draw"), draws)}, coords={"chain": [0, 1], "draw": np.arange(50)}
    )
    return xr.DataTree.from_dict({"posterior": post})


def make_run(root: Path, run_id: str, value: float, posterior: bytes | None = None) -> Path:
    """A complete run directory written as `regimes run` writes one, without sampling."""

    def writer(tmp: Path) -> dict:
        write_netcdf(derived_of(value), tmp / DERIVED)
        if posterior is None:
            write_netcdf(posterior_of(int(value)), tmp / POSTERIOR)
        else:
            (tmp / POSTERIOR).write_bytes(posterior)
        (tmp / CONFIG).write_text('name = "exp"\n', encoding="utf-8")
        (tmp / "figures").mkdir()
        (tmp / "figures" / "fair_value.png").write_bytes(b"png" * int(value))
        return {"seed": int(value)}

    return write_run(root, "exp", run_id, writer)


REGIMES = ["low_rate", "high_rate"]


def switching_derived(n: int = 12, observed: int = 10, freq: str = "QS") -> xr.Dataset:
    """A two-regime derived.nc as the markov family writes one (quarterly, the price observed in
    the first `observed` periods, fair value continuing after), its quantiles made by hand."""
    time = pd.date_range("2000-01-01", periods=n, freq=freq)
    q = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    spread = np.array([-1.0, -0.4, 0.0, 0.4, 1.0])
    price = np.where(np.arange(n) < observed, 4.0 + 0.1 * np.arange(n), np.nan)
    means = np.array([3.7, 9.6])
    by_regime = means[None, :, None] + 0.2 * spread[None, None, :] + np.zeros((n, 1, 1))
    prob = np.tile([0.9, 0.1], (n, 1))
    prob[observed - 1] = [0.2, 0.8]  # the last observed period: the high regime
    prob_q = np.clip(prob[..., None] + 0.05 * spread, 0, 1)
    fv = np.einsum("tr,trq->tq", prob, by_regime)
    return xr.Dataset(
        {
            "price": ("time", price, {"units": "percent", "long_name": "USMACRO_FEDFUNDS"}),
            "fair_value": (("time", "quantile"), fv, {"units": "percent"}),
            "deviation_pct": (("time", "quantile"), 100 * (price[:, None] / fv - 1), {"units": "%"}),
            "in_sample": ("time", (np.arange(n) < observed).astype(np.int8)),
            "regime_prob": (("time", "regime"), prob),
            "regime_prob_q": (("time", "regime", "quantile"), prob_q),
            "fair_value_by_regime": (("time", "regime", "quantile"), by_regime, {"units": "percent"}),
            "transition": (
                ("regime", "regime_to", "quantile"),
                np.array([[0.97, 0.03], [0.06, 0.94]])[..., None] + 0.01 * spread,
            ),
            "expected_duration": (
                ("regime", "quantile"),
                np.array([40.0, 15.0])[:, None] * (1 + 0.3 * spread),
                {"units": "periods"},
            ),
            "most_likely_regime": ("time", (prob[:, 1] > 0.5).astype(np.int8)),
        },
        coords={"time": time, "quantile": q, "regime": REGIMES, "regime_to": REGIMES},
        attrs={"experiment": "exp", "model": "ms_mean", "family": "markov", "target": "FF",
               "sample_start": "2000-01", "sample_end": "2002-04", "converged": 0},
    )  # fmt: skip


def natural_group(seed: int = 0, chains: int = 2, draws: int = 200) -> xr.Dataset:
    """A `posterior_natural` group as the families write it: regime means (chains well mixed)
    and a σ whose chains sit apart (R-hat far above 1), with units and long names."""
    rng = np.random.default_rng(seed)
    mean = np.array([3.7, 9.6]) + 0.2 * rng.standard_normal((chains, draws, 2))
    sigma = 2.0 + 0.05 * rng.standard_normal((chains, draws)) + np.arange(chains)[:, None]
    p_stay = np.clip(np.array([0.97, 0.94]) + 0.01 * rng.standard_normal((chains, draws, 2)), 0, 1)
    transition = np.stack([np.stack([p_stay[..., 0], 1 - p_stay[..., 0]], -1),
                           np.stack([1 - p_stay[..., 1], p_stay[..., 1]], -1)], axis=-2)  # fmt: skip
    return xr.Dataset(
        {
            "regime_mean": (("chain", "draw", "regime"), mean,
                            {"units": "percent", "long_name": "mean of the target in each regime"}),
            "sigma": (("chain", "draw"), sigma,
                      {"units": "percent", "long_name": "standard deviation of the innovations"}),
            "transition": (("chain", "draw", "regime", "regime_to"), transition,
                           {"units": "1", "long_name": "transition probability"}),
            "expected_duration": (("chain", "draw", "regime"), 1 / (1 - p_stay),
                                  {"units": "periods", "long_name": "expected duration"}),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "regime": REGIMES,
                "regime_to": REGIMES},
    )  # fmt: skip


def make_switching_run(
    root: Path,
    *,
    natural: xr.Dataset | None = None,
    verdict: dict | None = None,
    quick: bool = False,
    derived: xr.Dataset | None = None,
) -> Path:
    """A complete two-regime run directory, optionally with a `posterior_natural` group."""
    tree = posterior_of(1)
    if natural is not None:
        tree["posterior_natural"] = xr.DataTree(natural)

    def writer(tmp: Path) -> dict:
        write_netcdf(switching_derived() if derived is None else derived, tmp / DERIVED)
        write_netcdf(tree, tmp / POSTERIOR)
        (tmp / CONFIG).write_text('name = "exp"\nmodel = "ms_mean"\n', encoding="utf-8")
        return {
            "seed": 1,
            "quick": quick,
            "sampler": {"chains": 2, "draws": 200},
            "verdict": verdict or {"converged": True, "max_rhat": 1.002, "min_ess_bulk": 900.0,
                                   "divergences": 0, "reasons": []},
        }  # fmt: skip

    return write_run(root, "exp", f"run-{'n' if natural is not None else 'd'}", writer)
