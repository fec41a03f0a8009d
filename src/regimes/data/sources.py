"""Read catalogued series from a data directory (the snapshot, or `regimes data fetch` output).

Served index conventions (what `load_series` returns):

* monthly ("M"): first day of the month;
* quarterly ("Q"): first day of the quarter (FRED convention), e.g. 2020Q1 -> 2020-01-01;
* annual by US federal fiscal year ("A"): first day of the month in which the fiscal year ENDS:
  September from FY1977 (FY2020 -> 2020-09-01), June before (FY1970 -> 1970-06-01).
  Alignment to a monthly grid (`regimes.data.align`) then makes the value known only from the
  following month.

Values are float, NaNs dropped, sorted by date; the Series is named by the catalog id.
A fetched copy (``<data_dir>/fetched/<ID>.csv``) is read only when the snapshot file is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs

from regimes.data.catalog import CATALOG, PERIOD_STARTS, Series, get_series
from regimes.errors import DataError
from regimes.files import (
    exists,
    is_dir,
    is_file,
    missing_reason,
    sha256_file,
    shorten,
    usable_name,
)

__all__ = [
    "DATA_DIR_ENV",
    "CheckResult",
    "check_data_dir",
    "clear_cache",
    "fetched_path",
    "fiscal_year_end",
    "load_series",
    "note_read",
    "recording_reads",
    "resolve_data_dir",
]

DATA_DIR_ENV = "REGIMES_DATA_DIR"
FETCHED_DIR = "fetched"
MISSING_MARKERS = frozenset({"", ".", "NA", "NaN", "nan"})
# errors name the Python keyword `data_dir=`; the command line says `--data-dir` (cli.py)
_HOW_TO_POINT = "point data_dir= / REGIMES_DATA_DIR at a snapshot (e.g. ../shared/data)"

# Path -> ((mtime_ns, size), table of strings). Each CSV is parsed at most once per process.
_TABLES: dict[Path, tuple[tuple[int, int], pd.DataFrame]] = {}
# (path, stat key, date column, date format) -> parsed, validated DatetimeIndex
_DATES: dict[tuple[Path, tuple[int, int], str, str], pd.DatetimeIndex] = {}


def resolve_data_dir(value: str | Path | None = None) -> Path:
    """Pick the data directory: explicit argument, else $REGIMES_DATA_DIR, else the user cache;
    as an absolute path (a run records it, and is reopened from any working directory). A path
    that exists but is not a folder is a DataError naming where it came from."""
    if value is not None and str(value) != "":
        path, where = Path(value).expanduser(), "--data-dir"
    elif os.environ.get(DATA_DIR_ENV):
        path, where = Path(os.environ[DATA_DIR_ENV]).expanduser(), DATA_DIR_ENV
    else:
        path, where = Path(platformdirs.user_cache_dir("regimes")) / "data", "the user cache"
    problem = ""
    if not usable_name(path):
        problem = "is not a usable path (too long, or a NUL byte)"
    elif exists(path) and not is_dir(path):
        problem = "is a file, not a folder"
    if problem:
        raise DataError(f"data directory {shorten(str(path))} ({where}) {problem}; {_HOW_TO_POINT}")
    return Path(os.path.abspath(path))


# label -> (absolute path, sha256) of every data file read inside `recording_reads`
_READS: ContextVar[dict[str, tuple[str, str]] | None] = ContextVar("regimes_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[dict[str, tuple[str, str]]]:
    """Record every data file read inside the block (catalog files by `load_series`, the user's
    own by `regimes.userdata`): label -> (absolute path, sha256 of the bytes read). The hashes
    make a result's reuse key (`regimes.reuse`); nested blocks also report to the outer one."""
    outer = _READS.get()
    reads: dict[str, tuple[str, str]] = {}
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)
        if outer is not None:
            for label, value in reads.items():
                outer.setdefault(label, value)


def note_read(label: str, path: Path) -> None:
    """Record that the data file `path` is read, under `label` (see `recording_reads`)."""
    reads = _READS.get()
    if reads is not None and label not in reads:
        reads[label] = (os.path.abspath(path), sha256_file(path))


def fetched_path(data_dir: str | Path, series_id: str) -> Path:
    """Where `fetch_series` stores the tidy download of a series inside a data directory."""
    return Path(data_dir) / FETCHED_DIR / f"{series_id}.csv"


def clear_cache() -> None:
    """Forget every parsed file (tests and long-lived processes that rewrite data files)."""
    _TABLES.clear()
    _DATES.clear()


def _stat_key(path: Path) -> tuple[int, int]:
    """Modification time and size: a cheap cache key that changes when the file is rewritten."""
    st = path.stat()
    return (st.st_mtime_ns, st.st_size)


