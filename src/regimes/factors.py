"""Factors: named covariates computed from catalog series by a recipe, and the generic macro
transforms they are built from.

Every factor function is **pure**: pandas Series in, pandas Series (or DataFrame) out, no file
I/O, no global state. Inputs are monthly series on a regular month-start ``DatetimeIndex``
(``2003-01-01``, ``2003-02-01``, ...), already aligned without look-ahead by the data layer;
quarterly and annual inputs (GDP, debt) arrive as forward-filled monthly step series.
Multi-input factors outer-join their inputs on the date index (:func:`align_inputs`), so the
result covers the union of the input dates and is NaN wherever a needed input is missing. Lags
("12 months earlier") are calendar lags on that grid and trailing windows count months; the grid
is checked (:class:`regimes.errors.DataError` if an input is not on a regular monthly
month-start grid).

Units are stated in each docstring. Rates and yields are in percent (``2.5`` = 2.5 %), spreads
in percentage points unless the name says basis points (``_bp``).

Configs name factors through :data:`FACTORS`: a registry of :class:`FactorDef`, each carrying
its function and its recipe (where each input comes from). The core holds generic US macro
factors (the real rate, the dollar, inflation, rate-cut expectations); an application adds its
own through the ``regimes.factors`` entry-point group (:mod:`regimes.plugins`). A factor is
computed from the catalog with :func:`factor_series`, from given inputs with
:func:`compute_factor`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regimes import plugins
from regimes.errors import ConfigError, DataError

__all__ = [
    "FACTORS",
    "FactorDef",
    "SeriesLoader",
    "align_inputs",
    "check_monthly",
    "compute_factor",
    "dollar_index",
    "factor_input",
    "factor_series",
    "iso_date",
    "lag_months",
    "ols_fit",
    "rate_cut_expectations",
    "real_rate",
    "rolling_12m_sum",
    "yoy_inflation",
    "yoy_pct",
    "zscore",
]

# a loader of catalog series by id (`regimes.dataset.make_loader`): what a recipe reads from
SeriesLoader = Callable[[str], pd.Series]
# where one input of a factor comes from: a catalog series id, or a function of the loader (an
# input computed from several series, or another factor: `factor_input`)
Source = str | Callable[[SeriesLoader], pd.Series]


# ---------------------------------------------------------------------------------------------
# helpers for factor functions (a plugin's too)
# ---------------------------------------------------------------------------------------------


def check_monthly(x: Any, name: str) -> pd.Series:
    """``x`` as float, checked to be a Series on a monthly month-start grid (a DataError naming
    the input ``name`` otherwise)."""
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


def align_inputs(**series: pd.Series) -> pd.DataFrame:
    """Outer-join checked inputs on their dates, on one regular monthly grid over their union
    (one column per keyword)."""
    checked = {name: check_monthly(s, name) for name, s in series.items()}
    frame = pd.concat(checked, axis=1, join="outer", sort=True)
    if len(frame):
        full = pd.date_range(frame.index[0], frame.index[-1], freq="MS")
        frame = frame.reindex(full)
    return frame


def lag_months(x: pd.Series, months: int) -> pd.Series:
    """Value of ``x`` ``months`` calendar months earlier, on ``x``'s own index (NaN if absent)."""
    lagged = x.copy()
    lagged.index = x.index + pd.DateOffset(months=months)
    return lagged.reindex(x.index)


def yoy_pct(x: pd.Series) -> pd.Series:
    """Year-on-year growth in percent: ``100 * (x_t / x_{t-12} - 1)``."""
    return 100.0 * (x / lag_months(x, 12) - 1.0)


