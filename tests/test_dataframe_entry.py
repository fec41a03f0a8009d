"""Your own data in a notebook: `regimes.api.run_dataframe` fits an experiment on a pandas
DataFrame and returns the same `Run` object as a run directory, with the usual data checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes.api import run_dataframe
from regimes.errors import DataError
from regimes.results import Run, open_run

EXPERIMENT = """
model = "static_fair_value"
[options]
transform = "level"
errors = "iid"
[data]
target = "my_asset"
factors = ["my_factor"]
start = "2001-01"
end = "2008-12"
[sampler]
draws = 60
tune = 60
chains = 2
[outputs]
figures = false
"""


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    return path


def own_data(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = np.cumsum(rng.normal(0, 1, n))
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    return pd.DataFrame({"my_asset": 10 + 2 * x + rng.normal(0, 0.5, n), "my_factor": x}, index)


def test_run_dataframe_fits_the_users_columns(
    experiment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = own_data()
    run = run_dataframe(df, experiment, out=tmp_path / "out")
    assert isinstance(run, Run)
    again = open_run(run.path)  # a normal, verified run directory
    derived = again.derived()
    # the columns it used are kept (data.nc, in the manifest), so it reopens like any run
    assert "data.nc" in again.manifest["files"]
    assert set(again.manifest["inputs"]["data"]) == {"DataFrame.my_asset", "DataFrame.my_factor"}
    assert derived.attrs["sample_start"] == "2001-01" and derived.attrs["sample_end"] == "2008-12"
    np.testing.assert_allclose(
        derived["price"].sel(time=slice("2001-01", "2008-12")).values,
        df.loc["2001-01":"2008-12", "my_asset"].values,
    )
    slope = float(derived["coef"].sel(term="my_factor", quantile=0.5))
    assert abs(slope - 2.0) < 0.2  # the simulated sensitivity, recovered
    # reopened from another working directory: forecast (the issue: "unknown series id")
    monkeypatch.chdir(tmp_path.parent)
    from regimes.forecast import forecast_run
    from regimes.reopen import run_config, run_frame

    assert run_frame(again, run_config(again)).data_hash() == again.manifest["data_hash"]
    forecast = forecast_run(run.path, horizon=3)
    assert forecast.sizes["time"] == 3 and np.isfinite(forecast["fair_value"]).all()


def test_run_dataframe_refuses_holes_and_bad_indexes(experiment: Path, tmp_path: Path) -> None:
    df = own_data().drop(pd.Timestamp("2004-06-01"))
    with pytest.raises(DataError, match=r"my_asset .*2004-06"):
        run_dataframe(df, experiment, out=tmp_path / "out")
    with pytest.raises(DataError, match="DatetimeIndex"):
        run_dataframe(own_data().reset_index(), experiment, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_columns_with_a_named_index_are_kept_as_data() -> None:
    """A DataFrame whose index has a name (e.g. `date`, as read_csv(index_col=...) gives) is
    stored in data.nc under each column's own date dimension."""
    from regimes.reopen import columns_dataset

    index = pd.date_range("2000-01-01", periods=4, freq="MS", name="date")
    ds = columns_dataset({"y": pd.Series([1.0, 2.0, 3.0, 4.0], index=index)})
    assert ds["column_0"].dims == ("date_0",) and ds["column_0"].attrs["name"] == "y"
    np.testing.assert_array_equal(ds["date_0"].values, index.values)
