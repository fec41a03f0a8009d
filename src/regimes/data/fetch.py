"""Download catalogued series from their public publishers into ``<data_dir>/fetched/``.

Sources:

* FRED per-series CSV (``fredgraph.csv?id=<ID>``): header ``observation_date,<ID>`` (older
  ``DATE,<ID>``), missing values ``.`` or empty. Daily series are aggregated to the simple monthly
  mean of the available observations; fiscal-year series are re-dated to the month the fiscal
  year ends (see `regimes.data.sources`).
* World Bank Pink Sheet workbook, sheet "Monthly Prices": title rows, a header row of commodity
  names, a units row such as ``($/mt)``, then rows dated ``1960M01``; ``..`` or ``…`` is missing.

Output per series: ``<ID>.csv`` (``date,value``, dates in the served convention) and
``<ID>.provenance.json`` (source URL, retrieval time in UTC, sha256 of the raw download, rows).
Every file is written atomically (temporary file + ``os.replace``), so a failed download never
leaves a partial file. Raw downloads are cached in ``fetched/raw/`` and reused while younger than
``max_age`` unless ``force=True``. Base URLs can be overridden by argument or by the environment
variables ``REGIMES_FRED_URL`` (a template containing ``{id}``) and ``REGIMES_PINKSHEET_URL``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import http.client
import io
import json
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from regimes.data.catalog import FredSource, PinkSheetSource, Series, get_series
from regimes.data.sources import FETCHED_DIR, fetched_path, fiscal_year_end, resolve_data_dir
from regimes.errors import DataError
from regimes.files import make_dirs, write_bytes_atomic

# deferred to the functions that use them: openpyxl (docs/modules.md#imports)

__all__ = [
    "DEFAULT_FRED_URL",
    "DEFAULT_MAX_AGE",
    "DEFAULT_PINKSHEET_URL",
    "Provenance",
    "fetch_series",
    "parse_fred_csv",
    "parse_pinksheet",
]

DEFAULT_FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv?id={id}"
DEFAULT_PINKSHEET_URL = (
    "https://thedocs.worldbank.org/en/doc/18675f1d1639c7a34d463f59263ba0a2-0050012025/related/"
    "CMO-Historical-Data-Monthly.xlsx"
)
FRED_URL_ENV = "REGIMES_FRED_URL"
PINKSHEET_URL_ENV = "REGIMES_PINKSHEET_URL"
PINKSHEET_SHEET = "Monthly Prices"
DEFAULT_MAX_AGE = dt.timedelta(days=1)
NO_NETWORK_HINT = "no network? use the snapshot in ../shared/data via data_dir="
USER_AGENT = "regimes-data-fetch/0.1 (+https://github.com/)"

_FRED_MISSING = frozenset({"", "."})
_PINK_MISSING = frozenset({"", "..", "...", "…"})
_PINK_DATE = re.compile(r"^(\d{4})M(\d{2})$")


@dataclass(frozen=True)
class Provenance:
    """Where and when a fetched series came from, written as ``<ID>.provenance.json``."""

    series_id: str
    source_url: str
    retrieved_at: str  # UTC, ISO 8601
    sha256: str  # of the raw downloaded bytes
    rows: int
    first: str | None
    last: str | None
    path: str
    from_cache: bool  # raw download reused from fetched/raw/ instead of requested again

    def to_json(self) -> str:
        """Serialize for the provenance file."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- atomic files


def _atomic_write(path: Path, data: bytes) -> None:
    """Write bytes atomically (`regimes.files`), creating the folder, so readers never see a
    partial file."""
    make_dirs(path.parent)
    write_bytes_atomic(path, data)


# --------------------------------------------------------------------------- downloading


def _fred_url(fred_id: str, template: str | None) -> str:
    """FRED CSV URL for an id from the argument, $REGIMES_FRED_URL or the default template."""
    template = template or os.environ.get(FRED_URL_ENV) or DEFAULT_FRED_URL
    if "{id}" in template:
        return template.format(id=fred_id)
    return f"{template}{'&' if '?' in template else '?'}id={fred_id}"


