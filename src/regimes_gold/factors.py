"""The gold anchor study's factors: the fiscal-risk measures and market ratios of the source
research (domain brief, section 2), each a pure function with its formula and units in its
docstring, registered with its series recipe in :data:`FACTORS` (the ``regimes.factors``
entry point of this package).

The conventions are the core's (:mod:`regimes.factors`): monthly month-start inputs, outer-joined
on their dates, NaN where an input is missing; quarterly and annual inputs (GDP, debt, interest,
FYFSD) arrive as forward-filled monthly step series.

A new factor is one function here plus one :class:`~regimes.factors.FactorDef` in
:data:`FACTORS` naming the catalog series (or other factors) each input comes from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from regimes.errors import DataError
from regimes.factors import (
    FactorDef,
    SeriesLoader,
    align_inputs,
    factor_input,
    iso_date,
    lag_months,
    ols_fit,
    rolling_12m_sum,
    yoy_pct,
    zscore,
)

__all__ = [
    "FACTORS",
    "bond_fx_divergence",
    "ddri",
    "ddri_components",
    "ddri_market",
    "deficit_to_gdp",
    "equity_in_gold",
    "excess_deficit",
    "gold_copper_gap",
    "gold_copper_implied_only",
    "gold_copper_implied_rate",
    "mts_12m",
    "r_minus_g",
    "real_gold_price",
]


# ---------------------------------------------------------------------------------------------
# fiscal factors
# ---------------------------------------------------------------------------------------------


def ddri_components(
    debt: pd.Series, gdp: pd.Series, interest: pd.Series, surplus: pd.Series
) -> pd.DataFrame:
    """Components of the debt divergence risk index (see :func:`ddri`) as fractions per year.

    Columns ``d``, ``r``, ``g``, ``pb`` (unitless ratios, per year) and ``ddri`` (percent of GDP
    per year). Unit conversions:

    - ``debt``: federal debt, **millions** USD (GFDEBTN / FYGFDPUN) → billions: ``debt / 1000``;
    - ``gdp``: nominal GDP, **billions** USD, seasonally adjusted annual rate (GDP);
    - ``interest``: federal interest payments, **billions** USD SAAR (A091RC1Q027SBEA);
    - ``surplus``: federal surplus(+)/deficit(-) over a year, **millions** USD (FYFSD, or a
      12-month sum of MTSDS133FMS) → billions: ``surplus / 1000``.

    Then ``d = (debt/1000) / gdp``; ``r = interest / (debt/1000)`` (effective interest rate);
    ``g = gdp_t / gdp_{t-12} - 1`` (nominal growth, year on year); ``pb = (surplus/1000 +
    interest) / gdp`` (primary balance = overall balance plus interest paid);
    ``ddri = 100 * (d * (r - g) - pb)``.
    """
    frame = align_inputs(debt=debt, gdp=gdp, interest=interest, surplus=surplus)
    debt_bn = frame["debt"] / 1000.0
    surplus_bn = frame["surplus"] / 1000.0
    gdp_bn = frame["gdp"]
    d = debt_bn / gdp_bn
    r = frame["interest"] / debt_bn
    g = gdp_bn / lag_months(gdp_bn, 12) - 1.0
    pb = (surplus_bn + frame["interest"]) / gdp_bn
    out = pd.DataFrame({"d": d, "r": r, "g": g, "pb": pb})
    out["ddri"] = 100.0 * (out["d"] * (out["r"] - out["g"]) - out["pb"])
    return out


def ddri(debt: pd.Series, gdp: pd.Series, interest: pd.Series, surplus: pd.Series) -> pd.Series:
    """Debt divergence risk index, percent of GDP per year: ``DDRI = 100 * (d * (r - g) - pb)``.

    The drift of the debt-to-GDP ratio implied by the debt dynamics identity
    ``Δd ≈ d (r - g) - pb``: positive means the debt ratio diverges (rises) at current rates,
    growth and primary balance; negative means it converges. (The exact identity divides
    ``d (r - g)`` by ``1 + g``; the articles use the linear form and so do we.)

    - ``d = (debt / 1000) / gdp``: debt in **millions** USD converted to billions, over nominal
      GDP in **billions** USD SAAR → ratio (1.0 = 100 % of GDP);
    - ``r = interest / (debt / 1000)``: effective interest rate, interest payments in **billions**
      USD SAAR over debt in billions → fraction per year;
    - ``g = gdp_t / gdp_{t-12} - 1``: nominal GDP growth, year on year, fraction;
    - ``pb = (surplus / 1000 + interest) / gdp``: primary balance over GDP, with ``surplus`` the
      annual federal surplus(+)/deficit(-) in **millions** USD (e.g. FYFSD) converted to billions;
      primary balance = overall balance + interest paid.

    Example: debt 1,000,000 mn, GDP 1,000 bn → d = 1.0. See :func:`ddri_components` for the parts.
    """
    return ddri_components(debt, gdp, interest, surplus)["ddri"].rename("ddri")


def deficit_to_gdp(surplus_12m_millions: pd.Series, gdp_billions: pd.Series) -> pd.Series:
    """Federal deficit as percent of GDP (deficit positive).

    ``deficit_gdp_t = -100 * (surplus_12m_t / 1000) / gdp_t``, with ``surplus_12m`` an annual flow
    of the federal surplus(+)/deficit(-) in **millions** USD (e.g. :func:`rolling_12m_sum` of
    MTSDS133FMS, or FYFSD), divided by 1000 to billions, and ``gdp`` nominal GDP in **billions**
    USD SAAR. A deficit of 1,500,000 mn with GDP 30,000 bn gives 5.0.
    """
    frame = align_inputs(surplus_12m_millions=surplus_12m_millions, gdp_billions=gdp_billions)
    return (-100.0 * (frame["surplus_12m_millions"] / 1000.0) / frame["gdp_billions"]).rename(
        "deficit_gdp"
    )


_CYCLE_REGRESSORS = ("unemployment", "indpro_yoy")


def excess_deficit(
    deficit_gdp: pd.Series,
    unemployment: pd.Series,
    indpro: pd.Series,
    window: int = 24,
    expanding: bool = False,
    min_obs: int = 60,
) -> pd.Series:
    """Deficit/GDP not explained by the business cycle, smoothed; percent of GDP.

    Cycle regression (OLS with intercept)::

        deficit_gdp_t = a + b * unemployment_t + c * indpro_yoy_t + e_t

    with ``deficit_gdp`` in percent of GDP (deficit positive, see :func:`deficit_to_gdp`),
    ``unemployment`` the unemployment rate (UNRATE, %) and ``indpro_yoy = 100 * (indpro_t /
    indpro_{t-12} - 1)`` the year-on-year growth of industrial production (INDPRO, %). The articles
    use an ISM PMI; the snapshot has none, so y/y industrial production stands in for the
    activity side. The residual ``e_t`` (the discretionary part: what automatic stabilisers do not
    explain) is then smoothed with a trailing ``window``-month moving average (2 years by
    default; NaN until ``window`` residuals are available).

    By default (``expanding=False``) the regression is fitted once on the **full common sample**:
    the cycle adjustment at date ``t`` then uses coefficients estimated with later data, a mild
    look-ahead. With ``expanding=True`` the residual at ``t`` uses coefficients fitted on data up
    to and including ``t`` only, from the first date with ``min_obs`` (default 60) common months;
    earlier dates are NaN. Changing a future value then never changes a past output.

    ``result.attrs``: ``coefficients`` (``intercept``, ``unemployment``, ``indpro_yoy``; for
    ``expanding=True`` those of the last fit), ``r2`` (same fit), ``nobs``, ``fit``
    (``"full-sample"`` or ``"expanding"``), ``window``.
    """
    if window < 1:
        raise ValueError(f"excess_deficit window must be >= 1 month, got {window}")
    frame = align_inputs(deficit_gdp=deficit_gdp, unemployment=unemployment, indpro=indpro)
    frame["indpro_yoy"] = yoy_pct(frame["indpro"])
    cols = ["deficit_gdp", *_CYCLE_REGRESSORS]
    ok = frame[cols].notna().all(axis=1).to_numpy()
    y_all = frame["deficit_gdp"].to_numpy()
    x_all = frame[list(_CYCLE_REGRESSORS)].to_numpy()
    resid = np.full(len(frame), np.nan)

    if not expanding:
        beta, r2 = ols_fit(y_all[ok], x_all[ok])
        resid[ok] = y_all[ok] - (beta[0] + x_all[ok] @ beta[1:])
        nobs = int(ok.sum())
        fit = "full-sample"
    else:
        if min_obs < len(_CYCLE_REGRESSORS) + 2:
            raise ValueError(f"excess_deficit min_obs must be >= 4, got {min_obs}")
        beta, r2, nobs = None, float("nan"), 0
        count = np.cumsum(ok)
        for i in np.flatnonzero(ok & (count >= min_obs)):
            sel = ok.copy()
            sel[i + 1 :] = False
            beta, r2 = ols_fit(y_all[sel], x_all[sel])
            resid[i] = y_all[i] - (beta[0] + x_all[i] @ beta[1:])
            nobs = int(sel.sum())
        fit = "expanding"

    out = (
        pd.Series(resid, index=frame.index)
        .rolling(window, min_periods=window)
        .mean()
        .rename("excess_deficit")
    )
    coefs = (
        None
        if beta is None
        else dict(zip(("intercept", *_CYCLE_REGRESSORS), map(float, beta), strict=True))
    )
    out.attrs = {
        "coefficients": coefs,
        "r2": float(r2),
        "nobs": nobs,
        "fit": fit,
        "window": int(window),
        "units": "percent of GDP",
    }
    return out


# ---------------------------------------------------------------------------------------------
# market-based factors
# ---------------------------------------------------------------------------------------------


def bond_fx_divergence(
    yield_10y: pd.Series,
    dollar: pd.Series,
    window: int = 60,
    method: str = "zdiff",
    log_dollar: bool = True,
) -> pd.Series:
    """Bond–FX divergence: Treasury-yield moves not matched by the dollar; unitless (z units).

    Normally higher US yields attract capital and lift the dollar. Yields **up** while the dollar
    goes **down** signals weak demand for Treasuries (a fiscal/credit premium); the factor is
    positive then. Everything uses trailing ``window``-month windows ending at ``t`` (no
    look-ahead); NaN for the first ``window - 1`` months. ``dollar`` is taken in logs by default
    (``log_dollar=True``) so that equal percentage moves count equally at any index level.

    - ``method="zdiff"`` (default): ``z(yield_10y)_t - z(log dollar)_t``, each a trailing z-score
      (:func:`zscore` with ``window``). Simple and symmetric: it is large when the yield is high
      relative to its recent history while the dollar is low relative to its own.
    - ``method="residual"``: within the window ending at ``t``, standardise both series over the
      window and regress dollar-z on yield-z (OLS); the factor is minus the residual at ``t``.
      Since standardised series have mean 0 and the slope is their correlation ``rho_t``, this is
      ``rho_t * z(yield)_t - z(log dollar)_t``. It removes only the part of the dollar move that
      the window's yield–dollar co-movement predicts (equals ``zdiff`` when ``rho_t = 1``).
      Sign flipped so that positive means the same as for ``zdiff``.
    """
    if window < 3:
        raise ValueError(f"bond_fx_divergence window must be >= 3 months, got {window}")
    frame = align_inputs(yield_10y=yield_10y, dollar=dollar)
    d = frame["dollar"]
    if log_dollar:
        if (d <= 0).any():
            raise DataError("bond_fx_divergence: the dollar index must be positive to take logs")
        d = np.log(d)
    zy = zscore(frame["yield_10y"], window)
    zd = zscore(d.rename("dollar"), window)
    if method == "zdiff":
        out = zy - zd
    elif method == "residual":
        rho = frame["yield_10y"].rolling(window, min_periods=window).corr(d)
        out = rho * zy - zd
    else:
        raise ValueError(f"bond_fx_divergence method must be 'zdiff' or 'residual', got {method!r}")
    out = out.rename("bond_fx_divergence")
    out.attrs = {
        "method": method,
        "window": int(window),
        "log_dollar": bool(log_dollar),
        "units": "z-score units",
    }
    return out


def gold_copper_implied_rate(
    yield_10y: pd.Series,
    gold: pd.Series,
    copper: pd.Series,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """10-year yield implied by gold and copper prices, and the gap of the actual yield to it.

    OLS over the months in ``[start, end]`` (default: every month where all three are present)::

        yield_10y_t = a + b_gold * gold_t + b_copper * copper_t + e_t

    with ``yield_10y`` the 10y nominal Treasury yield (%), ``gold`` in USD per troy oz (a proxy
    for the real-rate/TIPS side) and ``copper`` in USD per metric ton (a proxy for inflation
    expectations). Columns of the result (over the full date range of the inputs):

    - ``implied_rate``: fitted values ``a + b_gold * gold_t + b_copper * copper_t`` (%), also
      outside the fitting window (out of sample);
    - ``gap_bp = 100 * (yield_10y - implied_rate)``, basis points (positive: actual above implied).

    ``attrs``: ``intercept_pct``, ``coef_gold_bp_per_usd_oz = 100 * b_gold`` and
    ``coef_copper_bp_per_usd_t = 100 * b_copper`` (basis points of yield per $1; the articles
    report about -0.2 and +0.0225), ``r2``, ``nobs``, ``fit_start``, ``fit_end``.
    """
    frame = align_inputs(yield_10y=yield_10y, gold=gold, copper=copper)
    ok = frame.notna().all(axis=1)
    if start is not None:
        ok &= frame.index >= pd.Timestamp(start)
    if end is not None:
        ok &= frame.index <= pd.Timestamp(end)
    fit = frame[ok]
    beta, r2 = ols_fit(fit["yield_10y"].to_numpy(), fit[["gold", "copper"]].to_numpy())
    implied = beta[0] + beta[1] * frame["gold"] + beta[2] * frame["copper"]
    out = pd.DataFrame(
        {"implied_rate": implied, "gap_bp": 100.0 * (frame["yield_10y"] - implied)},
        index=frame.index,
    )
    out.attrs = {
        "intercept_pct": float(beta[0]),
        "coef_gold_bp_per_usd_oz": float(100.0 * beta[1]),
        "coef_copper_bp_per_usd_t": float(100.0 * beta[2]),
        "r2": float(r2),
        "nobs": len(fit),
        "fit_start": iso_date(fit.index[0]),
        "fit_end": iso_date(fit.index[-1]),
    }
    return out


def gold_copper_gap(
    yield_10y: pd.Series,
    gold: pd.Series,
    copper: pd.Series,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> pd.Series:
    """Gap of the 10y yield to its gold–copper implied rate, basis points.

    The ``gap_bp`` column of :func:`gold_copper_implied_rate` (same arguments), with the
    regression's attrs.
    """
    res = gold_copper_implied_rate(yield_10y, gold, copper, start=start, end=end)
    out = res["gap_bp"].rename("gold_copper_gap")
    out.attrs = dict(res.attrs)
    return out


def gold_copper_implied_only(
    yield_10y: pd.Series,
    gold: pd.Series,
    copper: pd.Series,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> pd.Series:
    """The ``implied_rate`` column of :func:`gold_copper_implied_rate` (%), with its attrs."""
    res = gold_copper_implied_rate(yield_10y, gold, copper, start=start, end=end)
    out = res["implied_rate"].rename("gold_copper_implied_rate")
    out.attrs = dict(res.attrs)
    return out


def real_gold_price(gold: pd.Series, cpi: pd.Series, base_year: int = 1930) -> pd.Series:
    """Real gold price index, ``base_year`` = 100 (Jastram's method); unitless index.

    ``real_t = gold_t / cpi_t``; ``index_t = 100 * real_t / mean(real_s for s in base_year)``,
    with ``gold`` in USD per troy oz (the long series back to 1833) and ``cpi`` a consumer price
    index (Shiller's CPI-U from 1871; its base does not matter, it cancels). The mean is over the
    months of ``base_year`` where both are present, so the index averages exactly 100 there. The
    result covers the union of the dates and is NaN where either input is missing (from 1871 with
    Shiller's CPI).
    """
    frame = align_inputs(gold=gold, cpi=cpi)
    real = frame["gold"] / frame["cpi"]
    base = real[(frame.index.year == base_year) & real.notna()]
    if base.empty:
        raise DataError(
            f"real_gold_price: no month of base year {base_year} has both gold and cpi; "
            "choose a base_year inside the common sample"
        )
    out = (100.0 * real / base.mean()).rename("real_gold_price")
    out.attrs = {"base_year": int(base_year), "units": f"index, {base_year} = 100"}
    return out


def equity_in_gold(sp500: pd.Series, gold: pd.Series) -> pd.Series:
    """Equities priced in gold: ``sp500_t / gold_t``, troy ounces of gold per S&P 500 index unit.

    ``sp500`` is the S&P 500 composite level (index points, treated as USD), ``gold`` in USD per
    troy oz.
    """
    frame = align_inputs(sp500=sp500, gold=gold)
    return (frame["sp500"] / frame["gold"]).rename("equity_in_gold")


# ---------------------------------------------------------------------------------------------
# registry (read by the core through the `regimes.factors` entry point)
# ---------------------------------------------------------------------------------------------


def ddri_market(
    debt: pd.Series,
    gdp: pd.Series,
    yield_10y: pd.Series,
    surplus_12m: pd.Series,
    interest: pd.Series,
) -> pd.Series:
    """DDRI as a market prices it each month, percent of GDP per year: ``100 * (d * (r - g) -
    pb)`` with ``r`` the 10-year Treasury yield (what new debt costs, percent → fraction) instead
    of the effective rate on the stock of debt, which lags market rates by years (and so made
    :func:`ddri` *fall* after 2022 while market rates rose), and ``pb`` from the 12-month sum of
    the Monthly Treasury Statement balance (``surplus_12m``, millions USD) instead of the annual
    fiscal-year balance, so it moves every month. ``d``, ``g`` and the interest added back to the
    balance are as in :func:`ddri_components` (debt millions USD, GDP and interest billions USD
    SAAR)."""
    frame = align_inputs(
        debt=debt, gdp=gdp, yield_10y=yield_10y, surplus_12m=surplus_12m, interest=interest
    )
    gdp_bn = frame["gdp"]
    d = frame["debt"] / 1000.0 / gdp_bn
    g = gdp_bn / lag_months(gdp_bn, 12) - 1.0
    pb = (frame["surplus_12m"] / 1000.0 + frame["interest"]) / gdp_bn
    return (100.0 * (d * (frame["yield_10y"] / 100.0 - g) - pb)).rename("ddri_market")


def r_minus_g(yield_10y: pd.Series, gdp: pd.Series) -> pd.Series:
    """The market's r − g, percentage points: the 10-year Treasury yield minus nominal GDP
    growth year on year (``100 * (gdp_t / gdp_{t-12} - 1)``). Positive: debt costs more than the
    economy grows, so a primary balance of zero lets the debt ratio rise."""
    frame = align_inputs(yield_10y=yield_10y, gdp=gdp)
    growth = 100.0 * (frame["gdp"] / lag_months(frame["gdp"], 12) - 1.0)
    return (frame["yield_10y"] - growth).rename("r_minus_g")


def mts_12m(load: SeriesLoader) -> pd.Series:
    """The federal balance over the last 12 months from the Monthly Treasury Statement
    (MTSDS133FMS, millions USD; surplus positive)."""
    return rolling_12m_sum(load("MTSDS133FMS"))


def fiscal_deficit_gdp(load: SeriesLoader) -> pd.Series:
    """Federal deficit in % of GDP from the fiscal-year balance (FYFSD, 1970+) and nominal GDP."""
    return deficit_to_gdp(load("FYFSD"), load("GDP"))


KNOWN_QUARTERLY = (
    "month t: debt, GDP, interest and the fiscal-year balance of the last period published by then "
    "(quarters about a month after their end; the fiscal-year balance once a year)"
)
KNOWN_MARKET = (
    "month t: the 10-year yield of t (known at its end) and the Treasury balance of the 12 months "
    "to t (published about eight business days after t); debt, GDP and interest of the last "
    "quarter published by then (about a month after each quarter)"
)

FACTORS: tuple[FactorDef, ...] = (
    FactorDef(
        "ddri_market",
        "debt divergence risk index priced monthly: d*(r-g) - pb with the 10-year yield as r and "
        "the 12-month Treasury balance as pb",
        "percent of GDP per year",
        ddri_market,
        {
            "debt": "FYGFDPUN",
            "gdp": "GDP",
            "yield_10y": "GS10",
            "surplus_12m": mts_12m,
            "interest": "A091RC1Q027SBEA",
        },
        known_at=KNOWN_MARKET,
    ),
    FactorDef(
        "deficit_12m_gdp",
        "federal deficit over the last 12 months (Monthly Treasury Statement), percent of GDP",
        "percent of GDP",
        deficit_to_gdp,
        {"surplus_12m_millions": mts_12m, "gdp_billions": "GDP"},
        known_at=KNOWN_MARKET,
    ),
    FactorDef(
        "r_minus_g",
        "10-year Treasury yield minus nominal GDP growth year on year",
        "percentage points",
        r_minus_g,
        {"yield_10y": "GS10", "gdp": "GDP"},
        known_at="month t: the 10-year yield of t; GDP of the last quarter published by then",
    ),
    FactorDef(
        "ddri",
        "debt divergence risk index d*(r-g) - pb",
        "percent of GDP per year",
        ddri,
        {"debt": "FYGFDPUN", "gdp": "GDP", "interest": "A091RC1Q027SBEA", "surplus": "FYFSD"},
        known_at=KNOWN_QUARTERLY,
    ),
    FactorDef(
        "excess_deficit",
        "deficit/GDP minus its business-cycle fit (unemployment, y/y industrial production), "
        "2-year moving average",
        "percent of GDP",
        excess_deficit,
        {"deficit_gdp": fiscal_deficit_gdp, "unemployment": "UNRATE", "indpro": "INDPRO"},
    ),
    FactorDef(
        "bond_fx_divergence",
        "trailing z-score of the 10y yield minus that of the log dollar (positive: yields up, "
        "dollar down)",
        "z-score units",
        bond_fx_divergence,
        {"yield_10y": "GS10", "dollar": factor_input("dollar")},
    ),
    FactorDef(
        "gold_copper_gap",
        "10y yield minus the yield implied by gold and copper prices (OLS)",
        "basis points",
        gold_copper_gap,
        {"yield_10y": "GS10", "gold": "GOLD", "copper": "COPPER"},
    ),
    FactorDef(
        "gold_copper_implied_rate",
        "10y yield implied by gold and copper prices (OLS fitted values)",
        "percent",
        gold_copper_implied_only,
        {"yield_10y": "GS10", "gold": "GOLD", "copper": "COPPER"},
    ),
    FactorDef(
        "real_gold_price",
        "gold price deflated by CPI, index 1930 = 100 (Jastram)",
        "index, 1930 = 100",
        real_gold_price,
        {"gold": "GOLD_LONG", "cpi": "SHILLER_CPI"},
    ),
    FactorDef(
        "equity_in_gold",
        "S&P 500 divided by the gold price",
        "troy oz of gold per index unit",
        equity_in_gold,
        {"sp500": "SP500", "gold": "GOLD"},
    ),
)
