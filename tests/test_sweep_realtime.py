"""Real-time dating on a hand-made origins sweep whose answer is known: the shift date, the
origins at which the real-time probability passed 0.5 and 0.9, the delays and their bands, the
figure and the realtime.nc written beside sweep.nc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimes.sweep.realtime import (
    REALTIME_NC,
    detection_lines,
    realtime_dataset,
    spell_start,
    write_realtime,
)
from regimes.sweep.spec import Realtime

Q = [0.05, 0.25, 0.5, 0.75, 0.95]
TIME = pd.date_range("2019-01", "2021-06", freq="MS")
ORIGINS = pd.date_range("2020-01", "2021-06", freq="MS")
SHIFT = pd.Timestamp("2020-07")
REALTIME = {  # the new regime's filtered probability at each origin
    **dict.fromkeys(pd.date_range("2020-01", "2020-09", freq="MS"), 0.3),
    pd.Timestamp("2020-10"): 0.6,
    pd.Timestamp("2020-11"): 0.8,
    pd.Timestamp("2020-12"): 0.85,
    **dict.fromkeys(pd.date_range("2021-01", "2021-06", freq="MS"), 0.95),
}


def origins_sweep() -> xr.Dataset:
    """A combined sweep: each origin's smoothed path is the final one up to that origin, except
    at the origin itself, where it is the real-time probability; 5%..95% bands are ±0.108."""
    final = np.where(TIME >= SHIFT, 0.97, 0.04)
    prob = np.full((len(ORIGINS), len(TIME)), np.nan)
    for i, o in enumerate(ORIGINS):
        upto = o >= TIME
        prob[i, upto] = final[upto]
        prob[i, o == TIME] = REALTIME[o]
    new = xr.DataArray(prob, dims=("origin", "time"), coords={"origin": ORIGINS, "time": TIME})
    regime_prob = xr.concat([1 - new, new], dim="regime").assign_coords(regime=["old", "new"])
    shifts = xr.DataArray(np.array(Q) - 0.5, dims="quantile", coords={"quantile": Q}) * 0.24
    regime_prob_q = (regime_prob + shifts).clip(0, 1)
    dev = new * 10.0 + shifts * 10
    return xr.Dataset(
        {
            "price": new * 0 + 1000.0,
            "regime_prob": regime_prob.transpose("origin", "time", "regime"),
            "regime_prob_q": regime_prob_q.transpose("origin", "time", "regime", "quantile"),
            "deviation_pct": dev.transpose("origin", "time", "quantile"),
            "sample_end": ("origin", [f"{o:%Y-%m}" for o in ORIGINS]),
        }
    )


def test_shift_date_and_detection_delays() -> None:
    rt = realtime_dataset(origins_sweep(), Realtime(regime="new"))
    assert rt.attrs["shift_date"] == "2020-07"
    assert rt.attrs["shift_before_first_origin"] == 0
    np.testing.assert_allclose(
        rt["realtime_prob"].sel(regime="new"), [REALTIME[o] for o in ORIGINS]
    )
    det = rt["detection_origin"].to_series()
    assert det[0.5] == pd.Timestamp("2020-10") and det[0.9] == pd.Timestamp("2021-01")
    np.testing.assert_array_equal(rt["detection_delay"], [3.0, 6.0])
    # the 95% quantile (p + 0.108) passes 0.5 at 2020-10 too, 0.9 at 2020-11 (0.908); the 5%
    # quantile (p - 0.108) passes 0.5 at 2020-11 (0.692) and 0.9 never (0.842 at most)
    np.testing.assert_array_equal(rt["detection_delay_lo"], [3.0, 4.0])
    np.testing.assert_array_equal(rt["detection_delay_hi"], [4.0, np.nan])
    assert list(rt["realtime_regime"].values[:9]) == ["old"] * 9
    assert rt["realtime_deviation_pct"].sel(quantile=0.5).values[-1] == pytest.approx(9.5)
    lines = detection_lines(rt)
    assert "shift 2020-07" in lines[0] and "first at origin 2021-01, 6 months" in lines[2]


def test_no_shift_when_the_regime_is_not_in_force_at_the_end() -> None:
    t = pd.date_range("2000-01", periods=6, freq="MS")
    assert pd.isna(spell_start(np.array([0.9, 0.9, 0.2, 0.7, 0.6, 0.3]), t))
    assert spell_start(np.array([0.9, 0.2, 0.7, 0.6, np.nan, np.nan]), t) == t[2]
    assert spell_start(np.array([0.9, 0.9, 0.9]), t[:3]) == t[0]
    rt = realtime_dataset(origins_sweep(), Realtime(regime="old"))
    assert rt.attrs["shift_date"] == ""
    assert np.isnan(rt["detection_delay"]).all()
    assert "no shift into it to date" in detection_lines(rt)[0]


def test_realtime_file_and_figure(tmp_path: Path) -> None:
    origins_sweep().to_netcdf(tmp_path / "sweep.nc", engine="h5netcdf")
    paths = write_realtime(tmp_path, Realtime(regime="new", thresholds=[0.9, 0.5]))
    assert paths[0] == tmp_path / REALTIME_NC
    assert {p.name for p in paths[1:]} == {"realtime.png", "realtime.svg"}
    assert all(p.stat().st_size > 1000 for p in paths)
    with xr.open_dataset(paths[0], engine="h5netcdf") as rt:
        assert list(rt["threshold"].values) == [0.5, 0.9]
        assert rt["final_prob"].sizes["time"] == len(TIME)


def test_origins_with_swapped_labels_are_relabelled_to_the_final_fit() -> None:
    """A fit at some origins calls the regimes the other way round (labels are identified only
    within a fit): the regimes are matched to the final fit's by their smoothed probabilities,
    so the detection dates are those of the consistently labelled sweep."""
    ds = origins_sweep()
    expected = realtime_dataset(ds, Realtime(regime="new"))
    swapped = ds.copy()
    flip = np.isin(ORIGINS, pd.date_range("2020-02", "2020-12", freq="2MS"))
    for name in ("regime_prob", "regime_prob_q"):
        da = ds[name]
        reversed_ = da.isel(regime=[1, 0]).assign_coords(regime=da["regime"].values)
        swapped[name] = xr.where(
            xr.DataArray(flip, dims="origin", coords={"origin": ORIGINS}), reversed_, da
        ).transpose(*da.dims)
    rt = realtime_dataset(swapped, Realtime(regime="new"))
    np.testing.assert_array_equal(rt["relabelled"].values, flip.astype(int))
    assert rt.attrs["relabelled_origins"] == flip.sum()
    for name in ("detection_origin", "detection_delay", "realtime_prob"):
        np.testing.assert_array_equal(rt[name].values, expected[name].values)
    assert rt.attrs["shift_date"] == expected.attrs["shift_date"] == "2020-07"
    assert np.nanmin(rt["label_agreement"].values) > 0.8
    assert any("labels permuted" in line for line in detection_lines(rt))
