"""Macro factor functions: the covariates of gold's pricing anchor (domain brief, section 2).

Every factor is a **pure function**: pandas Series in, pandas Series (or DataFrame) out, no file
I/O, no global state. Inputs are monthly series on a regular month-start ``DatetimeIndex``
(``2003-01-01``, ``2003-02-01``, ...), already aligned without look-ahead by the data layer;
quarterly and annual inputs (GDP, debt, interest, FYFSD) arrive as forward-filled monthly step
series. Multi-input factors outer-join their inputs on the date index, so the result covers the
union of the input dates and is NaN wherever a needed input is missing. Lags ("12 months
earlier") are calendar lags on that grid and trailing windows count months; the grid is checked
(:class:`regimes.errors.DataError` if an input is not on a regular monthly month-start grid).

Units are stated in each docstring. Rates and yields are in percent (``2.5`` = 2.5 %), spreads
in percentage points unless the name says basis points (``_bp``).

Configs name factors through :data:`FACTORS` (a registry of :class:`FactorDef`) and compute them
with :func:`compute_factor`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regimes.errors import ConfigError, DataError

__all__ = [
    "FACTORS",
    "FactorDef",
    "bond_fx_divergence",
    "compute_factor",
    "ddri",
    "ddri_components",
    "deficit_to_gdp",
    "dollar_index",
    "equity_in_gold",
    "excess_deficit",
    "gold_copper_gap",
    "gold_copper_implied_rate",
    "rate_cut_expectations",
    "real_gold_price",
    "real_rate",
    "rolling_12m_sum",
    "yoy_inflation",
    "zscore",
]


# ---------------------------------------------------------------------------------------------
# internal helpers
# ---------------------------------------------------------------------------------------------


def _check_series(x: Any, name: str) -> pd.Series:
    """Return ``x`` as float after checking it is a Series on a monthly month-start grid."""
    if not isinstance(x, pd.Series):
        raise DataError(f"factor input {name!r} must be a pandas Series, got {type(x).__name__}")
    if not isinstance(x.index, pd.DatetimeIndex):
        raise DataError(
            f"factor input {name!r} must have a DatetimeIndex of month-start dates, "
            f"got {type(x.index).__name__}"
        )
    _check_monthly_grid(x.index, name)
    return x.astype(float)


def _check_monthly_grid(index: pd.DatetimeIndex, name: str) -> None:
    """Raise DataError unless ``index`` is a sorted, gap-free sequence of month-start dates."""
    if len(index) == 0:
        return
    expected = pd.date_range(index[0], periods=len(index), freq="MS")
    if not index.equals(expected):
        raise DataError(
            f"factor input {name!r} must be on a regular monthly grid of month-start dates "
            f"(sorted, no gaps, no duplicates); reindex it with "
            f"pd.date_range(start, end, freq='MS') first"
        )


def _align(**series: pd.Series) -> pd.DataFrame:
    """Outer-join checked inputs on their dates; the union must itself be a regular monthly grid."""
    checked = {name: _check_series(s, name) for name, s in series.items()}
    frame = pd.concat(checked, axis=1, join="outer", sort=True)
    if len(frame):
        full = pd.date_range(frame.index[0], frame.index[-1], freq="MS")
        frame = frame.reindex(full)
    return frame


def _lag_months(x: pd.Series, months: int) -> pd.Series:
    """Value of ``x`` ``months`` calendar months earlier, on ``x``'s own index (NaN if absent)."""
    lagged = x.copy()
    lagged.index = x.index + pd.DateOffset(months=months)
    return lagged.reindex(x.index)


def _yoy_pct(x: pd.Series) -> pd.Series:
    """Year-on-year growth in percent: ``100 * (x_t / x_{t-12} - 1)``."""
    return 100.0 * (x / _lag_months(x, 12) - 1.0)


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """OLS with intercept. ``x`` is (n, k) without constant; returns (coefs incl. intercept, R²)."""
    design = np.column_stack([np.ones(len(y)), x])
    if len(y) <= design.shape[1]:
        raise DataError(
            f"regression needs more observations ({len(y)}) than coefficients ({design.shape[1]})"
        )
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise DataError("regressors are collinear (or constant) over the fitting sample")
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / sst if sst > 0 else float("nan")
    return beta, r2


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).date().isoformat()


# ---------------------------------------------------------------------------------------------
# generic transforms
# ---------------------------------------------------------------------------------------------


