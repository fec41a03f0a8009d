"""Tests for monthly alignment (no look-ahead) and the load_monthly / window helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes.data import align_monthly, load_monthly, load_series, to_monthly, window
from regimes.data.sources import clear_cache
from regimes.errors import DataError

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "data" / "snapshot"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


def series(dates: list[str], values: list[float], name: str = "x") -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(dates), name=name, dtype="float64")


def as_dict(s: pd.Series) -> dict[str, float]:
    return {f"{d:%Y-%m}": v for d, v in s.items()}


# ----------------------------------------------------------------------------- rules


def test_monthly_as_is_with_gap_kept_missing() -> None:
    out = to_monthly(series(["2020-01-01", "2020-02-01", "2020-04-01"], [1, 2, 4]), "M")
    assert out.index.freqstr == "MS" and out.name == "x"
    assert list(out.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert out.iloc[[0, 1, 3]].tolist() == [1, 2, 4] and np.isnan(out.iloc[2])


def test_monthly_duplicate_month_rejected() -> None:
    with pytest.raises(DataError, match="two observations in 2020-01"):
        to_monthly(series(["2020-01-01", "2020-01-15"], [1, 2]), "M")


def test_daily_becomes_monthly_mean() -> None:
    daily = series(
        ["2020-01-02", "2020-01-03", "2020-01-31", "2020-02-03", "2020-04-01", "2020-04-02"],
        [1.0, 2.0, 6.0, np.nan, -1.0, -2.0],
    )
    out = to_monthly(daily, "D")
    assert list(out.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert out["2020-01-01"] == pytest.approx(3.0)  # (1 + 2 + 6) / 3
    assert np.isnan(out["2020-02-01"]) and np.isnan(out["2020-03-01"])
    assert out["2020-04-01"] == pytest.approx(-1.5)


def test_quarterly_known_after_quarter_and_forward_filled() -> None:
    quarterly = series(["2019-10-01", "2020-01-01", "2020-04-01"], [10.0, 11.0, 12.0])
    out = to_monthly(quarterly, "Q")
    # 2019Q4 is first usable in 2020-01; 2020Q1 (dated 2020-01-01) in 2020-04; Q2 in 2020-07,
    # and the last release is held for one quarter (to 2020-09).
    assert as_dict(out) == {
        "2020-01": 10.0, "2020-02": 10.0, "2020-03": 10.0,
        "2020-04": 11.0, "2020-05": 11.0, "2020-06": 11.0,
        "2020-07": 12.0, "2020-08": 12.0, "2020-09": 12.0,
    }  # fmt: skip
    assert out.index.freqstr == "MS"


def test_quarterly_missing_release_keeps_latest_known_value() -> None:
    quarterly = series(["2020-01-01", "2020-04-01", "2020-07-01"], [1.0, np.nan, 3.0])
    out = to_monthly(quarterly, "Q")
    assert out["2020-07-01"] == 1.0 and out["2020-09-01"] == 1.0 and out["2020-10-01"] == 3.0


def test_fiscal_year_known_from_month_after_year_end() -> None:
    # FY1976 ended June 1976 (dated 1976-06-01), FY1977 ended September 1977 (1977-09-01).
    annual = series(["1976-06-01", "1977-09-01"], [-73732.0, -53659.0])
    out = to_monthly(annual, "A")
    assert out.index[0] == pd.Timestamp("1976-07-01")
    assert out["1976-07-01":"1977-09-01"].eq(-73732.0).all()
    assert len(out["1976-07-01":"1977-09-01"]) == 15
    assert out["1977-10-01"] == -53659.0
    assert out.index[-1] == pd.Timestamp("1978-09-01")  # held 12 months
    assert out["1977-10-01":].eq(-53659.0).all()


def test_no_look_ahead_for_any_quarter() -> None:
    rng = np.random.default_rng(0)
    quarters = pd.date_range("2000-01-01", periods=20, freq="QS")
    values = pd.Series(rng.normal(size=20), index=quarters)
    out = to_monthly(values, "Q")
    for month, value in out.items():
        released = values[(quarters + pd.DateOffset(months=3)) <= month]
        assert value == released.iloc[-1]  # latest quarter that has ended before `month`


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="frequency"):
        to_monthly(series(["2020-01-01"], [1]), "W")
    with pytest.raises(DataError, match="DatetimeIndex"):
        to_monthly(pd.Series([1.0, 2.0], name="x"), "M")
    with pytest.raises(DataError, match="unique and increasing"):
        to_monthly(series(["2020-04-01", "2020-01-01"], [1, 2]), "Q")
    assert to_monthly(series([], []), "Q").empty


def test_align_monthly_outer_join() -> None:
    frame = align_monthly(
        {
            "m": series(["2020-02-01", "2020-03-01"], [1.0, 2.0]),
            "q": series(["2019-10-01"], [5.0]),
        },
        {"m": "M", "q": "Q"},
    )
    assert list(frame.columns) == ["m", "q"]
    assert frame.index.freqstr == "MS" and frame.index.name == "date"
    assert list(frame.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03"]
    assert np.isnan(frame.loc["2020-01-01", "m"]) and frame.loc["2020-01-01", "q"] == 5.0
    assert frame["q"].tolist() == [5.0, 5.0, 5.0]
    with pytest.raises(ValueError, match="no frequency"):
        align_monthly({"m": series(["2020-01-01"], [1])}, {})
    assert align_monthly({}, "M").empty


# ------------------------------------------------------------------ load_monthly / window


def test_load_monthly_on_fixture_snapshot() -> None:
    frame = load_monthly(["GOLD", "GDP", "FYFSD"], FIXTURE)
    assert list(frame.columns) == ["GOLD", "GDP", "FYFSD"]
    assert frame.index.freqstr == "MS"
    assert frame.loc["2020-04-01", "GDP"] == 21751.238  # 2020Q1 value, known from April
    assert frame.loc["2020-03-01", "GDP"] == 21717.171  # still 2019Q4
    assert frame.loc["1977-10-01", "FYFSD"] == -53659.0
    assert frame.index[0] == pd.Timestamp("1975-07-01")


def test_window_slices_and_counts_complete_rows() -> None:
    frame = load_monthly(["GS10", "CPIAUCSL"], FIXTURE)
    sub = window(frame, "2020-01", "2020-06", min_obs=3, what="test model")
    assert list(sub.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert len(window(frame, None, None, complete=False)) == len(frame)


def test_window_with_too_few_observations() -> None:
    frame = load_monthly(["GS10", "CPIAUCSL"], FIXTURE)
    with pytest.raises(DataError) as info:
        window(frame, "2020-01", "2020-06", min_obs=12, what="gold-rates model")
    message = str(info.value)
    assert "gold-rates model" in message and "2020-01..2020-06" in message
    assert "holds 4 complete observations" in message and "minimum 12" in message
    assert "GS10 2019-11..2020-05" in message


def test_real_snapshot_alignment(data_dir: Path) -> None:
    frame = load_monthly(["GOLD", "DFII10", "GDP", "FYFSD"], data_dir)
    gdp = load_series("GDP", data_dir)
    assert frame.loc["2020-04-01", "GDP"] == gdp[pd.Timestamp("2020-01-01")]
    assert frame.loc["2020-10-01", "FYFSD"] == -3132456.0
    assert frame.loc["2020-09-01", "FYFSD"] != -3132456.0  # FY2020 unknown until October
    sample = window(frame, "2003-01", "2025-12", min_obs=200, what="real-rate model")
    assert sample.notna().all().all() and len(sample) >= 270
