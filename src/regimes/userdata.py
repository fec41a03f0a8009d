"""The data an experiment declares, as one fit frame (`experiment_frame`): catalog series and
factors, declared transforms, and the researcher's own series (`[data.series.NAME]`), read from
CSV or Parquet files with the same validation as catalog series and put on the experiment's
periods with the same alignment rules."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from regimes import factors as fx
from regimes.config import Experiment, UserSeries
from regimes.data import CATALOG
from regimes.data.align import to_monthly
from regimes.data.sources import MISSING_MARKERS, note_read, recording_reads
from regimes.dataset import FitFrame, build_frame, catalog_series, compute_variable, make_loader
from regimes.errors import DataError, RegimesError
from regimes.files import is_file, missing_reason, shorten

SERIES = "data.series."  # label of a user file among a run's data inputs: data.series.<name>
COLUMN = "DataFrame."  # label of a DataFrame column among them: DataFrame.<column>


def _locate(spec: UserSeries, name: str, base_dirs: list[Path]) -> Path:
    candidates = [Path(spec.file)] if Path(spec.file).is_absolute() else [
        d / spec.file for d in base_dirs
    ]  # fmt: skip
    for path in candidates:
        if is_file(path):
            return path
    searched = "; ".join(f"{shorten(str(p))} {missing_reason(p)}" for p in candidates)
    raise DataError(
        f"data.series.{name}: file {shorten(spec.file)!r} not found ({searched}); give the path "
        "of a file relative to the experiment file or the data directory"
    )


def _table(path: Path, name: str) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path).astype(str)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except ImportError as exc:
        raise DataError(
            f"data.series.{name}: reading {path} needs pyarrow ({exc}); install it or save the "
            "file as CSV"
        ) from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"data.series.{name}: {path} is not a readable table ({exc})") from None


def read_user_series(spec: UserSeries, name: str, base_dirs: list[Path], frequency: str):
    """One declared series on the experiment's periods (month starts, or quarter starts for a
    quarterly experiment), validated: dates parse, lie in pandas' range, unique and sorted, one
    per period of the declared frequency; values numeric and finite (missing: an empty cell,
    ".", "NA", "NaN" or "nan", as in catalog files)."""
    path = _locate(spec, name, base_dirs)
    table = _table(path, name)
    note_read(SERIES + name, path)
    column = spec.value_column or name
    for col, role in ((spec.date_column, "date_column"), (column, "value_column")):
        if col not in table.columns:
            raise DataError(
                f"data.series.{name}: {role} {col!r} not in {path} (columns: "
                f"{', '.join(map(str, table.columns[:12]))}); set data.series.{name}.{role}"
            )
    dates = pd.to_datetime(table[spec.date_column].str.strip(), errors="coerce", format="mixed")
    cells = table[column].str.strip()
    missing = cells.isin(MISSING_MARKERS)
    values = pd.to_numeric(cells.mask(missing, None), errors="coerce")
    in_range = dates.between(pd.Timestamp.min, pd.Timestamp.max)
    checks = (
        (dates.isna(), "unparseable date", "fix the row"),
        (dates.notna() & ~in_range, "date outside 1677-09-22..2262-04-11",
         "pandas holds dates in that range only: fix or drop the row"),
        (values.isna() & ~missing, "non-numeric value", "fix the row"),
        (np.isinf(values.fillna(0.0)), "value that is not finite",
         "write a number (a missing value: an empty cell)"),
    )  # fmt: skip
    for bad, what, fix in checks:
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"data.series.{name}: {what} on line {i + 2} of {path} "
                f"({table.iloc[i][spec.date_column]!r}, {table.iloc[i][column]!r}); {fix}"
            )
    lines = pd.Series(np.arange(2, len(table) + 2), index=pd.DatetimeIndex(dates).as_unit("ns"))
    series = pd.Series(values.to_numpy(dtype=float), index=lines.index, name=name)
    keep = series.notna().to_numpy()
    series, lines = series[keep], lines[keep]
    if series.index.has_duplicates or not series.index.is_monotonic_increasing:
        raise DataError(f"data.series.{name}: dates in {path} must be unique and sorted")
    if frequency == "Q" and spec.frequency != "Q":
        raise DataError(
            f"data.series.{name}: a quarterly experiment needs quarterly series; this one is "
            f"{spec.frequency!r}"
        )
    _one_per_period(series, lines, spec, name, path)
    if frequency == "Q":
        return pd.Series(series.to_numpy(), index=series.index.to_period("Q").start_time,
                         name=name)  # fmt: skip
    if spec.frequency == "M":  # any day of the month: dated at its start
        series.index = series.index.to_period("M").start_time
    return to_monthly(series, spec.frequency)


def _one_per_period(
    series: pd.Series, lines: pd.Series, spec: UserSeries, name: str, path: Path
) -> None:
    """A monthly or quarterly file holds one value per month or quarter: two in one period mean
    the file is of a finer frequency than declared (a monthly file declared quarterly)."""
    if spec.frequency == "D":
        return
    periods = series.index.to_period(spec.frequency)
    repeated = periods.duplicated()
    if not repeated.any():
        return
    i = int(np.flatnonzero(repeated)[0])
    first = int(np.flatnonzero(periods == periods[i])[0])
    finer = {"Q": "'M' (monthly) or 'D' (daily)", "M": "'D' (daily, averaged to months)"}
    word = {"Q": "quarter", "M": "month"}[spec.frequency]
    raise DataError(
        f"data.series.{name}: {path} has two values in the {word} {periods[i]} (lines "
        f"{lines.iloc[first]} and {lines.iloc[i]}): it is not {word}ly as declared "
        f"(frequency = {spec.frequency!r}); set data.series.{name}.frequency to {finer[spec.frequency]}"
    )


def _base_dirs(exp: Experiment, data_dir: Path, experiment_dir: Path | None) -> list[Path]:
    """Where declared files are looked up: `experiment_dir`, the experiment file's folder, the
    data directory."""
    base_dirs = [experiment_dir] if experiment_dir is not None else []
    if exp.path:
        base_dirs.append(Path(exp.path).resolve().parent)
    return [*base_dirs, Path(data_dir)]


def user_series(
    exp: Experiment, data_dir: Path, experiment_dir: Path | None = None
) -> dict[str, pd.Series]:
    """Every series the experiment declares and uses, by name (an empty dict when it declares
    none; a declared series no variable refers to is not read); files are looked up beside the
    experiment file (`experiment_dir`, default: its folder), then in the data directory."""
    base_dirs = _base_dirs(exp, data_dir, experiment_dir)
    used = variables(exp)
    return {
        name: read_user_series(spec, name, base_dirs, exp.data.frequency)
        for name, spec in exp.data.series.items()
        if name in used
    }


def variables(exp: Experiment) -> list[str]:
    """Every variable name the experiment's data section refers to (target, factors, assets,
    transforms and what they are computed from)."""
    d = exp.data
    names = [d.target, *d.factors, *d.assets, *d.transforms]
    names += [t.of for t in d.transforms.values()]
    return list(dict.fromkeys(names))


def _used_columns(exp: Experiment, columns: Mapping[str, pd.Series] | None) -> dict:
    """The DataFrame columns `exp` names, on nanosecond dates like every other series (so a
    frame, and its data hash, never depend on the unit the user's index happened to have)."""
    names = variables(exp)
    return {
        k: v.set_axis(pd.DatetimeIndex(v.index).as_unit("ns"))
        for k, v in (columns or {}).items()
        if k in names
    }


def column_hash(series: pd.Series) -> str:
    """sha256 of a DataFrame column's dates and values (its label among a run's data inputs)."""
    h = hashlib.sha256()
    h.update(np.asarray(pd.DatetimeIndex(series.index).as_unit("ns").asi8).tobytes())
    h.update(np.ascontiguousarray(series.to_numpy(dtype=float)).tobytes())
    return h.hexdigest()


def _inputs(reads: Mapping[str, tuple[str, str]], columns: Mapping[str, pd.Series]) -> dict:
    """A frame's data inputs: `data_files` (label -> absolute path) and `data_inputs` (label ->
    sha256), the files read and the DataFrame columns used."""
    return {
        "data_files": {label: path for label, (path, _) in sorted(reads.items())},
        "data_inputs": {
            **{label: digest for label, (_, digest) in reads.items()},
            **{COLUMN + name: column_hash(col) for name, col in columns.items()},
        },
    }


def experiment_frame(
    exp: Experiment,
    data_dir: Path,
    *,
    experiment_dir: Path | None = None,
    columns: dict[str, pd.Series] | None = None,
) -> FitFrame:
    """The experiment's fit frame from the data directory, its declared files and transforms;
    `columns` (a DataFrame's, in a notebook) are used before declared files and the catalog.
    Its attrs record the data inputs (`data_files`: where each file was read; `data_inputs`:
    the sha256 of each file and column), for the run's manifest and reuse key."""
    d = exp.data
    used = _used_columns(exp, columns)
    with recording_reads() as reads:
        supplied = {**user_series(exp, data_dir, experiment_dir), **used}
        frame = build_frame(
            d.target,
            d.factors,
            d.start_ts,
            d.end_ts,
            data_dir,
            predict_end=d.predict_end,
            min_obs=d.min_obs,
            frequency=d.frequency,
            transforms=d.transforms,
            supplied=supplied,
            assets=d.assets,
            asset_factors=d.asset_factors,
        )
    if d.target in d.series:  # the user's own series: its units, never a catalog namesake's
        frame = dataclasses.replace(frame, units=d.series[d.target].units)
    frame.attrs.update(_inputs(reads, used))
    return frame


def data_inputs(
    exp: Experiment,
    data_dir: Path,
    *,
    experiment_dir: Path | None = None,
    columns: dict[str, pd.Series] | None = None,
) -> dict[str, str]:
    """The sha256 of every data input the experiment reads (label -> digest, as a run's
    manifest records them), found by reading its variables without the window's checks: the
    data part of a reuse key. Data that cannot be read give one label naming the problem (a
    run of it fails, so nothing is reused)."""
    used = _used_columns(exp, columns)
    with recording_reads() as reads:
        try:
            supplied = {**user_series(exp, data_dir, experiment_dir), **used}
            load = make_loader(data_dir, exp.data.frequency)
            for name in [exp.data.target, *exp.data.factors, *exp.data.assets]:
                compute_variable(name, load, exp.data.transforms, supplied)
        except RegimesError as exc:
            return {"unreadable": hashlib.sha256(str(exc).encode()).hexdigest()}
    return _inputs(reads, used)["data_inputs"]


def used_variables(exp: Experiment) -> list[str]:
    """The variables whose data the experiment reads: target, assets and factors, a declared
    transform replaced by what it is computed from (each named once, in order)."""
    d = exp.data
    out: list[str] = []
    for name in [d.target, *d.assets, *d.factors]:
        while name in d.transforms:
            name = d.transforms[name].of
        if name not in out:
            out.append(name)
    return out


def data_sources(
    exp: Experiment,
    data_dir: Path,
    *,
    experiment_dir: Path | None = None,
    columns: dict[str, pd.Series] | None = None,
) -> list[dict[str, str]]:
    """What each variable's data were actually read from, for the manifest, the report and the
    figures' source line: a DataFrame column or the researcher's file (with its sha256), which
    take precedence over a catalog series of the same name exactly as when the frame is built,
    else the catalog series behind it (id, description, publisher)."""
    columns = columns or {}
    base_dirs = _base_dirs(exp, data_dir, experiment_dir)
    out: list[dict[str, str]] = []
    for name in used_variables(exp):
        if name in columns:
            out.append({"variable": name, "source": "DataFrame", "column": name,
                        "sha256": column_hash(columns[name])})  # fmt: skip
        elif name in exp.data.series:
            path = _locate(exp.data.series[name], name, base_dirs)
            with open(path, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            out.append({"variable": name, "source": "file", "file": str(path), "sha256": digest})
        else:
            for sid in catalog_series(name):
                s = CATALOG[sid]
                out.append({"variable": name, "source": "catalog", "series": sid,
                            "description": s.description, "publisher": s.publisher})  # fmt: skip
    return out


def credit(source: dict[str, str]) -> str:
    """One source as a memo credits it: the researcher's own file or DataFrame column with the
    start of its sha256, else the catalog series' publisher."""
    digest = source.get("sha256", "")[:12]
    if source["source"] == "file":
        return f"your file `{Path(source['file']).name}` (sha256 {digest})"
    if source["source"] == "DataFrame":
        return f"your DataFrame column `{source['column']}` (sha256 {digest})"
    return source.get("publisher", "")


def credits(sources: list[dict[str, str]]) -> list[str]:
    """Each distinct credit of `sources`, in order (a publisher named once)."""
    out: list[str] = []
    for source in sources:
        text = credit(source)
        if text and text not in out:
            out.append(text)
    return out


def described(name: str, sources: list[dict[str, str]]) -> str:
    """A variable in words for titles and long names: the catalog series' (or factor's)
    description up to its first comma ("Federal funds rate"), else its own name: always its own
    name when it came from your file or DataFrame, whatever the catalog holds under that name."""
    if any(s.get("variable") == name and s.get("source") != "catalog" for s in sources):
        return name
    if name in fx.FACTORS:
        return fx.FACTORS[name].description.split(",")[0]
    ids = catalog_series(name)
    return CATALOG[ids[0]].description.split(",")[0] if ids else name