def zscore(x: pd.Series, window: int | None = None) -> pd.Series:
    """Standardise a series: ``(x_t - mean) / std`` (sample std, ddof = 1). Unitless.

    With ``window=None`` mean and std are over the full sample (uses the whole history: fine for
    display, a look-ahead inside a model). With ``window=w`` they are **trailing**: over the ``w``
    months ending at and including ``t`` (``x_{t-w+1} .. x_t``), NaN until ``w`` observations are
    available, so the value at ``t`` never uses data after ``t``.
    """
    if window is not None:
        x = _check_series(x, "x")
        if window < 2:
            raise ValueError(f"zscore window must be >= 2 months, got {window}")
        roll = x.rolling(window, min_periods=window)
        out = (x - roll.mean()) / roll.std(ddof=1)
    else:
        if not isinstance(x, pd.Series):
            raise DataError(f"zscore input must be a pandas Series, got {type(x).__name__}")
        out = (x - x.mean()) / x.std(ddof=1)
    return out.rename(x.name)


def rolling_12m_sum(monthly: pd.Series) -> pd.Series:
    """Trailing 12-month sum of a monthly flow: ``sum_{k=0..11} x_{t-k}`` (units of ``x``).

    Made for the Monthly Treasury Statement surplus(+)/deficit(-) MTSDS133FMS (millions USD per
    month, not seasonally adjusted): the 12-month sum removes the strong seasonality (tax months)
    and gives an annual flow comparable with annual-rate GDP. NaN until 12 months are available
    and wherever any of the 12 months is missing (no partial sums).
    """
    x = _check_series(monthly, "monthly")
    return x.rolling(12, min_periods=12).sum().rename(x.name)


# ---------------------------------------------------------------------------------------------
# inflation and rates
# ---------------------------------------------------------------------------------------------


def yoy_inflation(cpi: pd.Series) -> pd.Series:
    """Year-on-year inflation in percent: ``100 * (cpi_t / cpi_{t-12} - 1)``.

    ``cpi`` is a price index level (e.g. CPIAUCSL, 1982-84 = 100). NaN for the first 12 months and
    wherever the index is missing at ``t`` or ``t - 12`` (e.g. the missing 2025-10 CPI release).
    """
    x = _check_series(cpi, "cpi")
    return _yoy_pct(x).rename("inflation")


def real_rate(
    tips: pd.Series,
    nominal_10y: pd.Series,
    core_cpi: pd.Series,
    splice: str | pd.Timestamp = "2003-01-01",
) -> pd.Series:
    """US 10-year real interest rate in percent, spliced from two measures.

    - from ``splice`` on (inclusive): the 10-year TIPS yield ``tips`` (FRED DFII10/FII10, %);
    - before ``splice``: ex-post proxy ``nominal_10y_t - 100 * (core_cpi_t / core_cpi_{t-12} - 1)``,
      i.e. the 10-year nominal CMT yield (GS10, %) minus year-on-year core CPI inflation
      (CPILFESL, %).

    TIPS values before the splice date are ignored even if present (the TIPS market was thin in its
    first years, and the splice date should be a modelling choice, not a data accident). After the
    splice the result is NaN where ``tips`` is missing (no silent fallback to the proxy).

    ``result.attrs``: ``splice_date`` (ISO date), ``method`` (a description) and
    ``before_splice`` / ``after_splice`` (the measures used).
    """
    frame = _align(tips=tips, nominal_10y=nominal_10y, core_cpi=core_cpi)
    splice_ts = pd.Timestamp(splice)
    proxy = frame["nominal_10y"] - _yoy_pct(frame["core_cpi"])
    after = frame.index >= splice_ts
    out = proxy.where(~after, frame["tips"]).rename("real_rate")
    out.attrs = {
        "splice_date": _iso(splice_ts),
        "method": (
            "10y TIPS yield from splice_date (inclusive); before it, 10y nominal Treasury yield "
            "minus year-on-year core CPI inflation (percent)"
        ),
        "before_splice": "nominal_10y - yoy(core_cpi)",
        "after_splice": "tips",
        "units": "percent",
    }
    return out


def rate_cut_expectations(gs1: pd.Series, fedfunds: pd.Series) -> pd.Series:
    """Policy-rate change priced over the next year, proxy: ``gs1_t - fedfunds_t``.

    1-year Treasury CMT yield (GS1, %) minus the effective federal funds rate (FEDFUNDS, %), in
    percentage points. Negative means the market prices cuts over the next 12 months (no futures
    data in the snapshot; the 1y yield also carries a small term premium).
    """
    frame = _align(gs1=gs1, fedfunds=fedfunds)
    return (frame["gs1"] - frame["fedfunds"]).rename("rate_cut_expectations")


# ---------------------------------------------------------------------------------------------
# dollar
# ---------------------------------------------------------------------------------------------


