"""Tests for regimes.factors on small hand-computed inputs.

Expected values are written out as arithmetic in each test (never by calling the function under
test a second time).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from regimes import factors as F
from regimes.errors import ConfigError, DataError
from regimes_gold import factors as G


def monthly(values, start="2000-01-01", name=None) -> pd.Series:
    values = np.asarray(values, dtype=float)
    idx = pd.date_range(start, periods=len(values), freq="MS")
    return pd.Series(values, index=idx, name=name)


# ---------------------------------------------------------------------------------------------
# helpers: zscore, rolling sums, y/y inflation
# ---------------------------------------------------------------------------------------------


def test_zscore_full_sample():
    x = monthly([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sample variance (4+1+0+1+4)/4 = 2.5
    sd = math.sqrt(2.5)
    expected = [(v - 3.0) / sd for v in (1, 2, 3, 4, 5)]
    np.testing.assert_allclose(F.zscore(x).to_numpy(), expected)


def test_zscore_trailing_window():
    x = monthly([1.0, 2.0, 4.0, 8.0])
    z = F.zscore(x, window=3)
    assert z.iloc[:2].isna().all()
    # window (1, 2, 4): mean 7/3, var = ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = (42/9) / 2 = 7/3
    assert z.iloc[2] == pytest.approx((4 - 7 / 3) / math.sqrt(7 / 3))
    # window (2, 4, 8): mean 14/3, var = ((8/3)^2 + (2/3)^2 + (10/3)^2) / 2 = (168/9) / 2 = 28/3
    assert z.iloc[3] == pytest.approx((8 - 14 / 3) / math.sqrt(28 / 3))


def test_zscore_trailing_has_no_look_ahead():
    x = monthly(np.sin(np.arange(30.0)))
    base = F.zscore(x, window=6)
    x2 = x.copy()
    x2.iloc[-1] = 100.0
    changed = F.zscore(x2, window=6)
    pd.testing.assert_series_equal(base.iloc[:-1], changed.iloc[:-1])
    assert changed.iloc[-1] != base.iloc[-1]


def test_rolling_12m_sum():
    x = monthly(np.arange(1.0, 15.0))  # 1..14
    s = F.rolling_12m_sum(x)
    assert s.iloc[:11].isna().all()
    assert s.iloc[11] == 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12  # 78
    assert s.iloc[12] == 78 - 1 + 13  # 90
    assert s.iloc[13] == 90 - 2 + 14  # 102
    x2 = x.copy()
    x2.iloc[1] = np.nan  # month 2 missing
    s2 = F.rolling_12m_sum(x2)
    # windows 1..12 and 2..13 contain month 2: NaN, no partial sums; window 3..14 does not
    assert s2.iloc[11:13].isna().all()
    assert s2.iloc[13] == pytest.approx(102.0)


def test_yoy_inflation():
    cpi = monthly([100.0] * 12 + [103.0, 104.0], start="2001-01-01")
    inf = F.yoy_inflation(cpi)
    assert inf.name == "inflation"
    assert inf.iloc[:12].isna().all()
    assert inf.iloc[12] == pytest.approx(100 * (103 / 100 - 1))  # 3.0
    assert inf.iloc[13] == pytest.approx(100 * (104 / 100 - 1))  # 4.0


def test_inputs_must_be_on_monthly_grid():
    idx = pd.DatetimeIndex(["2000-01-01", "2000-02-01", "2000-04-01"])
    with pytest.raises(DataError, match="monthly grid"):
        F.yoy_inflation(pd.Series([1.0, 2.0, 3.0], index=idx))
    mid = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2000-01-15", "2000-02-15"]))
    with pytest.raises(DataError, match="month-start"):
        F.yoy_inflation(mid)
    with pytest.raises(DataError, match="DatetimeIndex"):
        F.yoy_inflation(pd.Series([1.0, 2.0]))


# ---------------------------------------------------------------------------------------------
# real rate splice
# ---------------------------------------------------------------------------------------------


def _real_rate_inputs():
    # 2001-01 .. 2003-02: 26 months
    core = monthly([100.0] * 12 + [102.0] * 12 + [104.04, 104.04], start="2001-01-01")
    nominal = monthly([5.0] * 26, start="2001-01-01")
    tips = monthly([1.5] * 26, start="2001-01-01")  # present before the splice: must be ignored
    return tips, nominal, core


def test_real_rate_splice_default():
    tips, nominal, core = _real_rate_inputs()
    rr = F.real_rate(tips, nominal, core)
    assert rr.name == "real_rate"
    assert rr.attrs["splice_date"] == "2003-01-01"
    assert "TIPS" in rr.attrs["method"]
    # 2001: no core CPI 12 months earlier -> NaN (TIPS is NOT used before the splice)
    assert rr.loc["2001-01-01":"2001-12-01"].isna().all()
    # 2002: 5.0 - 100*(102/100 - 1) = 5.0 - 2.0 = 3.0
    np.testing.assert_allclose(rr.loc["2002-01-01":"2002-12-01"].to_numpy(), 3.0)
    # from 2003-01 (inclusive): TIPS 1.5, even though the proxy would be 5 - 2 = 3
    np.testing.assert_allclose(rr.loc["2003-01-01":].to_numpy(), 1.5)


def test_real_rate_custom_splice_and_missing_tips_after():
    tips, nominal, core = _real_rate_inputs()
    tips = tips.copy()
    tips.loc["2003-02-01"] = np.nan
    rr = F.real_rate(tips, nominal, core, splice="2002-07-01")
    assert rr.attrs["splice_date"] == "2002-07-01"
    np.testing.assert_allclose(rr.loc["2002-01-01":"2002-06-01"].to_numpy(), 5.0 - 2.0)
    np.testing.assert_allclose(rr.loc["2002-07-01":"2003-01-01"].to_numpy(), 1.5)
    assert np.isnan(rr.loc["2003-02-01"])  # no fallback to the proxy after the splice


# ---------------------------------------------------------------------------------------------
# dollar
# ---------------------------------------------------------------------------------------------


def test_dollar_index_rescales_old_series_on_overlap():
    # 14 months from 2004-03; old index on positions 0..9, new one on positions 6..13
    old = monthly([46, 47, 48, 49, 45, 44, 50, 51, 52, 53] + [np.nan] * 4, start="2004-03-01")
    new = monthly([np.nan] * 6 + [100, 102, 104, 106, 108, 110, 112, 114], start="2004-03-01")
    out = F.dollar_index(new, old)
    # overlap positions 6..9: mean(new) = (100+102+104+106)/4 = 103,
    # mean(old) = (50+51+52+53)/4 = 51.5 -> scale = 103 / 51.5 = 2
    assert out.attrs["scale_factor"] == pytest.approx(2.0)
    assert out.attrs["overlap_start"] == "2004-09-01"
    assert out.attrs["overlap_end"] == "2004-12-01"
    assert out.attrs["overlap_months"] == 4
    expected = [2 * 46, 2 * 47, 2 * 48, 2 * 49, 2 * 45, 2 * 44]
    expected += [100, 102, 104, 106, 108, 110, 112, 114]
    np.testing.assert_allclose(out.to_numpy(), expected)
    assert out.name == "dollar"


def test_dollar_index_explicit_overlap_and_errors():
    old = monthly([10, 20, 30, 40], start="2006-01-01")
    new = monthly([100, 100, 100, 100], start="2006-01-01")
    out = F.dollar_index(new, old, overlap=("2006-03-01", "2006-04-01"))
    assert out.attrs["scale_factor"] == pytest.approx(100 / ((30 + 40) / 2))
    with pytest.raises(DataError, match="no month in common"):
        F.dollar_index(monthly([1.0, 2.0], start="2010-01-01"), monthly([1.0], start="2000-01-01"))
    alone = F.dollar_index(new)
    assert alone.attrs["scale_factor"] is None
    np.testing.assert_allclose(alone.to_numpy(), 100.0)


# ---------------------------------------------------------------------------------------------
# fiscal
# ---------------------------------------------------------------------------------------------


def test_ddri_round_numbers():
    # months 1-12: GDP 1000 bn; months 13-14: GDP 1040 bn -> g = 1040/1000 - 1 = 0.04
    gdp = monthly([1000.0] * 12 + [1040.0] * 2, start="2010-01-01")
    debt = monthly([1_000_000.0] * 12 + [1_040_000.0] * 2, start="2010-01-01")  # millions USD
    interest = monthly([50.0] * 12 + [52.0] * 2, start="2010-01-01")  # bn USD SAAR
    surplus = monthly([-72_000.0] * 14, start="2010-01-01")  # millions USD, deficit 72 bn
    out = G.ddri(debt, gdp, interest, surplus)
    assert out.name == "ddri"
    assert out.iloc[:12].isna().all()  # no GDP 12 months earlier
    d = (1_040_000 / 1000) / 1040  # 1.0
    r = 52 / (1_040_000 / 1000)  # 0.05
    g = 1040 / 1000 - 1  # 0.04
    pb = (-72_000 / 1000 + 52) / 1040  # -20/1040
    expected = 100 * (d * (r - g) - pb)  # 1.0 + 1.923... = 2.923...
    assert expected == pytest.approx(100 * (0.01 + 20 / 1040))
    np.testing.assert_allclose(out.iloc[12:].to_numpy(), expected)
    comp = G.ddri_components(debt, gdp, interest, surplus)
    assert comp["d"].iloc[0] == pytest.approx(1.0)  # 1,000,000 mn / 1,000 bn
    assert comp["r"].iloc[0] == pytest.approx(0.05)  # 50 bn / 1,000 bn
    assert comp["pb"].iloc[0] == pytest.approx((-72 + 50) / 1000)


def test_deficit_to_gdp_sign_and_units():
    surplus = monthly([-1_500_000.0, 300_000.0])  # millions USD over 12 months
    gdp = monthly([30_000.0, 30_000.0])  # billions USD SAAR
    out = G.deficit_to_gdp(surplus, gdp)
    # deficit of 1,500 bn over GDP 30,000 bn = 5 %; a surplus is a negative deficit
    np.testing.assert_allclose(out.to_numpy(), [100 * 1500 / 30000, -100 * 300 / 30000])
    assert out.name == "deficit_gdp"


def _excess_deficit_inputs():
    # 20 months; the cycle regressors exist from month 13 (indpro y/y needs 12 months of history)
    u = np.array([1, 1, 1, 1, 2, 2, 2, 2], dtype=float)
    g = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=float)  # indpro y/y growth, percent
    e = np.array([1, -1, -1, 1, 1, -1, -1, 1], dtype=float)
    # e is orthogonal to the constant, to u and to g: sum e = 0, sum u*e = 0 + 0, sum g*e = 0 + 0
    assert e.sum() == 0 and (u * e).sum() == 0 and (g * e).sum() == 0
    y = 2.0 + 0.5 * u - 0.3 * g + e
    indpro = monthly([100.0] * 12 + list(100.0 * (1 + g / 100)))  # 100 or 101
    unemployment = monthly([5.0] * 12 + list(u))
    deficit = monthly([3.0] * 12 + list(y))
    return deficit, unemployment, indpro, e


def test_excess_deficit_recovers_known_residual():
    deficit, unemployment, indpro, e = _excess_deficit_inputs()
    out = G.excess_deficit(deficit, unemployment, indpro, window=2)
    coefs = out.attrs["coefficients"]
    assert coefs["intercept"] == pytest.approx(2.0)
    assert coefs["unemployment"] == pytest.approx(0.5)
    assert coefs["indpro_yoy"] == pytest.approx(-0.3)
    # R^2 = 1 - SSR/SST; SSR = sum e^2 = 8; SST from y = 2 + 0.5u - 0.3g + e
    u = np.array([1, 1, 1, 1, 2, 2, 2, 2.0])
    g = np.array([0, 0, 1, 1, 0, 0, 1, 1.0])
    y = 2.0 + 0.5 * u - 0.3 * g + e
    assert out.attrs["r2"] == pytest.approx(1 - 8.0 / ((y - y.mean()) ** 2).sum())
    assert out.attrs["nobs"] == 8
    assert out.attrs["fit"] == "full-sample"
    # residuals are e; 2-month trailing mean of (1,-1,-1,1,1,-1,-1,1):
    expected = [np.nan, (1 - 1) / 2, (-1 - 1) / 2, (-1 + 1) / 2, (1 + 1) / 2, 0.0, -1.0, 0.0]
    assert out.iloc[:12].isna().all()
    np.testing.assert_allclose(out.iloc[12:].to_numpy(), expected, atol=1e-12)
    assert out.name == "excess_deficit"


def test_excess_deficit_expanding_min_obs_and_no_look_ahead():
    n = 80
    t = np.arange(n, dtype=float)
    u = 5 + np.sin(t / 5)
    ip = 100 * (1 + 0.02 * np.cos(t / 7))
    ip_full = np.concatenate([np.full(12, 100.0), ip])
    g = 100 * (ip / ip_full[:n] - 1)  # y/y growth, percent
    y = 1.0 + 0.8 * u - 0.2 * g  # noiseless: every expanding fit is exact
    deficit = monthly(np.concatenate([np.full(12, np.nan), y]))
    unemployment = monthly(np.concatenate([np.full(12, np.nan), u]))
    indpro = monthly(ip_full)
    out = G.excess_deficit(deficit, unemployment, indpro, window=3, expanding=True, min_obs=60)
    # first residual at the 60th common month (position 12 + 59), smoothed over 3 months
    first = 12 + 59 + 2
    assert out.iloc[:first].isna().all()
    np.testing.assert_allclose(out.iloc[first:].to_numpy(), 0.0, atol=1e-9)
    assert out.attrs["fit"] == "expanding"
    assert out.attrs["coefficients"]["unemployment"] == pytest.approx(0.8)
    # changing the last value leaves every earlier output unchanged
    deficit2 = deficit.copy()
    deficit2.iloc[-1] += 10.0
    out2 = G.excess_deficit(deficit2, unemployment, indpro, window=3, expanding=True)
    pd.testing.assert_series_equal(out.iloc[:-1], out2.iloc[:-1])
    assert out2.iloc[-1] != pytest.approx(0.0)


# ---------------------------------------------------------------------------------------------
# bond-FX divergence
# ---------------------------------------------------------------------------------------------


def test_bond_fx_divergence_sign_and_value():
    yields = monthly([2.0, 2.1, 2.0, 2.1, 2.5])  # yields jump up at the end
    dollar = monthly([100.0, 101.0, 100.0, 101.0, 95.0])  # while the dollar falls
    out = G.bond_fx_divergence(yields, dollar, window=4)
    assert out.iloc[:3].isna().all()
    assert out.iloc[-1] > 0
    wy = np.array([2.1, 2.0, 2.1, 2.5])
    wd = np.log([101.0, 100.0, 101.0, 95.0])
    zy = (wy[-1] - wy.mean()) / wy.std(ddof=1)
    zd = (wd[-1] - wd.mean()) / wd.std(ddof=1)
    assert out.iloc[-1] == pytest.approx(zy - zd)
    # yields up together with the dollar up (the normal pattern) -> negative
    same = G.bond_fx_divergence(yields, monthly([100.0, 101.0, 100.0, 101.0, 110.0]), window=4)
    assert same.iloc[-1] < 0


def test_bond_fx_divergence_residual_method():
    rng = np.random.default_rng(0)
    yields = monthly(2 + np.cumsum(rng.normal(0, 0.1, 12)))
    dollar = monthly(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 12))))
    out = G.bond_fx_divergence(yields, dollar, window=6, method="residual")
    assert out.iloc[:5].isna().all()
    # hand check at the last date: OLS of window-standardised log dollar on window-standardised
    # yield over the last 6 months, minus the residual at the last month
    wy = yields.to_numpy()[-6:]
    wd = np.log(dollar.to_numpy()[-6:])
    zy = (wy - wy.mean()) / wy.std(ddof=1)
    zd = (wd - wd.mean()) / wd.std(ddof=1)
    slope, intercept = np.polyfit(zy, zd, 1)
    resid_last = zd[-1] - (intercept + slope * zy[-1])
    assert out.iloc[-1] == pytest.approx(-resid_last)
    # sign: yields up and dollar down at the end -> positive
    y2 = monthly([2.0, 2.1, 2.0, 2.2, 2.1, 2.2, 2.8])
    d2 = monthly([100.0, 101.0, 100.0, 102.0, 101.0, 102.0, 94.0])
    assert G.bond_fx_divergence(y2, d2, window=6, method="residual").iloc[-1] > 0
    with pytest.raises(ValueError, match="method"):
        G.bond_fx_divergence(y2, d2, window=6, method="nope")


@pytest.mark.parametrize("method", ["zdiff", "residual"])
def test_bond_fx_divergence_no_look_ahead(method):
    rng = np.random.default_rng(1)
    yields = monthly(3 + np.cumsum(rng.normal(0, 0.1, 30)))
    dollar = monthly(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 30))))
    base = G.bond_fx_divergence(yields, dollar, window=8, method=method)
    y2, d2 = yields.copy(), dollar.copy()
    y2.iloc[-1] += 1.0
    d2.iloc[-1] *= 0.9
    changed = G.bond_fx_divergence(y2, d2, window=8, method=method)
    pd.testing.assert_series_equal(base.iloc[:-1], changed.iloc[:-1])
    assert changed.iloc[-1] != pytest.approx(base.iloc[-1])


# ---------------------------------------------------------------------------------------------
# gold-copper implied rate
# ---------------------------------------------------------------------------------------------


def _gold_copper_inputs():
    gold = monthly(
        [1000, 1100, 1250, 1200, 1400, 1600, 1500, 1800, 2000, 1900, 2200, 2500, 2400, 2600]
    )
    copper = monthly(
        [6000, 6500, 6200, 7000, 7500, 7100, 8000, 8800, 8300, 9000, 9500, 9100, 10000, 9700]
    )
    # noiseless: yield (%) = 4.0 - 0.002 * gold + 0.000225 * copper
    # i.e. -0.2 bp per $1/oz of gold and +0.0225 bp per $1/t of copper
    yld = 4.0 - 0.002 * gold + 0.000225 * copper
    return yld, gold, copper


def test_gold_copper_recovers_coefficients_exactly():
    yld, gold, copper = _gold_copper_inputs()
    res = G.gold_copper_implied_rate(yld, gold, copper)
    assert list(res.columns) == ["implied_rate", "gap_bp"]
    assert res.attrs["coef_gold_bp_per_usd_oz"] == pytest.approx(-0.2)
    assert res.attrs["coef_copper_bp_per_usd_t"] == pytest.approx(0.0225)
    assert res.attrs["intercept_pct"] == pytest.approx(4.0)
    assert res.attrs["r2"] == pytest.approx(1.0)
    np.testing.assert_allclose(res["gap_bp"].to_numpy(), 0.0, atol=1e-8)
    # first month: 4.0 - 0.002*1000 + 0.000225*6000 = 4.0 - 2.0 + 1.35 = 3.35 %
    assert res["implied_rate"].iloc[0] == pytest.approx(3.35)


def test_gold_copper_fit_window_and_out_of_sample_gap():
    yld, gold, copper = _gold_copper_inputs()
    yld = yld.copy()
    yld.iloc[-1] += 6.6  # actual yield 660 bp above the relation after the fit window
    res = G.gold_copper_implied_rate(yld, gold, copper, end=yld.index[-2])
    assert res.attrs["fit_end"] == yld.index[-2].date().isoformat()
    assert res.attrs["nobs"] == 13
    assert res.attrs["coef_gold_bp_per_usd_oz"] == pytest.approx(-0.2)
    # implied at the last month: 4.0 - 0.002*2600 + 0.000225*9700 = 4.0 - 5.2 + 2.1825 = 0.9825
    assert res["implied_rate"].iloc[-1] == pytest.approx(0.9825)
    assert res["gap_bp"].iloc[-1] == pytest.approx(660.0)
    gap = G.gold_copper_gap(yld, gold, copper, end=yld.index[-2])
    assert gap.name == "gold_copper_gap"
    assert gap.iloc[-1] == pytest.approx(660.0)


# ---------------------------------------------------------------------------------------------
# real gold price, equity in gold, rate-cut expectations
# ---------------------------------------------------------------------------------------------


def test_real_gold_price_base_year_equals_100():
    # 1929-07 .. 1931-06 (24 months); gold fixed at 20.67, CPI 17 in 1929, falling in 1930/31
    cpi_vals = (
        [17.0] * 6
        + [17.0, 16.8, 16.8, 16.6, 16.5, 16.5, 16.4, 16.2, 16.0, 16.0, 15.8, 15.5]
        + [15.2] * 6
    )
    cpi = monthly(cpi_vals, start="1929-07-01")
    gold = monthly([20.67] * 24, start="1929-07-01")
    out = G.real_gold_price(gold, cpi)
    assert out.loc["1930-01-01":"1930-12-01"].mean() == pytest.approx(100.0)
    base = np.mean([20.67 / c for c in cpi_vals[6:18]])
    assert out.iloc[0] == pytest.approx(100 * (20.67 / 17.0) / base)
    assert out.iloc[-1] == pytest.approx(100 * (20.67 / 15.2) / base)
    assert out.attrs["base_year"] == 1930
    with pytest.raises(DataError, match="base year 1950"):
        G.real_gold_price(gold, cpi, base_year=1950)


def test_real_gold_price_starts_where_cpi_starts():
    gold = monthly([20.0] * 36, start="1869-01-01")
    cpi = monthly([10.0] * 12, start="1871-01-01").reindex(gold.index)
    out = G.real_gold_price(gold, cpi, base_year=1871)
    assert out.loc[:"1870-12-01"].isna().all()
    np.testing.assert_allclose(out.loc["1871-01-01":].to_numpy(), 100.0)


def test_equity_in_gold_and_rate_cut_expectations():
    sp = monthly([4000.0, 5000.0])
    gold = monthly([2000.0, 2500.0])
    np.testing.assert_allclose(G.equity_in_gold(sp, gold).to_numpy(), [4000 / 2000, 5000 / 2500])
    gs1 = monthly([4.0, 5.25])
    ff = monthly([5.25, 5.25])
    rce = F.rate_cut_expectations(gs1, ff)
    np.testing.assert_allclose(rce.to_numpy(), [4.0 - 5.25, 0.0])
    assert rce.iloc[0] < 0  # cuts priced
    assert rce.name == "rate_cut_expectations"


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


def test_registry_keys_recipes_and_signatures():
    """The core's factors and the gold plugin's (through its entry point) are registered by name;
    each recipe names the function's series parameters in order, from catalog series."""
    import inspect

    from regimes.data import CATALOG

    core = {"real_rate", "dollar", "rate_cut_expectations", "inflation"}
    gold = {
        "ddri",
        "excess_deficit",
        "bond_fx_divergence",
        "gold_copper_gap",
        "gold_copper_implied_rate",
        "real_gold_price",
        "equity_in_gold",
        "ddri_market",
        "deficit_12m_gdp",
        "r_minus_g",
    }
    assert {f.name for f in G.FACTORS} == gold
    assert set(F.FACTORS) == core | gold
    for key, fdef in F.FACTORS.items():
        assert fdef.name == key
        params = list(inspect.signature(fdef.fn).parameters)
        assert list(fdef.recipe) == params[: len(fdef.recipe)], key
        assert list(fdef.inputs) == [p for p in fdef.recipe if p not in fdef.optional]
        assert all(src in CATALOG for src in fdef.recipe.values() if isinstance(src, str)), key
        assert fdef.units and fdef.description


