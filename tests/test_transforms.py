"""Transforms declared in a config (`[data.transforms]`: lag, diff, log, growth, rolling mean
of any variable), computed on the series' own periods, validated when the config is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes.config import load_experiment
from regimes.data import load_series
from regimes.dataset import apply_transform, build_frame
from regimes.errors import ConfigError, DataError

S = pd.Series([1.0, 2.0, 4.0, 8.0, 16.0], index=pd.date_range("2000-01-01", periods=5, freq="MS"))


@pytest.mark.parametrize(
    ("op", "periods", "expected"),
    [
        ("lag", 1, [np.nan, 1, 2, 4, 8]),
        ("lag", 2, [np.nan, np.nan, 1, 2, 4]),
        ("diff", 1, [np.nan, 1, 2, 4, 8]),
        ("log", 1, np.log([1, 2, 4, 8, 16])),
        ("growth", 1, [np.nan, 100, 100, 100, 100]),
        ("rolling_mean", 2, [np.nan, 1.5, 3, 6, 12]),
    ],
)
def test_each_transform_by_hand(op: str, periods: int, expected) -> None:
    np.testing.assert_allclose(apply_transform(S, op, periods).to_numpy(), expected)


def test_log_of_non_positive_values_names_the_month() -> None:
    with pytest.raises(DataError, match=r"non-positive value\(s\), first 2000-02"):
        apply_transform(S.where(S != 2.0, -1.0).rename("x"), "log")


def _write(tmp_path: Path, transforms: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(
        'model = "ms_mean"\n[data]\ntarget = "USMACRO_FEDFUNDS"\nfactors = ["a"]\n'
        f'frequency = "Q"\nstart = "1960-01"\nend = "2000-10"\n[data.transforms]\n{transforms}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ('a = { of = "b", op = "lag" }\nb = { of = "a", op = "diff" }', "cycle: a -> b -> a"),
        ('a = { of = "a", op = "lag" }', "cannot be computed from itself"),
        ('a = { of = "GS10", op = "square" }', "op"),
        ('a = { of = "GS10", op = "lag", periods = 0 }', "periods"),
    ],
)
def test_bad_transforms_are_config_errors(tmp_path: Path, transforms: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment(_write(tmp_path, transforms))


def test_chained_transforms_on_quarterly_data(tmp_path: Path, data_dir: Path) -> None:
    """A growth rate of a lag: each step on the series' own quarters."""
    exp = load_experiment(
        _write(
            tmp_path,
            'lagged = { of = "USMACRO_INF", op = "lag", periods = 2 }\n'
            'a = { of = "lagged", op = "diff" }\n',
        )
    )
    d = exp.data
    frame = build_frame(d.target, d.factors, d.start_ts, d.end_ts, data_dir,
                        frequency="Q", transforms=d.transforms)  # fmt: skip
    inf = load_series("USMACRO_INF", data_dir)  # the whole series, before the window's start
    expected = inf.shift(2).diff().reindex(frame.time)
    np.testing.assert_allclose(frame.X["a"].to_numpy(), expected.to_numpy())