def _pinksheet_url(url: str | None) -> str:
    """Pink Sheet workbook URL from the argument, $REGIMES_PINKSHEET_URL or the default."""
    return url or os.environ.get(PINKSHEET_URL_ENV) or DEFAULT_PINKSHEET_URL


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_url(url: str, what: str) -> None:
    """Only https downloads (plain http only from this machine's loopback address, where a
    local test server runs); any other scheme (file:, ftp:, ...) is refused."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise DataError(
        f"refusing to download {what} from {url!r}: only https URLs are accepted (plain http "
        f"only from {', '.join(LOOPBACK_HOSTS)}); check {FRED_URL_ENV} / {PINKSHEET_URL_ENV} "
        "or the URL passed"
    )


def _download(url: str, what: str, timeout: float) -> bytes:
    """GET a URL fully into memory, turning every network failure into a DataError."""
    check_url(url, what)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # the error carries the open response; release its socket
        raise DataError(
            f"download of {what} failed: HTTP {exc.code} {exc.reason} from {url}; check the id "
            f"and the URL ({FRED_URL_ENV} / {PINKSHEET_URL_ENV}), or {NO_NETWORK_HINT}"
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"download of {what} from {url} failed ({type(exc).__name__}: {reason}); "
            f"{NO_NETWORK_HINT}"
        ) from exc


@dataclass(frozen=True)
class _Raw:
    """Raw downloaded bytes with their origin and retrieval time."""

    url: str
    content: bytes
    retrieved_at: str
    sha256: str
    from_cache: bool
    cache_path: Path


def _raw_meta_path(path: Path) -> Path:
    """Sidecar JSON describing a cached raw download."""
    return path.with_name(path.name + ".json")


def _get_raw(url: str, cache_path: Path, what: str, *, timeout: float, force: bool,
             max_age: dt.timedelta) -> _Raw:  # fmt: skip
    """Return the raw bytes for a URL, reusing the cached copy when fresh (same URL, intact)."""
    now = dt.datetime.now(dt.UTC)
    meta_path = _raw_meta_path(cache_path)
    if not force and cache_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            content = cache_path.read_bytes()
            retrieved = dt.datetime.fromisoformat(meta["retrieved_at"])
            fresh = meta.get("url") == url and now - retrieved < max_age
            intact = hashlib.sha256(content).hexdigest() == meta.get("sha256")
        except (OSError, ValueError, KeyError, TypeError):
            fresh = intact = False
        if fresh and intact:
            return _Raw(url, content, meta["retrieved_at"], meta["sha256"], True, cache_path)
    content = _download(url, what, timeout)
    return _Raw(url, content, now.isoformat(timespec="seconds"),
                hashlib.sha256(content).hexdigest(), False, cache_path)  # fmt: skip


def _store_raw(raw: _Raw) -> None:
    """Persist a freshly downloaded raw file (only after it parsed) and its metadata sidecar."""
    if raw.from_cache:
        return
    _atomic_write(raw.cache_path, raw.content)
    meta = {"url": raw.url, "retrieved_at": raw.retrieved_at, "sha256": raw.sha256}
    _atomic_write(_raw_meta_path(raw.cache_path), json.dumps(meta, indent=2).encode())


# --------------------------------------------------------------------------- parsing


def parse_fred_csv(content: bytes, fred_id: str, url: str = "<FRED csv>") -> pd.Series:
    """Parse a fredgraph CSV at its native dates (NaN = missing), checking the header and id."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"unexpected content from {url} for FRED series {fred_id}: not UTF-8 text ({exc}); "
            f"FRED may have changed its format or returned an error page"
        ) from exc
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    header = [cell.strip() for cell in rows[0]] if rows else []
    if (
        len(header) != 2
        or header[0].lower() not in ("observation_date", "date")
        or header[1].upper() != fred_id.upper()
    ):
        raise DataError(
            f"unexpected content from {url} for FRED series {fred_id}: expected a CSV header "
            f"'observation_date,{fred_id}' (or 'DATE,{fred_id}'), got {text[:80]!r}; check the "
            f"id, or FRED changed its format"
        )
    dates: list[pd.Timestamp] = []
    values: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise DataError(
                f"unexpected content from {url} for FRED series {fred_id}: line {line} has "
                f"{len(row)} fields ({','.join(row)!r}); expected 'date,value'"
            )
        date_text, value_text = row[0].strip(), row[1].strip()
        try:
            dates.append(pd.Timestamp(dt.date.fromisoformat(date_text)))
        except ValueError as exc:
            raise DataError(
                f"unexpected content from {url} for FRED series {fred_id}: bad date "
                f"{date_text!r} on line {line}; expected YYYY-MM-DD"
            ) from exc
        if value_text in _FRED_MISSING:
            values.append(math.nan)
            continue
        try:
            values.append(float(value_text))
        except ValueError as exc:
            raise DataError(
                f"unexpected content from {url} for FRED series {fred_id}: non-numeric value "
                f"{value_text!r} on {date_text} (line {line})"
            ) from exc
    out = pd.Series(values, index=pd.DatetimeIndex(dates, name="date"), name=fred_id,
                    dtype="float64")  # fmt: skip
    if out.dropna().empty:
        raise DataError(f"FRED series {fred_id} from {url} holds no observations")
    if out.index.has_duplicates or not out.index.is_monotonic_increasing:
        raise DataError(
            f"unexpected content from {url} for FRED series {fred_id}: dates are duplicated "
            f"or not sorted"
        )
    return out