def ols_fit(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """OLS with intercept. ``x`` is (n, k) without constant; returns (coefs incl. intercept, R²);
    a DataError when there are too few rows or the regressors are collinear."""
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


def iso_date(ts: pd.Timestamp) -> str:
    """A date as YYYY-MM-DD (for attrs)."""
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
        x = check_monthly(x, "x")
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
    x = check_monthly(monthly, "monthly")
    return x.rolling(12, min_periods=12).sum().rename(x.name)


# ---------------------------------------------------------------------------------------------
# inflation and rates
# ---------------------------------------------------------------------------------------------


def yoy_inflation(cpi: pd.Series) -> pd.Series:
    """Year-on-year inflation in percent: ``100 * (cpi_t / cpi_{t-12} - 1)``.

    ``cpi`` is a price index level (e.g. CPIAUCSL, 1982-84 = 100). NaN for the first 12 months and
    wherever the index is missing at ``t`` or ``t - 12`` (e.g. the missing 2025-10 CPI release).
    """
    x = check_monthly(cpi, "cpi")
    return yoy_pct(x).rename("inflation")


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
    frame = align_inputs(tips=tips, nominal_10y=nominal_10y, core_cpi=core_cpi)
    splice_ts = pd.Timestamp(splice)
    proxy = frame["nominal_10y"] - yoy_pct(frame["core_cpi"])
    after = frame.index >= splice_ts
    out = proxy.where(~after, frame["tips"]).rename("real_rate")
    out.attrs = {
        "splice_date": iso_date(splice_ts),
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
    frame = align_inputs(gs1=gs1, fedfunds=fedfunds)
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
        new = check_monthly(broad, "broad")
        out = new.rename("dollar")
        out.attrs = {
            "scale_factor": None,
            "overlap_start": None,
            "overlap_end": None,
            "overlap_months": 0,
            "units": "index, Jan 2006 = 100",
        }
        return out
    frame = align_inputs(broad=broad, broad_old=broad_old)
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
        "overlap_start": iso_date(dates[0]),
        "overlap_end": iso_date(dates[-1]),
        "overlap_months": int(both.sum()),
        "units": "index, Jan 2006 = 100",
    }
    return out


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorDef:
    """A named factor that configs can refer to: its function and its recipe.

    ``recipe`` maps each series parameter of ``fn``, in the function's order, to where it comes
    from: a catalog series id, or a function of the series loader (:func:`factor_input` for
    another factor). ``optional`` names the parameters that may be missing when the factor is
    computed from given inputs; ``inputs`` are the others. ``fn`` returns a Series.
    """

    name: str
    description: str
    units: str
    fn: Callable[..., pd.Series]
    recipe: Mapping[str, Source]
    optional: tuple[str, ...] = ()
    # when month t's value is known to a market: which month's data it holds and when they are
    # published (a signal can only be priced once it is known)
    known_at: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        """The required series parameters, in order."""
        return tuple(k for k in self.recipe if k not in self.optional)


FACTORS: plugins.Registry[FactorDef] = plugins.Registry(
    "factor",
    plugins.FACTORS,
    FactorDef,
    lambda f: f.name,
    (
        FactorDef(
            "real_rate",
            "10y TIPS yield from 2003, before that 10y nominal yield minus y/y core CPI inflation",
            "percent",
            real_rate,
            {"tips": "DFII10", "nominal_10y": "GS10", "core_cpi": "CPILFESL"},
        ),
        FactorDef(
            "dollar",
            "broad trade-weighted dollar (DTWEXBGS), extended back with rescaled TWEXBMTH",
            "index, Jan 2006 = 100",
            dollar_index,
            {"broad": "DTWEXBGS", "broad_old": "TWEXBMTH"},
            optional=("broad_old",),
        ),
        FactorDef(
            "rate_cut_expectations",
            "1y Treasury yield minus fed funds rate (negative: cuts priced)",
            "percentage points",
            rate_cut_expectations,
            {"gs1": "GS1", "fedfunds": "FEDFUNDS"},
        ),
        FactorDef(
            "inflation",
            "year-on-year CPI inflation",
            "percent",
            yoy_inflation,
            {"cpi": "CPIAUCSL"},
        ),
    ),
)


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
    series_params = set(fdef.recipe)
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


def factor_series(name: str, load: SeriesLoader) -> pd.Series:
    """The registered factor ``name`` computed by its recipe, each input read through ``load``
    (a catalog series) or computed from it; a factor function returning a DataFrame gives its
    last column."""
    fdef = FACTORS[name]
    inputs = {
        arg: load(src) if isinstance(src, str) else src(load) for arg, src in fdef.recipe.items()
    }
    out = compute_factor(name, inputs)
    if isinstance(out, pd.DataFrame):
        out = out.iloc[:, -1]
    return out.rename(name)


def factor_input(name: str) -> Callable[[SeriesLoader], pd.Series]:
    """A recipe source that is another registered factor (e.g. the dollar inside a bond-FX
    divergence)."""

    def compute(load: SeriesLoader) -> pd.Series:
        return factor_series(name, load)

    compute.__name__ = f"factor_input({name!r})"
    return compute