def test_factor_series_reads_its_recipe_through_the_loader():
    """A recipe's catalog inputs come through the loader; another factor's (`factor_input`)
    through its own recipe: the bond-FX divergence reads GS10 and the dollar's two indices."""
    n = 80
    t = np.arange(n)
    data = {
        "GS10": monthly(3 + np.sin(t / 7)),
        "DTWEXBGS": monthly(100 + 5 * np.cos(t / 5)),
        "TWEXBMTH": monthly(90 + 4 * np.cos(t / 5)),
    }
    reads: list[str] = []

    def load(sid: str) -> pd.Series:
        reads.append(sid)
        return data[sid]

    out = F.factor_series("bond_fx_divergence", load)
    assert reads == ["GS10", "DTWEXBGS", "TWEXBMTH"]
    assert out.name == "bond_fx_divergence" and out.attrs["units"] == "z-score units"
    dollar = F.dollar_index(data["DTWEXBGS"], data["TWEXBMTH"])
    direct = G.bond_fx_divergence(data["GS10"], dollar)
    np.testing.assert_allclose(out.to_numpy(), direct.to_numpy(), equal_nan=True)


def test_compute_factor_runs_and_names_result():
    sp = monthly([4000.0, 5000.0])
    gold = monthly([2000.0, 2500.0])
    out = F.compute_factor("equity_in_gold", {"sp500": sp, "gold": gold, "unused": sp})
    assert out.name == "equity_in_gold"
    np.testing.assert_allclose(out.to_numpy(), [2.0, 2.0])
    yld, g, c = _gold_copper_inputs()
    gap = F.compute_factor("gold_copper_gap", {"yield_10y": yld, "gold": g, "copper": c})
    assert gap.name == "gold_copper_gap"
    assert gap.attrs["coef_gold_bp_per_usd_oz"] == pytest.approx(-0.2)
    implied = F.compute_factor(
        "gold_copper_implied_rate", {"yield_10y": yld, "gold": g, "copper": c}
    )
    assert implied.iloc[0] == pytest.approx(3.35)
    # optional input and options
    new = monthly([100.0, 100.0, 100.0])
    old = monthly([50.0, 50.0, 50.0], start="1999-11-01")
    dollar = F.compute_factor("dollar", {"broad": new, "broad_old": old})
    assert dollar.attrs["scale_factor"] == pytest.approx(2.0)
    np.testing.assert_allclose(dollar.to_numpy(), [100.0, 100.0, 100.0, 100.0, 100.0])
    cpi = monthly([100.0] * 12 + [102.0])
    assert F.compute_factor("inflation", {"cpi": cpi}).iloc[-1] == pytest.approx(2.0)


