"""The anchor check: reverting deviations pass, a random-walk gap and a fair value that tracks
the price fail, each with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimes.anchoring import anchor_check, deviation_reversion


def derived_of(price: np.ndarray, fair: np.ndarray) -> xr.Dataset:
    time = pd.date_range("1990-01-01", periods=len(price), freq="MS")
    fv = np.stack([fair * 0.9, fair, fair * 1.1], axis=-1)
    return xr.Dataset(
        {"price": ("time", price), "fair_value": (("time", "quantile"), fv),
         "in_sample": ("time", np.ones(len(price), dtype=bool))},
        coords={"time": time, "quantile": [0.05, 0.5, 0.95]},
    )  # fmt: skip


def ar1(rng: np.random.Generator, rho: float, n: int, sd: float = 0.05) -> np.ndarray:
    out = np.zeros(n)
    for t in range(1, n):
        out[t] = rho * out[t - 1] + rng.normal(0, sd)
    return out


def test_reverting_deviation_is_an_anchor() -> None:
    rng = np.random.default_rng(1)
    fair = np.exp(np.linspace(5, 7, 400))
    verdict = anchor_check(derived_of(fair * np.exp(ar1(rng, 0.9, 400)), fair))
    assert verdict["anchor_identified"] == 1, verdict
    assert 3 < verdict["anchor_half_life_months"] < 15  # ln 0.5 / ln 0.9 = 6.6


def test_random_walk_gap_is_not_an_anchor() -> None:
    rng = np.random.default_rng(2)
    fair = np.exp(np.linspace(5, 7, 400))
    verdict = anchor_check(derived_of(fair * np.exp(ar1(rng, 1.0, 400)), fair))
    assert verdict["anchor_identified"] == 0
    assert "do not revert" in verdict["anchor_note"] or "too slowly" in verdict["anchor_note"]


def test_fair_value_that_tracks_the_price_is_a_fit() -> None:
    rng = np.random.default_rng(3)
    price = np.exp(np.linspace(5, 7, 300) + ar1(rng, 0.9, 300))
    verdict = anchor_check(derived_of(price, price * (1 + rng.normal(0, 1e-4, 300))))
    assert verdict["anchor_identified"] == 0 and "a fit" in verdict["anchor_note"]


def test_dickey_fuller_statistic_matches_its_definition() -> None:
    rng = np.random.default_rng(4)
    dev = ar1(rng, 0.8, 500)
    stats = deviation_reversion(dev)
    assert abs(stats["rho"] - 0.8) < 0.06 and stats["df_t"] < -5
