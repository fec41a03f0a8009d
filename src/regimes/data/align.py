"""Put series of different frequencies on one month-start grid without look-ahead.

Rules (``to_monthly``), for a value to appear in month *m* it must have been knowable in *m*:

* ``"M"`` monthly: used as dated (no publication lag is modelled); each date is mapped to its
  month start, missing months stay NaN (e.g. CPI for October 2025).
* ``"D"`` daily: simple mean of the available observations in each calendar month (a partial
  last month is the mean of the days present); months with no observation are NaN.
* ``"Q"`` quarterly, dated the first day of the quarter: a quarter's value becomes known only
  after the quarter ends, so it is first used in the month after the quarter's last month
  (2020Q1, dated 2020-01-01, is first usable 2020-04-01), then forward-filled until the next
  quarter's value arrives. The last value is held for one quarter (3 months).
* ``"A"`` annual, dated at the month-start of the month in which the (fiscal) year ENDS (as
  `load_series` serves US fiscal years: YYYY-09-01, YYYY-06-01 before FY1977): first used in the
  following month (FY2020 -> 2020-10-01), forward-filled until the next year's value; the last
  value is held for 12 months. Do not pass calendar-year series dated January 1st: that would
  leak the whole year's value into January.

Forward-filling for "Q" and "A" carries the latest released value across missing periods (a
skipped release keeps the previous value, which is what an observer would have known).
The output index is a complete ``freq="MS"`` DatetimeIndex named ``date``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from regimes.errors import DataError

__all__ = ["ALIGN_FREQUENCIES", "align_monthly", "to_monthly"]

ALIGN_FREQUENCIES = ("D", "M", "Q", "A")
# months after the first usable month during which the last release is still the latest
_HOLD = {"Q": 3, "A": 12}


def _month_grid(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Complete month-start index from start to end inclusive."""
    return pd.date_range(start, end, freq="MS", name="date", unit="ns")


def _empty(name: object) -> pd.Series:
    """An empty float series on a month-start index."""
    return pd.Series([], index=pd.DatetimeIndex([], freq="MS", name="date"), dtype="float64",
                     name=name)  # fmt: skip


def to_monthly(series: pd.Series, frequency: str) -> pd.Series:
    """Map one series onto a month-start grid using the no-look-ahead rules in the module doc."""
    if frequency not in ALIGN_FREQUENCIES:
        raise ValueError(f"frequency {frequency!r} not one of {ALIGN_FREQUENCIES}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataError(
            f"series {series.name}: index must be dates (DatetimeIndex), got "
            f"{type(series.index).__name__}; load it with regimes.data.load_series"
        )
    values = series.dropna().astype("float64")
    if values.empty:
        return _empty(series.name)
    if values.index.has_duplicates or not values.index.is_monotonic_increasing:
        raise DataError(f"series {series.name}: dates must be unique and increasing to align")
    month = values.index.to_period("M").to_timestamp()

    if frequency == "D":
        monthly = values.groupby(month).mean()
        out = monthly.reindex(_month_grid(monthly.index[0], monthly.index[-1]))
    elif frequency == "M":
        if month.has_duplicates:
            dup = month[month.duplicated()][0]
            raise DataError(
                f"series {series.name}: two observations in {dup:%Y-%m} for a monthly series; "
                f"use frequency 'D' to average them"
            )
        monthly = pd.Series(values.to_numpy(), index=month)
        out = monthly.reindex(_month_grid(month[0], month[-1]))
    else:
        if frequency == "Q":
            period_end = values.index.to_period("Q").asfreq("M", how="end")
        else:
            period_end = values.index.to_period("M")
        known = (period_end + 1).to_timestamp()
        if known.has_duplicates:
            raise DataError(f"series {series.name}: two values for the same {frequency} period")
        released = pd.Series(values.to_numpy(), index=known)
        last = known[-1] + pd.DateOffset(months=_HOLD[frequency] - 1)
        out = released.reindex(_month_grid(known[0], last)).ffill()

    out.index = pd.DatetimeIndex(out.index, freq="MS", name="date")
    out.name = series.name
    return out.astype("float64")


def align_monthly(
    series: Mapping[str, pd.Series], frequencies: Mapping[str, str] | str
) -> pd.DataFrame:
    """Outer-join several series on one month-start grid, one column per key, no look-ahead."""
    columns: dict[str, pd.Series] = {}
    for key, values in series.items():
        freq = frequencies if isinstance(frequencies, str) else frequencies.get(key)
        if freq is None:
            raise ValueError(f"no frequency given for series {key!r}")
        columns[key] = to_monthly(values.rename(key), freq)
    non_empty = [c for c in columns.values() if not c.empty]
    if not non_empty:
        return pd.DataFrame({k: pd.Series(dtype="float64") for k in columns},
                            index=pd.DatetimeIndex([], freq="MS", name="date"))  # fmt: skip
    grid = _month_grid(min(c.index[0] for c in non_empty), max(c.index[-1] for c in non_empty))
    frame = pd.DataFrame({k: c.reindex(grid) for k, c in columns.items()}, index=grid)
    frame.index = pd.DatetimeIndex(frame.index, freq="MS", name="date")
    return frame