def _norm(text: object) -> str:
    """Collapse whitespace for header comparisons."""
    return " ".join(str(text).split()) if text is not None else ""


def _pink_value(cell: object, header: str, label: str, url: str) -> float:
    """One Pink Sheet cell as float; '..' / '…' / blank are missing, other text is an error."""
    if cell is None:
        return math.nan
    if isinstance(cell, bool):
        raise DataError(f"unexpected cell {cell!r} for {header!r} at {label} in {url}")
    if isinstance(cell, int | float):
        return float(cell)
    text = str(cell).strip()
    if text in _PINK_MISSING:
        return math.nan
    try:
        return float(text.replace(",", ""))
    except ValueError as exc:
        raise DataError(
            f"unexpected content in {url}, sheet {PINKSHEET_SHEET!r}: non-numeric value "
            f"{text!r} for {header!r} at {label}"
        ) from exc


def _pink_date(cell: object) -> pd.Timestamp | None:
    """Month start for a Pink Sheet date cell ('1960M01' or an Excel date), else None."""
    if isinstance(cell, dt.datetime | dt.date):
        return pd.Timestamp(year=cell.year, month=cell.month, day=1)
    match = _PINK_DATE.match(str(cell).strip()) if cell is not None else None
    if match and 1 <= int(match.group(2)) <= 12:
        return pd.Timestamp(year=int(match.group(1)), month=int(match.group(2)), day=1)
    return None