def dollar_index(
    broad: pd.Series,
    broad_old: pd.Series | None = None,
    overlap: tuple[str | pd.Timestamp, str | pd.Timestamp] | None = None,
) -> pd.Series:
    """Broad trade-weighted US dollar index, extended back in time (index, Jan 2006 = 100).

    ``broad`` is FRED DTWEXBGS (nominal broad, goods and services, Jan 2006 = 100, from 2006).
    ``broad_old`` is the discontinued TWEXBMTH (broad, goods, Jan 1997 = 100, 1973-2019), which has
    a different base and basket, so it is rescaled to ``broad``'s level by the ratio of means over
    the overlap::

        scale = mean(broad over overlap) / mean(broad_old over overlap)
        dollar_t = broad_t            where broad_t is present
                 = scale * broad_old_t where broad_t is missing

    The overlap is every month where both are present (2006-01..2019-12 for the snapshot), or the
    ``overlap=(start, end)`` window if given (still restricted to months where both are present).
    A ratio of means keeps the level of the new index; it does not reconcile the two baskets'
    different dynamics, so the spliced series is one index only up to that approximation.

    ``result.attrs``: ``scale_factor``, ``overlap_start``, ``overlap_end``, ``overlap_months``
    (``scale_factor`` is None without ``broad_old``).
    """
    if broad_old is None:
        new = _check_series(broad, "broad")
        out = new.rename("dollar")
        out.attrs = {
            "scale_factor": None,
            "overlap_start": None,
            "overlap_end": None,
            "overlap_months": 0,
            "units": "index, Jan 2006 = 100",
        }
        return out
    frame = _align(broad=broad, broad_old=broad_old)
    both = frame["broad"].notna() & frame["broad_old"].notna()
    if overlap is not None:
        lo, hi = pd.Timestamp(overlap[0]), pd.Timestamp(overlap[1])
        both &= (frame.index >= lo) & (frame.index <= hi)
    if not both.any():
        raise DataError(
            "dollar_index: 'broad' and 'broad_old' have no month in common, so the old index "
            "cannot be rescaled; pass overlapping series (DTWEXBGS and TWEXBMTH overlap 2006-2019)"
        )
    scale = float(frame.loc[both, "broad"].mean() / frame.loc[both, "broad_old"].mean())
    out = frame["broad"].fillna(scale * frame["broad_old"]).rename("dollar")
    dates = frame.index[both]
    out.attrs = {
        "scale_factor": scale,
        "overlap_start": _iso(dates[0]),
        "overlap_end": _iso(dates[-1]),
        "overlap_months": int(both.sum()),
        "units": "index, Jan 2006 = 100",
    }
    return out


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
    frame = _align(debt=debt, gdp=gdp, interest=interest, surplus=surplus)
    debt_bn = frame["debt"] / 1000.0
    surplus_bn = frame["surplus"] / 1000.0
    gdp_bn = frame["gdp"]
    d = debt_bn / gdp_bn
    r = frame["interest"] / debt_bn
    g = gdp_bn / _lag_months(gdp_bn, 12) - 1.0
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
    frame = _align(surplus_12m_millions=surplus_12m_millions, gdp_billions=gdp_billions)
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
    frame = _align(deficit_gdp=deficit_gdp, unemployment=unemployment, indpro=indpro)
    frame["indpro_yoy"] = _yoy_pct(frame["indpro"])
    cols = ["deficit_gdp", *_CYCLE_REGRESSORS]
    ok = frame[cols].notna().all(axis=1).to_numpy()
    y_all = frame["deficit_gdp"].to_numpy()
    x_all = frame[list(_CYCLE_REGRESSORS)].to_numpy()
    resid = np.full(len(frame), np.nan)

    if not expanding:
        beta, r2 = _ols(y_all[ok], x_all[ok])
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
            beta, r2 = _ols(y_all[sel], x_all[sel])
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
    frame = _align(yield_10y=yield_10y, dollar=dollar)
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
    frame = _align(yield_10y=yield_10y, gold=gold, copper=copper)
    ok = frame.notna().all(axis=1)
    if start is not None:
        ok &= frame.index >= pd.Timestamp(start)
    if end is not None:
        ok &= frame.index <= pd.Timestamp(end)
    fit = frame[ok]
    beta, r2 = _ols(fit["yield_10y"].to_numpy(), fit[["gold", "copper"]].to_numpy())
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
        "fit_start": _iso(fit.index[0]),
        "fit_end": _iso(fit.index[-1]),
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


