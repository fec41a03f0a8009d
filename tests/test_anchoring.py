"""The anchor check: reverting deviations pass, a random-walk gap and a fair value that tracks
the price fail, each with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
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


def derived_with(dev: np.ndarray, n_factors: int) -> xr.Dataset:
    """A fair value 100 (the price 100·exp(dev)) whose `coef` holds `n_factors` estimated
    slopes."""
    ds = derived_of(100.0 * np.exp(dev), np.full(len(dev), 100.0))
    terms = [f"f{i}" for i in range(max(n_factors, 1))]
    coef = np.full((len(terms), 3), np.nan if n_factors == 0 else 1.0)
    return ds.assign(coef=(("term", "quantile"), coef)).assign_coords(term=terms)


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


def test_engle_granger_critical_values_are_mackinnons() -> None:
    """MacKinnon (2010) asymptotic 5% (and 1%) values with a constant: −2.8615 for a deviation
    from a level (Dickey–Fuller), −3.3361 with one estimated slope, −3.7407 with two; the finite
    sample value is more negative."""
    from regimes.reversion import eg_critical_value

    big = 10**7
    assert eg_critical_value(0, big) == pytest.approx(-2.86154, abs=2e-3)
    assert eg_critical_value(1, big) == pytest.approx(-3.33613, abs=2e-3)
    assert eg_critical_value(2, big) == pytest.approx(-3.74066, abs=2e-3)
    assert eg_critical_value(2, big, level=0.01) == pytest.approx(-4.29374, abs=2e-3)
    assert eg_critical_value(2, 100) < eg_critical_value(2, big)


def test_a_fair_value_with_two_factors_needs_the_engle_granger_value() -> None:
    """A deviation whose Dickey–Fuller t lies between −3.75 and −2.86 passes the old level test
    but not the Engle–Granger one once the fair value has two estimated slopes."""
    rng = np.random.default_rng(0)
    n = 300
    dev = np.zeros(n)
    for t in range(1, n):
        dev[t] = 0.93 * dev[t - 1] + rng.normal(0, 0.05)
    t_stat = deviation_reversion(dev)["df_t"]
    assert -3.75 < t_stat < -2.86, t_stat  # the seed gives a borderline reversion
    with_slopes = derived_with(dev, n_factors=2)
    without = derived_with(dev, n_factors=0)
    assert anchor_check(without)["anchor_identified"] == 1
    assert anchor_check(with_slopes)["anchor_identified"] == 0
    assert anchor_check(with_slopes)["anchor_critical_value"] < -3.7


def test_regimes_are_checked_on_the_months_their_sampled_paths_hold() -> None:
    """Per draw: regime 0's deviations revert (AR(1), ρ = 0.7), regime 1's are a random walk;
    the sampled paths say which months are whose."""
    from regimes.families.chain.derived import regime_reversion

    rng = np.random.default_rng(0)
    n, d = 240, 50
    truth = (np.arange(n) >= 120).astype(int)
    ar, walk = np.zeros(n), np.cumsum(rng.normal(0, 0.05, n))
    for t in range(1, n):
        ar[t] = 0.7 * ar[t - 1] + rng.normal(0, 0.05)
    price = np.full(n, 100.0)
    fv = np.empty((d, n, 2))
    fv[:, :, 0] = price / np.exp(ar)  # log(price / fv) = the deviation
    fv[:, :, 1] = price / np.exp(walk)
    paths = np.repeat(truth[None], d, axis=0)
    out = regime_reversion(fv, price, paths, np.ones(n, bool), np.array([1, 1]), np.array([0.5]))
    prob = out["anchor_reverts_prob"][1]
    assert prob[0] == 1.0 and prob[1] == 0.0


def test_half_life_quantiles_reach_infinity_without_nan() -> None:
    """Draws without reversion have an infinite half-life: a quantile at or interpolated towards
    one is infinite (NumPy's own interpolation gives NaN there); elsewhere NumPy's values."""
    import warnings

    from regimes.families.chain.derived import quantiles_to_infinity

    q = np.array([0.05, 0.25, 0.5, 0.74, 0.95])
    finite = np.random.default_rng(1).gamma(2.0, 3.0, 41)
    np.testing.assert_allclose(quantiles_to_infinity(finite, q), np.quantile(finite, q))
    values = np.concatenate([finite[:30], np.full(11, np.inf)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = quantiles_to_infinity(values, q)
    np.testing.assert_allclose(out[:3], np.quantile(values, q[:3]))
    assert np.isposinf(out[3:]).all()  # 0.74: between the last finite value and the first inf