def parse_pinksheet(
    content: bytes, wanted: Iterable[PinkSheetSource], url: str = "<Pink Sheet>"
) -> dict[PinkSheetSource, pd.Series]:
    """Extract monthly columns from the Pink Sheet workbook, checking each header and its unit."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    wanted = list(wanted)
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise DataError(
            f"unexpected content from {url}: not an xlsx workbook ({type(exc).__name__}: {exc}); "
            f"the World Bank may have moved the file: set {PINKSHEET_URL_ENV} to the current "
            f"'CMO-Historical-Data-Monthly.xlsx' link, or {NO_NETWORK_HINT}"
        ) from exc
    try:
        if PINKSHEET_SHEET not in book.sheetnames:
            raise DataError(
                f"unexpected content from {url}: no sheet {PINKSHEET_SHEET!r} (sheets: "
                f"{', '.join(book.sheetnames)}); the Pink Sheet layout changed"
            )
        rows = [tuple(r) for r in book[PINKSHEET_SHEET].iter_rows(values_only=True)]
    finally:
        book.close()
    start = next((i for i, r in enumerate(rows) if r and _pink_date(r[0]) is not None), None)
    if start is None or start < 1:
        raise DataError(
            f"unexpected content from {url}: sheet {PINKSHEET_SHEET!r} has no rows dated like "
            f"'1960M01' below a header row; the Pink Sheet layout changed"
        )
    units_row = [_norm(c) for c in rows[start - 1]]
    has_units = any(u.startswith("(") for u in units_row)
    header_row = [_norm(c) for c in rows[start - 2]] if has_units and start >= 2 else units_row
    if not has_units:
        units_row = [""] * len(header_row)
    out: dict[PinkSheetSource, pd.Series] = {}
    for source in wanted:
        target = _norm(source.header).casefold()
        combined = _norm(source.column).casefold()
        col = next((j for j, h in enumerate(header_row) if h.casefold() in (target, combined)),
                   None)  # fmt: skip
        if col is None:
            seen = ", ".join(repr(h) for h in header_row if h)[:300]
            raise DataError(
                f"unexpected content from {url}: column {source.header!r} not found in the header "
                f"row of sheet {PINKSHEET_SHEET!r} (headers: {seen}); the Pink Sheet layout changed"
            )
        unit = units_row[col] if col < len(units_row) else ""
        if has_units and unit and _norm(unit) != _norm(source.unit):
            raise DataError(
                f"unexpected content from {url}: {source.header!r} is now in {unit!r}, expected "
                f"{source.unit!r}; units changed, refusing to mix them"
            )
        dates: list[pd.Timestamp] = []
        values: list[float] = []
        for i in range(start, len(rows)):
            row = rows[i]
            if not row or row[0] is None or _norm(row[0]) == "":
                continue
            date = _pink_date(row[0])
            if date is None:
                raise DataError(
                    f"unexpected content from {url}: row {i + 1} of sheet {PINKSHEET_SHEET!r} "
                    f"has date {row[0]!r}; expected e.g. '1960M01'"
                )
            label = f"{date:%Y}M{date:%m}"
            dates.append(date)
            values.append(_pink_value(row[col] if col < len(row) else None, source.header,
                                      label, url))  # fmt: skip
        series = pd.Series(values, index=pd.DatetimeIndex(dates, name="date"), dtype="float64",
                           name=source.column)  # fmt: skip
        if series.index.has_duplicates or not series.index.is_monotonic_increasing:
            raise DataError(f"unexpected content from {url}: Pink Sheet dates repeat or go back")
        if series.dropna().empty:
            raise DataError(f"unexpected content from {url}: column {source.header!r} is empty")
        out[source] = series
    return out


# --------------------------------------------------------------------------- tidying


def _to_served(spec: Series, native: pd.Series, url: str) -> pd.Series:
    """Convert a parsed download to the catalog's served frequency and date convention."""
    values = native.dropna()
    idx = values.index
    if spec.native == "D":
        month = idx.to_period("M").to_timestamp()
        values = values.groupby(month).mean()
    elif spec.frequency in ("M", "Q"):
        off = idx.day != 1
        if spec.frequency == "Q":
            off = off | ((idx.month - 1) % 3 != 0)
        if off.any():
            kind = "quarterly" if spec.frequency == "Q" else "monthly"
            raise DataError(
                f"unexpected content from {url} for {spec.id}: date {idx[off][0].date()} is not "
                f"the start of a {kind} period; FRED may have changed the series frequency"
            )
    elif spec.frequency == "A":
        # FRED dates fiscal-year series either at FY end (FYFSD: YYYY-09-30) or at YYYY-01-01
        # (FYOIGDA188S); in both the calendar year is the fiscal year.
        values = pd.Series(values.to_numpy(), index=[fiscal_year_end(d.year) for d in idx])
        if values.index.has_duplicates:
            raise DataError(f"unexpected content from {url} for {spec.id}: two values per year")
    out = values.astype("float64").sort_index()
    out.index = pd.DatetimeIndex(out.index, name="date")
    out.name = spec.id
    return out