def _gold_copper_implied_only(
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
    frame = _align(gold=gold, cpi=cpi)
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
    frame = _align(sp500=sp500, gold=gold)
    return (frame["sp500"] / frame["gold"]).rename("equity_in_gold")


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorDef:
    """A named factor that configs can refer to.

    ``inputs`` are the function's required parameter names, in order (the caller maps each to a
    catalog series id); ``optional`` are series parameters that may be omitted. ``fn`` returns a
    Series.
    """

    name: str
    description: str
    units: str
    inputs: tuple[str, ...]
    fn: Callable[..., pd.Series]
    optional: tuple[str, ...] = ()


FACTORS: dict[str, FactorDef] = {
    f.name: f
    for f in (
        FactorDef(
            "real_rate",
            "10y TIPS yield from 2003, before that 10y nominal yield minus y/y core CPI inflation",
            "percent",
            ("tips", "nominal_10y", "core_cpi"),
            real_rate,
        ),
        FactorDef(
            "dollar",
            "broad trade-weighted dollar (DTWEXBGS), extended back with rescaled TWEXBMTH",
            "index, Jan 2006 = 100",
            ("broad",),
            dollar_index,
            optional=("broad_old",),
        ),
        FactorDef(
            "ddri",
            "debt divergence risk index d*(r-g) - pb",
            "percent of GDP per year",
            ("debt", "gdp", "interest", "surplus"),
            ddri,
        ),
        FactorDef(
            "excess_deficit",
            "deficit/GDP minus its business-cycle fit (unemployment, y/y industrial production), "
            "2-year moving average",
            "percent of GDP",
            ("deficit_gdp", "unemployment", "indpro"),
            excess_deficit,
        ),
        FactorDef(
            "bond_fx_divergence",
            "trailing z-score of the 10y yield minus that of the log dollar (positive: yields up, "
            "dollar down)",
            "z-score units",
            ("yield_10y", "dollar"),
            bond_fx_divergence,
        ),
        FactorDef(
            "gold_copper_gap",
            "10y yield minus the yield implied by gold and copper prices (OLS)",
            "basis points",
            ("yield_10y", "gold", "copper"),
            gold_copper_gap,
        ),
        FactorDef(
            "gold_copper_implied_rate",
            "10y yield implied by gold and copper prices (OLS fitted values)",
            "percent",
            ("yield_10y", "gold", "copper"),
            _gold_copper_implied_only,
        ),
        FactorDef(
            "real_gold_price",
            "gold price deflated by CPI, index 1930 = 100 (Jastram)",
            "index, 1930 = 100",
            ("gold", "cpi"),
            real_gold_price,
        ),
        FactorDef(
            "equity_in_gold",
            "S&P 500 divided by the gold price",
            "troy oz of gold per index unit",
            ("sp500", "gold"),
            equity_in_gold,
        ),
        FactorDef(
            "rate_cut_expectations",
            "1y Treasury yield minus fed funds rate (negative: cuts priced)",
            "percentage points",
            ("gs1", "fedfunds"),
            rate_cut_expectations,
        ),
        FactorDef(
            "inflation",
            "year-on-year CPI inflation",
            "percent",
            ("cpi",),
            yoy_inflation,
        ),
    )
}


def compute_factor(name: str, inputs: Mapping[str, pd.Series], **options: Any) -> pd.Series:
    """Compute the registered factor ``name`` from ``inputs`` (parameter name → Series).

    Every name in ``FACTORS[name].inputs`` must be given (a ConfigError names the factor and the
    missing input otherwise); optional inputs are passed when present; other keys are ignored.
    ``options`` are passed to the factor function as keywords (e.g. ``window=36``). The result is
    a Series named ``name``; its ``attrs`` carry the function's attrs plus ``factor`` and
    ``units``.
    """
    try:
        fdef = FACTORS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown factor {name!r}; known factors: {', '.join(sorted(FACTORS))}"
        ) from None
    missing = [k for k in fdef.inputs if inputs.get(k) is None]
    if missing:
        raise ConfigError(
            f"factor {name!r} is missing input {missing[0]!r}"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
            + f"; it needs: {', '.join(fdef.inputs)}"
        )
    kwargs = {k: inputs[k] for k in fdef.inputs}
    kwargs.update({k: inputs[k] for k in fdef.optional if inputs.get(k) is not None})
    params = inspect.signature(fdef.fn).parameters
    series_params = set(fdef.inputs) | set(fdef.optional)
    bad = sorted(k for k in options if k not in params or k in series_params)
    if bad:
        allowed = [k for k in params if k not in series_params]
        raise ConfigError(
            f"factor {name!r} has no option {bad[0]!r}; its options are: "
            f"{', '.join(allowed) or '(none)'}"
        )
    result = fdef.fn(**kwargs, **options)
    out = result.rename(name)
    out.attrs = {**result.attrs, "factor": name, "units": fdef.units}
    return out
