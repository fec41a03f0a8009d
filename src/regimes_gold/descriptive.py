"""The gold study's analyses that need no sampling: the real gold price since 1871, gold's price
tops, and how the real gold price moved with the federal debt ratio — read straight from the
data. `load` is the application's data (`regimes_gold.study.APPLICATION`), `EXTRACTORS` its
quantities for the brief's rows with `source = "descriptive"` (`quantity = "KIND:ARGUMENT"`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regimes.config import parse_month
from regimes.dataset import compute_variable, make_loader
from regimes.errors import ConfigError
from regimes.study.quantities import Estimate, fmt_value, month_label


@dataclass(frozen=True)
class Series:
    """The monthly series the descriptive analyses read (natural units)."""

    real_gold: pd.Series  # index, 1930 = 100
    gold: pd.Series  # USD per troy oz
    debt_gdp: pd.Series  # federal debt held by the public, % of GDP
    ddri: pd.Series  # % of GDP per year
    # the monthly fiscal-risk signals a market prices each month (see `FISCAL_SIGNALS`)
    fiscal: dict[str, pd.Series] = field(default_factory=dict)


# the monthly, market-priced fiscal-risk signals shown beside the quarterly DDRI (each factor's
# `known_at` says when month t's value is known)
FISCAL_SIGNALS = ("ddri_market", "deficit_12m_gdp", "r_minus_g", "bond_fx_divergence")


def load(data_dir: Path) -> Series:
    """Build the descriptive series from the data directory."""
    load_ = make_loader(data_dir)
    debt, gdp = load_("FYGFDPUN"), load_("GDP")
    debt_gdp = (100.0 * debt / (1000.0 * gdp)).dropna().rename("debt_gdp")
    return Series(
        real_gold=compute_variable("real_gold_price", load_).dropna(),
        gold=load_("GOLD").dropna(),
        debt_gdp=debt_gdp,
        ddri=compute_variable("ddri", load_).dropna(),
        fiscal={name: compute_variable(name, load_).dropna() for name in FISCAL_SIGNALS},
    )


def real_gold_ratio(s: Series, since: str) -> Estimate:
    """The real gold price index now divided by its value at month `since` (a point figure)."""
    t0 = parse_month(since)
    if t0 not in s.real_gold.index:
        raise ConfigError(f"the real gold price index has no value at {since}")
    x = float(s.real_gold.iloc[-1] / s.real_gold[t0])
    note = (
        f"index {s.real_gold[t0]:.0f} at {since}, {s.real_gold.iloc[-1]:.0f} at "
        f"{month_label(s.real_gold.index[-1])} (1930 = 100)"
    )
    return Estimate(x, x, x, f"×{x:.1f}", note)


def gold_top(s: Series, near: str) -> Estimate:
    """The month of gold's highest monthly average price within 6 months either side of `near` (a local top)."""
    t = parse_month(near)
    window = s.gold[
        (s.gold.index >= t - pd.DateOffset(months=6))
        & (s.gold.index <= t + pd.DateOffset(months=6))
    ]
    if window.empty:
        raise ConfigError(f"no gold prices near {near}")
    top = pd.Timestamp(window.idxmax())
    return Estimate(
        top, top, top, f"{month_label(top)} (${window.max():,.0f}/oz)", "monthly averages"
    )


def real_gold_debt_corr(s: Series, window: str) -> Estimate:
    """Correlation of the real gold price with the debt/GDP ratio over `start:end` (years), on
    year-end values, with a Fisher-z 90% interval (annual data, so few points: read it wide)."""
    start, _, end = window.partition(":")
    a = s.real_gold.groupby(s.real_gold.index.year).last()
    b = s.debt_gdp.groupby(s.debt_gdp.index.year).last()
    both = pd.concat([a, b], axis=1, join="inner").loc[int(start) : int(end or 9999)].dropna()
    n = len(both)
    if n < 5:
        raise ConfigError(f"only {n} years with both series in {window}")
    r = float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1])
    z, se = math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12)), 1.0 / math.sqrt(n - 3)
    lo, hi = math.tanh(z - 1.645 * se), math.tanh(z + 1.645 * se)
    years = f"{both.index[0]}–{both.index[-1]}, {n} year-ends"
    return Estimate(r, lo, hi, f"{fmt_value(r)} ({fmt_value(lo)} to {fmt_value(hi)})", years)


def ddri_at(s: Series, when: str) -> Estimate:
    """The DDRI (% of GDP per year) at a month ('latest': its last value)."""
    t = s.ddri.index[-1] if when in ("", "latest") else parse_month(when)
    x = float(s.ddri[t])
    return Estimate(x, x, x, f"{fmt_value(x)}% of GDP per year", f"at {month_label(t)}")


EXTRACTORS: dict[str, Callable[[Series, str], Estimate]] = {
    "real_gold_ratio": real_gold_ratio,
    "gold_top": gold_top,
    "real_gold_debt_corr": real_gold_debt_corr,
    "ddri_at": ddri_at,
}