def _tidy_csv(series: pd.Series) -> bytes:
    """Render a served series as the fetched file format: 'date,value' with round-trip floats."""
    lines = ["date,value"] + [f"{d:%Y-%m-%d},{float(v)!r}" for d, v in series.items()]
    return ("\n".join(lines) + "\n").encode()


def _write_series(spec: Series, served: pd.Series, raw: _Raw, data_dir: Path) -> Provenance:
    """Atomically write a tidy series file and its provenance JSON; return the provenance."""
    path = fetched_path(data_dir, spec.id)
    prov = Provenance(
        series_id=spec.id,
        source_url=raw.url,
        retrieved_at=raw.retrieved_at,
        sha256=raw.sha256,
        rows=len(served),
        first=f"{served.index[0]:%Y-%m-%d}" if len(served) else None,
        last=f"{served.index[-1]:%Y-%m-%d}" if len(served) else None,
        path=str(path),
        from_cache=raw.from_cache,
    )
    _atomic_write(path, _tidy_csv(served))
    _atomic_write(path.with_name(f"{spec.id}.provenance.json"), prov.to_json().encode())
    return prov


def fetch_series(
    ids: Iterable[str],
    data_dir: str | Path | None = None,
    *,
    timeout: float = 30,
    force: bool = False,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    fred_url: str | None = None,
    pinksheet_url: str | None = None,
) -> list[Provenance]:
    """Download series from FRED / the World Bank into data_dir/fetched/ and return provenance."""
    specs = [get_series(sid) for sid in dict.fromkeys(ids)]
    not_downloadable = [s for s in specs if s.source is None]
    if not_downloadable:
        names = "; ".join(f"{s.id} ({s.origin or 'no public per-series source'})"
                          for s in not_downloadable)  # fmt: skip
        raise DataError(
            f"cannot download {names}: these series have no public download source; use the "
            f"snapshot in ../shared/data via data_dir= / REGIMES_DATA_DIR"
        )
    directory = resolve_data_dir(data_dir)
    raw_dir = directory / FETCHED_DIR / "raw"
    options = {"timeout": timeout, "force": force, "max_age": max_age}
    results: dict[str, Provenance] = {}

    pink = [s for s in specs if isinstance(s.source, PinkSheetSource)]
    if pink:
        url = _pinksheet_url(pinksheet_url)
        raw = _get_raw(url, raw_dir / "CMO-Historical-Data-Monthly.xlsx",
                       "the World Bank Pink Sheet", **options)  # fmt: skip
        parsed = parse_pinksheet(raw.content, [s.source for s in pink], url)  # type: ignore[misc]
        served = {s.id: _to_served(s, parsed[s.source], url) for s in pink}  # type: ignore[index]
        _store_raw(raw)
        for s in pink:
            results[s.id] = _write_series(s, served[s.id], raw, directory)

    for spec in specs:
        if not isinstance(spec.source, FredSource):
            continue
        fred_id = spec.source.fred_id
        url = _fred_url(fred_id, fred_url)
        raw = _get_raw(url, raw_dir / f"fred_{fred_id}.csv", f"FRED series {fred_id}", **options)
        served = _to_served(spec, parse_fred_csv(raw.content, fred_id, url), url)
        _store_raw(raw)
        results[spec.id] = _write_series(spec, served, raw, directory)

    return [results[s.id] for s in specs]
