"""Tests for loading series from a data directory: conventions, validation errors, caching."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from regimes.data import check_data_dir, load_series, resolve_data_dir
from regimes.data.sources import clear_cache, fetched_path, fiscal_year_end
from regimes.errors import DataError, UnknownSeriesError

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "data" / "snapshot"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """A writable copy of the tiny fixture snapshot."""
    target = tmp_path / "data"
    shutil.copytree(FIXTURE, target)
    return target


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- data dir


def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REGIMES_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("REGIMES_DATA_DIR")
    default = resolve_data_dir(None)
    assert default.name == "data" and "regimes" in str(default)


# ----------------------------------------------------------------------------- conventions


def test_monthly_series_is_float_sorted_named_without_nans() -> None:
    cpi = load_series("CPIAUCSL", FIXTURE)
    assert cpi.name == "CPIAUCSL"
    assert cpi.dtype == "float64"
    assert isinstance(cpi.index, pd.DatetimeIndex)
    assert cpi.index.is_monotonic_increasing and not cpi.index.has_duplicates
    assert pd.Timestamp("2020-05-01") not in cpi.index  # empty cell dropped
    assert cpi.index[0] == pd.Timestamp("2019-11-01")
    assert cpi.index[-1] == pd.Timestamp("2020-06-01")
    assert cpi[pd.Timestamp("2020-01-01")] == pytest.approx(259.127)
    assert cpi.notna().all()
    gold = load_series("GOLD", FIXTURE)
    assert len(gold) == 8 and gold.iloc[-1] == pytest.approx(1732.22)


def test_quarterly_series_dated_first_day_of_quarter() -> None:
    gdpc1 = load_series("GDPC1", FIXTURE)
    assert list(gdpc1.index.strftime("%Y-%m-%d")) == [
        "2019-07-01", "2019-10-01", "2020-01-01", "2020-07-01",
    ]  # fmt: skip


def test_fiscal_year_series_dated_at_month_the_fiscal_year_ends() -> None:
    deficit = load_series("FYFSD", FIXTURE)
    assert list(deficit.index.strftime("%Y-%m-%d")) == [
        "1975-06-01", "1976-06-01", "1977-09-01", "1978-09-01",
    ]  # fmt: skip
    assert deficit[pd.Timestamp("1977-09-01")] == -53659.0
    assert fiscal_year_end(2020) == pd.Timestamp("2020-09-01")
    assert fiscal_year_end(1976) == pd.Timestamp("1976-06-01")
    assert len(load_series("FYOIGDA188S", FIXTURE)) == 3


def test_year_month_dates() -> None:
    gold = load_series("GOLD_LONG", FIXTURE)
    assert gold.index[0] == pd.Timestamp("1833-01-01") and len(gold) == 3


# ----------------------------------------------------------------------------- errors


def test_missing_file_names_file_and_remedies(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_series("GS10", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "us_macro_monthly.csv") in message
    assert "regimes data fetch GS10" in message
    assert "data_dir=" in message and "REGIMES_DATA_DIR" in message  # the CLI: --data-dir


def test_missing_file_of_snapshot_only_series_says_not_downloadable(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot be downloaded") as info:
        load_series("SP500", tmp_path / "nowhere")
    assert "does not exist" in str(info.value)
    assert "Shiller" in str(info.value)


def test_unknown_series_is_reported() -> None:
    with pytest.raises(UnknownSeriesError, match="GOLD"):
        load_series("GOLDD", FIXTURE)


def test_missing_column(snapshot: Path) -> None:
    with pytest.raises(DataError) as info:
        load_series("DGS10", snapshot)
    message = str(info.value)
    assert "'DGS10_mavg'" in message and "us_macro_monthly.csv" in message
    assert "series DGS10" in message


def test_unparseable_date(snapshot: Path) -> None:
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-01-01,1\n2020-13-01,2\n")
    with pytest.raises(DataError, match=r"unparseable date '2020-13-01'.*line 3"):
        load_series("GDP", snapshot)


def test_unsorted_dates(snapshot: Path) -> None:
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-04-01,1\n2020-01-01,2\n")
    with pytest.raises(DataError, match=r"not sorted.*2020-01-01.*after 2020-04-01"):
        load_series("GDP", snapshot)


def test_duplicate_dates(snapshot: Path) -> None:
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-01-01,1\n2020-01-01,2\n")
    with pytest.raises(DataError, match=r"duplicate date 2020-01-01"):
        load_series("GDP", snapshot)


def test_duplicate_fiscal_year(snapshot: Path) -> None:
    write(snapshot / "us_fiscal_annual.csv", "fiscal_year,FYFSD,FYOIGDA188S\n1980,1,2\n1980,3,4\n")
    with pytest.raises(DataError, match="duplicate date 1980-09-01"):
        load_series("FYFSD", snapshot)


def test_non_numeric_cell_names_series_date_and_value(snapshot: Path) -> None:
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-01-01,1.5\n2020-04-01,12,3\n")
    # a stray comma makes an extra field: pandas refuses the ragged row
    with pytest.raises(DataError):
        load_series("GDP", snapshot)
    clear_cache()
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-01-01,1.5\n2020-04-01,n/a\n")
    with pytest.raises(DataError) as info:
        load_series("GDP", snapshot)
    message = str(info.value)
    assert "series GDP" in message and "2020-04-01" in message and "'n/a'" in message


def test_quarterly_date_not_on_quarter_start(snapshot: Path) -> None:
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-01-01,1\n2020-05-01,2\n")
    with pytest.raises(DataError, match="not the first day of a quarter"):
        load_series("GDP", snapshot)


def test_monthly_date_not_on_month_start(snapshot: Path) -> None:
    write(snapshot / "us_macro_monthly.csv", "date,GS10\n2020-01-01,1\n2020-02-15,2\n")
    with pytest.raises(DataError, match="not the first day of a month"):
        load_series("GS10", snapshot)


def test_missing_markers_are_missing(snapshot: Path) -> None:
    write(snapshot / "us_macro_monthly.csv", "date,GS10\n2020-01-01,.\n2020-02-01, 2.5 \n")
    gs10 = load_series("GS10", snapshot)
    assert list(gs10) == [2.5]


# ----------------------------------------------------------------------------- cache


def test_each_file_is_read_once(monkeypatch: pytest.MonkeyPatch, snapshot: Path) -> None:
    calls: list[str] = []
    original = pd.read_csv

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counting)
    for sid in ("GOLD", "GS10", "CPIAUCSL", "GOLD"):
        load_series(sid, snapshot)
    assert len(calls) == 1
    # rewriting the file invalidates the cache
    path = snapshot / "us_macro_monthly.csv"
    write(path, "date,GS10\n2020-01-01,9.5\n")
    os.utime(path, ns=(1, 1))
    assert list(load_series("GS10", snapshot)) == [9.5]
    assert len(calls) == 2


# ----------------------------------------------------------------------------- fetched copies


def test_fetched_copy_used_only_when_snapshot_file_missing(snapshot: Path) -> None:
    write(fetched_path(snapshot, "GS10"), "date,value\n2021-01-01,1.08\n2021-02-01,1.26\n")
    assert load_series("GS10", snapshot).index[0] == pd.Timestamp("2019-11-01")  # snapshot wins
    (snapshot / "us_macro_monthly.csv").unlink()
    clear_cache()
    gs10 = load_series("GS10", snapshot)
    assert list(gs10) == [1.08, 1.26] and gs10.name == "GS10"


def test_fetched_copy_is_validated(tmp_path: Path) -> None:
    write(fetched_path(tmp_path, "GDP"), "date,value\n2021-01-01,1\n2021-01-01,2\n")
    with pytest.raises(DataError, match="duplicate date"):
        load_series("GDP", tmp_path)


# ----------------------------------------------------------------------------- check


def test_check_data_dir_reports_each_series(snapshot: Path) -> None:
    write(snapshot / "us_macro_quarterly.csv", "date,GDP\n2020-04-01,1\n2020-01-01,2\n")
    results = {r.series_id: r for r in check_data_dir(snapshot)}
    gold = results["GOLD"]
    assert gold.ok and gold.present and gold.n_obs == 8
    assert gold.first == pd.Timestamp("2019-11-01") and gold.last == pd.Timestamp("2020-06-01")
    assert results["GDP"].present and "not sorted" in results["GDP"].problem
    assert not results["HAMILTON_RGNP"].present
    assert "not found" in results["HAMILTON_RGNP"].problem
    assert results["DGS10"].present and "not found" in results["DGS10"].problem
    subset = check_data_dir(snapshot, ["UNRATE"])
    assert len(subset) == 1 and subset[0].n_obs == 9


# ----------------------------------------------------------------------------- real snapshot


@pytest.fixture
def real(data_dir: Path) -> Path:
    """The shared snapshot (conftest's `data_dir`, which skips when it is absent)."""
    return data_dir


def test_real_snapshot_all_series_load(real: Path) -> None:
    results = check_data_dir(real)
    problems = [(r.series_id, r.problem) for r in results if not r.ok]
    assert not problems
    by_id = {r.series_id: r for r in results}
    assert by_id["GOLD"].first == pd.Timestamp("1960-01-01")
    assert by_id["HAMILTON_RGNP"].n_obs == 135


def test_real_snapshot_known_values(real: Path) -> None:
    gold = load_series("GOLD", real)
    assert gold[pd.Timestamp("1980-01-01")] == pytest.approx(675.3, abs=0.05)
    assert gold["2024"].mean() == pytest.approx(2388, abs=1)
    tips = load_series("DFII10", real)
    assert tips[pd.Timestamp("2023-10-01")] == pytest.approx(2.41, abs=0.01)
    deficit = load_series("FYFSD", real)
    assert deficit[pd.Timestamp("2020-09-01")] == -3132456.0
    cpi = load_series("CPIAUCSL", real)
    assert pd.Timestamp("2025-10-01") not in cpi.index  # documented gap, not filled
    assert math.isclose(cpi["2022-06-01"] / cpi["2021-06-01"] - 1, 0.0898, abs_tol=5e-4)
    assert load_series("GS1", real).index[-1] == pd.Timestamp("2025-11-01")
