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


def test_white_noise_deviation_reverts_at_once() -> None:
    """ρ ≤ 0 (iid or overshooting deviations) is the fastest reversion, half-life 0, not ∞."""
    rng = np.random.default_rng(5)
    fair = np.exp(np.linspace(5, 7, 400))
    verdict = anchor_check(derived_of(fair * np.exp(ar1(rng, -0.2, 400)), fair))
    assert verdict["anchor_identified"] == 1 and verdict["anchor_half_life_months"] == 0.0


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


def test_each_regime_is_checked_on_its_own_spells() -> None:
    """Two regimes alternating in long spells: the price reverts to regime a's fair value while
    a holds and drifts away from regime b's while b holds; a regime seen for only a few months
    is left unchecked. Pairs that straddle a switch are never used (a jump there would otherwise
    look like reversion)."""
    from regimes.anchoring import regime_anchor_check

    rng = np.random.default_rng(3)
    n = 480
    spells = (np.arange(n) // 60) % 2  # 0 = a, 1 = b, 60-month spells
    fair_a = 1000 * np.exp(np.linspace(0, 1, n))
    fair_b = fair_a * 1.5
    dev_a, dev_b = ar1(rng, 0.8, n), np.cumsum(rng.normal(0, 0.05, n))  # reverting / random walk
    price = np.where(spells == 0, fair_a * np.exp(dev_a), fair_b * np.exp(dev_b))
    prob = np.stack([spells == 0, spells == 1, np.zeros(n, bool)], axis=1).astype(float)
    prob[:3] = [0.2, 0.2, 0.6]  # regime c: three months only
    fv = np.stack([fair_a, fair_b, fair_a], axis=1)
    d = derived_of(price, fair_a)
    d = d.assign_coords(regime=["a", "b", "c"])
    d["regime_prob"] = (("time", "regime"), prob)
    d["fair_value_by_regime"] = (("time", "regime", "quantile"), np.stack([fv] * 3, axis=-1))
    out = regime_anchor_check(d)
    assert list(out["anchor_identified_by_regime"].values) == [1, 0, -1]
    assert out["anchor_half_life_by_regime"].sel(regime="a") < 12
    notes = out["anchor_identified_by_regime"].attrs["notes"]
    assert "b: no identified anchor" in notes and "c: 2 month pairs in its spells" in notes
    single = derived_of(price, fair_a)  # no regimes: nothing to check
    assert not regime_anchor_check(single).data_vars
