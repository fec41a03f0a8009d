"""Data layer: series catalog, snapshot loading, public-source fetching and monthly alignment."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from regimes.data.align import align_monthly, to_monthly
from regimes.data.catalog import CATALOG, FredSource, PinkSheetSource, Series, get_series
from regimes.data.fetch import Provenance, fetch_series
from regimes.data.sources import CheckResult, check_data_dir, load_series, resolve_data_dir
from regimes.errors import DataError

__all__ = [
    "CATALOG",
    "CheckResult",
    "FredSource",
    "PinkSheetSource",
    "Provenance",
    "Series",
    "align_monthly",
    "check_data_dir",
    "fetch_series",
    "get_series",
    "load_monthly",
    "load_series",
    "resolve_data_dir",
    "to_monthly",
    "window",
]


def load_monthly(series_ids: Iterable[str], data_dir: str | Path | None = None) -> pd.DataFrame:
    """Load catalogued series and align them on one month-start grid (one column per id)."""
    ids = list(dict.fromkeys(series_ids))
    directory = resolve_data_dir(data_dir)
    loaded = {sid: load_series(sid, directory) for sid in ids}
    return align_monthly(loaded, {sid: get_series(sid).frequency for sid in ids})


def _coverage(frame: pd.DataFrame) -> str:
    """First..last valid month per column, for error messages."""
    parts = []
    for col in frame.columns:
        valid = frame[col].dropna()
        span = f"{valid.index[0]:%Y-%m}..{valid.index[-1]:%Y-%m}" if len(valid) else "no data"
        parts.append(f"{col} {span}")
    return ", ".join(parts)


def window(
    frame: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    min_obs: int = 1,
    what: str = "the requested window",
    complete: bool = True,
) -> pd.DataFrame:
    """Slice rows start..end (inclusive), keep complete rows, and fail clearly if too few remain."""
    sub = frame.loc[start:end]
    if complete:
        sub = sub.dropna(how="any")
    if len(sub) < min_obs:
        label = f"{start if start is not None else 'start'}..{end if end is not None else 'end'}"
        cols = ", ".join(map(str, frame.columns))
        raise DataError(
            f"{what}: window {label} holds {len(sub)} "
            f"{'complete ' if complete else ''}observations of [{cols}], fewer than the minimum "
            f"{min_obs}; widen the window or use series with longer coverage "
            f"(available: {_coverage(frame)}; see `regimes data check`)"
        )
    return sub