def _read_table(path: Path) -> tuple[tuple[int, int], pd.DataFrame]:
    """Read a CSV as strings (validation happens per column), cached by path and mtime."""
    key = _stat_key(path)
    hit = _TABLES.get(path)
    if hit is not None and hit[0] == key:
        return hit
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"file {path} is not a readable CSV ({exc}); replace it with a fresh copy of the "
            f"snapshot or re-run `regimes data fetch`"
        ) from exc
    _TABLES[path] = (key, table)
    return key, table


def fiscal_year_end(year: int) -> pd.Timestamp:
    """Month start of the month in which US fiscal year `year` ends (Sep; June before 1977)."""
    return pd.Timestamp(year=year, month=9 if year >= 1977 else 6, day=1)


_FORMATS = {"iso": ("%Y-%m-%d", "YYYY-MM-DD"), "year_month": ("%Y-%m", "YYYY-MM"),
            "mdy": ("%m/%d/%Y", "M/D/YYYY")}  # fmt: skip


def _parse_dates(
    raw: pd.Series, date_format: str, path: Path, column: str, frequency: str
) -> pd.DatetimeIndex:
    """Parse and validate a date column: parseable, unique, increasing, on period starts."""
    text = raw.str.strip()
    if date_format == "fiscal_year":
        years = pd.to_numeric(text, errors="coerce")
        ok = years.notna() & (years % 1 == 0) & years.between(1700, 2200)
        parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        parsed[ok] = [fiscal_year_end(int(y)) for y in years[ok]]
        expected = "a fiscal year such as 2020"
    else:
        fmt, expected = _FORMATS[date_format]
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"file {path}: unparseable date {raw.iloc[i]!r} in column {column!r} on line {i + 2} "
            f"(expected {expected}); fix the row or replace the file with a fresh copy"
        )
    lo, hi = pd.Timestamp.min, pd.Timestamp.max  # what nanosecond dates can hold
    outside = (parsed < lo) | (parsed > hi)
    if outside.any():
        i = int(np.flatnonzero(outside.to_numpy())[0])
        raise DataError(
            f"file {path}: date {raw.iloc[i]!r} in column {column!r} on line {i + 2} is outside "
            f"the supported range {lo:%Y}..{hi:%Y}; fix the row or replace the file with a fresh "
            "copy"
        )
    index = pd.DatetimeIndex(parsed, name="date").as_unit("ns")
    dup = index.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"file {path}: duplicate date {index[i].date()} in column {column!r} (line {i + 2}); "
            f"each date must appear once, remove the repeated row"
        )
    if not index.is_monotonic_increasing:
        i = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
        raise DataError(
            f"file {path}: dates are not sorted in column {column!r}: {index[i].date()} on line "
            f"{i + 2} comes after {index[i - 1].date()}; sort the file by date"
        )
    if frequency in ("M", "Q"):
        off = index.day != 1
        if frequency == "Q":
            off = off | ((index.month - 1) % 3 != 0)
        if off.any():
            i = int(np.flatnonzero(off)[0])
            what = "first day of a quarter" if frequency == "Q" else "first day of a month"
            raise DataError(
                f"file {path}: date {index[i].date()} on line {i + 2} is not the {what}; "
                f"{'quarterly' if frequency == 'Q' else 'monthly'} data must be dated at the "
                f"start of the period"
            )
    return index


def _dates_for(
    path: Path, key: tuple[int, int], table: pd.DataFrame, column: str, fmt: str, freq: str
) -> pd.DatetimeIndex:
    """Cached `_parse_dates` for one file's date column."""
    cache_key = (path, key, column, fmt)
    hit = _DATES.get(cache_key)
    if hit is None:
        hit = _parse_dates(table[column], fmt, path, column, freq)
        _DATES[cache_key] = hit
    return hit


def _parse_values(raw: pd.Series, dates: pd.DatetimeIndex, series_id: str, path: Path,
                  column: str) -> pd.Series:  # fmt: skip
    """Convert strings to floats; empty/"." cells are missing, anything else must parse."""
    text = raw.str.strip()
    missing = text.isin(MISSING_MARKERS)
    values = pd.to_numeric(text.mask(missing, None), errors="coerce").astype("float64")
    bad = (values.isna() & ~missing) | np.isinf(values)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"series {series_id}: non-numeric value {raw.iloc[i]!r} in column {column!r} of "
            f"{path} at {dates[i].date()} (line {i + 2}); fix the cell or leave it empty for a "
            f"missing value"
        )
    out = pd.Series(values.to_numpy(), index=dates, name=series_id, dtype="float64")
    return out.dropna()


