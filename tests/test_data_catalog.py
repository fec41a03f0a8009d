"""Tests for the series catalog: entries are consistent and unknown ids get helpful errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from regimes.data import CATALOG, FredSource, PinkSheetSource, Series, get_series
from regimes.errors import DataError, UnknownSeriesError

REPO = Path(__file__).resolve().parents[1]

REQUIRED_IDS = {
    "GOLD", "SILVER", "PLATINUM", "COPPER", "OIL", "DFII10", "DGS10", "GS10", "T10YIE",
    "REAINTRATREARAT10Y", "FEDFUNDS", "CPIAUCSL", "CPILFESL", "UNRATE", "JTSJOL", "MTSDS133FMS",
    "DTWEXBGS", "TWEXBMTH", "TWEXAFEGSMTHx", "EXJPUS", "SP500", "INDPRO", "GS1", "GDP", "GDPC1",
    "A091RC1Q027SBEA", "GFDEBTN", "FYGFDPUN", "GFDEGDQ188S", "FYFSD", "FYOIGDA188S", "GOLD_LONG",
    "SHILLER_CPI", "SHILLER_GS10", "HAMILTON_RGNP", "HAMILTON_REC", "USMACRO_FEDFUNDS",
    "USMACRO_OGAP", "USMACRO_INF",
}  # fmt: skip


def test_catalog_holds_every_required_id() -> None:
    assert set(CATALOG) >= REQUIRED_IDS
    assert all(key == spec.id for key, spec in CATALOG.items())


@pytest.mark.parametrize("spec", list(CATALOG.values()), ids=list(CATALOG))
def test_entry_is_consistent(spec: Series) -> None:
    assert spec.frequency in ("M", "Q", "A")
    assert spec.native in ("D", "M", "Q", "A")
    assert spec.description and spec.units and spec.publisher and spec.file and spec.column
    assert not Path(spec.file).is_absolute()
    if spec.native == "D":
        assert isinstance(spec.source, FredSource) and spec.source.aggregate == "mean"
        assert spec.frequency == "M"
    if spec.source is None:
        assert spec.origin, f"{spec.id}: non-downloadable series must say where it comes from"
    if spec.frequency == "A":
        assert spec.date_format == "fiscal_year"


def test_sources_of_key_series() -> None:
    assert get_series("GOLD").source == PinkSheetSource("Gold", "($/troy oz)")
    assert get_series("GOLD").source.column == "Gold ($/troy oz)"
    assert get_series("OIL").source.column == "Crude oil, average ($/bbl)"
    assert get_series("DFII10").native == "D"
    assert get_series("DFII10").source == FredSource("DFII10", aggregate="mean")
    assert get_series("GS10").native == "M"
    assert get_series("GDP").frequency == "Q"
    assert get_series("FYFSD").frequency == "A"
    assert get_series("TWEXAFEGSMTHx").source is None
    assert get_series("HAMILTON_RGNP").source is None
    assert get_series("GS1").file == "original/fredmd_2025-12_vintage.csv"


def test_series_is_frozen_and_validated() -> None:
    spec = get_series("GOLD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.id = "X"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frequency"):
        Series("X", "d", "u", "W", "p", "f.csv", "c", None)
    with pytest.raises(ValueError, match="daily"):
        Series("X", "d", "u", "M", "p", "f.csv", "c", FredSource("X"), native="D")


def test_unknown_series_suggests_close_matches() -> None:
    with pytest.raises(UnknownSeriesError) as info:
        get_series("GLOD")
    message = str(info.value)
    assert "'GLOD'" in message and "GOLD" in message and "regimes data list" in message
    assert isinstance(info.value, DataError)


def test_unknown_series_case_mismatch_suggests_exact_id() -> None:
    with pytest.raises(UnknownSeriesError, match="Did you mean GOLD"):
        get_series("gold")
    with pytest.raises(UnknownSeriesError, match="Did you mean CPIAUCSL"):
        get_series("CPIAUSCL")


def test_unknown_series_without_close_match() -> None:
    with pytest.raises(UnknownSeriesError) as info:
        get_series("ZZZZZZZZZZZZ")
    assert "Did you mean" not in str(info.value)
    assert "regimes data list" in str(info.value)


def test_catalog_locations_exist_in_real_snapshot(data_dir: Path) -> None:
    import pandas as pd

    for spec in CATALOG.values():
        path = data_dir / spec.file
        assert path.is_file(), f"{spec.id}: {path} missing"
        header = pd.read_csv(path, nrows=0).columns
        assert spec.column in header, f"{spec.id}: column {spec.column} not in {path}"
        assert spec.date_column in header
    pink = pd.read_csv(data_dir / "worldbank_pinksheet_monthly_prices.csv", nrows=0).columns
    for spec in CATALOG.values():
        if isinstance(spec.source, PinkSheetSource):
            assert spec.source.column in pink