def test_compute_factor_errors():
    # an unknown name is a user error, not a crash: a ConfigError (what the CLI prints as one
    # line) naming the bad key and listing every valid factor, raised `from None` so the
    # registry's KeyError is neither its cause nor shown as context in a --debug traceback
    with pytest.raises(ConfigError) as info:
        F.compute_factor("gold_price", {})
    known = (
        "bond_fx_divergence, ddri, ddri_market, deficit_12m_gdp, dollar, equity_in_gold, "
        "excess_deficit, gold_copper_gap, gold_copper_implied_rate, inflation, r_minus_g, "
        "rate_cut_expectations, real_gold_price, real_rate"
    )
    assert str(info.value) == f"unknown factor 'gold_price'; known factors: {known}"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    # an unhashable name (e.g. a list from a malformed config) takes the same path
    with pytest.raises(ConfigError, match=r"^unknown factor \['ddri'\]; known factors: ") as info:
        F.compute_factor(["ddri"], {})
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(ConfigError, match=r"'ddri' is missing input 'gdp'"):
        F.compute_factor(
            "ddri",
            {"debt": monthly([1.0]), "interest": monthly([1.0]), "surplus": monthly([1.0])},
        )
    with pytest.raises(ConfigError, match=r"'real_rate' is missing input 'tips'"):
        F.compute_factor("real_rate", {"tips": None, "nominal_10y": monthly([1.0])})
    with pytest.raises(ConfigError, match=r"no option 'windw'"):
        F.compute_factor("inflation", {"cpi": monthly([1.0])}, windw=3)