def _missing_file_message(series: Series, path: Path, data_dir: Path) -> str:
    """Explain a missing snapshot file and how to get the series."""
    where = f"data directory {shorten(str(data_dir))}"
    if not is_dir(data_dir):
        where += (
            f" (which {missing_reason(data_dir).replace('is a folder, not a file', 'is a file')})"
        )
    if series.downloadable:
        how = f"run `regimes data fetch {series.id}` or {_HOW_TO_POINT}"
    else:
        origin = f" (it comes from {series.origin})" if series.origin else ""
        how = f"it cannot be downloaded{origin}; {_HOW_TO_POINT}"
    return f"series {series.id}: file {path} not found in {where}; {how}"


def _locate(series: Series, data_dir: Path) -> tuple[Path, str, str, str]:
    """Choose the file to read: the snapshot file, else a fetched copy; raise if neither exists."""
    snapshot = data_dir / series.file
    if is_file(snapshot):
        return snapshot, series.date_column, series.date_format, series.column
    fetched = fetched_path(data_dir, series.id)
    if is_file(fetched):
        return fetched, "date", "iso", "value"
    raise DataError(_missing_file_message(series, snapshot, data_dir))


def load_series(series_id: str, data_dir: str | Path | None = None) -> pd.Series:
    """Load one catalogued series at its served frequency (period-start dates, floats, no NaNs)."""
    series = get_series(series_id)
    directory = resolve_data_dir(data_dir)
    path, date_column, date_format, column = _locate(series, directory)
    key, table = _read_table(path)
    note_read(_relative(path, directory), path)
    for col, role in ((date_column, "date"), (column, "value")):
        if col not in table.columns:
            shown = ", ".join(map(repr, list(table.columns)[:12]))
            raise DataError(
                f"series {series.id}: {role} column {col!r} not found in {path} (columns: {shown}"
                f"{', ...' if len(table.columns) > 12 else ''}); the file is not the expected "
                f"snapshot version: {_HOW_TO_POINT} or run `regimes data fetch {series.id}`"
            )
    dates = _dates_for(path, key, table, date_column, date_format, series.frequency)
    return _parse_values(table[column], dates, series.id, path, column)


def _relative(path: Path, root: Path) -> str:
    """A data file's label: its path inside the data directory (the same in every copy)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def interior_holes(values: pd.Series, frequency: str) -> pd.DatetimeIndex:
    """Periods inside a series' range that have no value and that no rule fills: every missing
    quarter of a quarterly series, and runs of two or more missing months of a monthly one (a
    single missing month is carried forward when series are put on the monthly grid; see
    `dataset.fill_single_gaps`). Annual (fiscal-year) dates are irregular and not checked."""
    step = PERIOD_STARTS.get(frequency)
    if step is None or values.empty:
        return pd.DatetimeIndex([])
    grid = pd.date_range(values.index[0], values.index[-1], freq=step)
    missing = grid.difference(values.index)
    if frequency != "M" or not len(missing):
        return missing
    pos = grid.get_indexer(missing)
    run_start = np.r_[True, np.diff(pos) != 1]
    run_id = np.cumsum(run_start)
    sizes = np.bincount(run_id)[run_id]
    return missing[sizes >= 2]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one series in a data directory (one row of `regimes data check`)."""

    series_id: str
    present: bool
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    n_obs: int = 0
    problem: str | None = None
    path: str | None = None

    @property
    def ok(self) -> bool:
        """True when the series loaded and holds at least one observation."""
        return self.present and self.problem is None


def check_data_dir(
    data_dir: str | Path | None = None, series_ids: list[str] | None = None
) -> list[CheckResult]:
    """Try to load every catalogued series (or `series_ids`) and report coverage or the problem."""
    directory = resolve_data_dir(data_dir)
    results: list[CheckResult] = []
    for sid in series_ids if series_ids is not None else list(CATALOG):
        try:
            spec = get_series(sid)
            path = _locate(spec, directory)[0]
            values = load_series(sid, directory)
        except DataError as exc:
            present = is_file(directory / CATALOG[sid].file) if sid in CATALOG else False
            results.append(CheckResult(sid, present, problem=str(exc)))
            continue
        if values.empty:
            results.append(CheckResult(sid, True, problem=f"series {sid}: no observations in "
                                       f"{path}", path=str(path)))  # fmt: skip
            continue
        holes = interior_holes(values, spec.frequency)
        if len(holes):
            shown = ", ".join(f"{t:%Y-%m}" for t in holes[:6]) + (", ..." if len(holes) > 6 else "")
            results.append(CheckResult(
                sid, True, values.index[0], values.index[-1], len(values),
                f"series {sid}: {len(holes)} missing period(s) inside its range ({shown}) in "
                f"{path}; a fit over them is refused: fill them or run `regimes data fetch {sid}`",
                str(path),
            ))  # fmt: skip
            continue
        results.append(CheckResult(sid, True, values.index[0], values.index[-1], len(values),
                                   None, str(path)))  # fmt: skip
    return results
