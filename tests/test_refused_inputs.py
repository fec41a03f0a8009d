"""Issue 31, items 2, 3 and 6: degenerate data never reaches a model, no input the issue lists
ends in a traceback, and the lax or unclear cases are clear. Each case is one `regimes: error:`
line, exit 2 and nothing written (or the plain API error), found before any sampling: no test
here samples."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from handmade_runs import make_run
from regimes.cli import main
from regimes.config import SHIPPED_MODELS, load_experiment, run_version
from regimes.errors import ConfigError, DataError, RegimesError

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = f"""name = "mine"
model = "{SHIPPED_MODELS / "static_fair_value.toml"}"
[options]
transform = "level"
errors = "iid"
[data]
target = "asset"
factors = ["factor"]
start = "2012-01"
end = "2019-12"
[data.series.asset]
file = "mine.csv"
frequency = "{{frequency}}"
[data.series.factor]
file = "mine.csv"
frequency = "{{frequency}}"
[sampler.quick]
draws = 40
tune = 40
chains = 1
[outputs]
figures = false
"""


def table(n: int = 132) -> pd.DataFrame:
    """Monthly 2010-01.. : an asset priced by a factor, with noise (fits cleanly)."""
    rng = np.random.default_rng(11)
    factor = np.cumsum(rng.normal(0, 1, n))
    dates = pd.date_range("2010-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    return pd.DataFrame(
        {"date": dates, "asset": 50 + 3 * factor + rng.normal(0, 1, n), "factor": factor}
    )


def experiment(folder: Path, data: pd.DataFrame, frequency: str = "M") -> Path:
    data.to_csv(folder / "mine.csv", index=False)
    path = folder / "mine.toml"
    path.write_text(EXPERIMENT.replace("{frequency}", frequency), encoding="utf-8")
    return path


def cli(argv: list[str]) -> tuple[int, list[str]]:
    """`main(argv)` (which must not raise) and its stderr lines."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue().strip().splitlines()


def refused(argv: list[str], *words: str) -> str:
    """The one error line of a refused command (exit 2), checked to name `words`."""
    code, lines = cli(argv)
    errors = [line for line in lines if line.startswith("regimes: error:")]
    assert code == 2 and len(errors) == 1, lines
    assert "Traceback" not in "\n".join(lines)
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def run_refused(folder: Path, data_dir: Path, *words: str) -> str:
    out = folder / "out"
    line = refused(["run", str(folder / "mine.toml"), "--quick", "--no-progress", "--out",
                    str(out), "--data-dir", str(data_dir)], *words)  # fmt: skip
    assert not out.exists()  # nothing written
    return line


# ------------------------------------------------------------------ item 2: degenerate data


def _cell(value: str, column: str = "asset", row: int = 40):
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
        return df

    return change


DEGENERATE = {
    "inf in the user file": (_cell("inf"), ["not finite", "line 42"]),
    "1e400 in the user file": (_cell("1e400"), ["not finite", "line 42"]),
    "a constant target": (lambda df: df.assign(asset=7.0), ["asset is constant"]),
    "a constant factor": (lambda df: df.assign(factor=-1.5), ["factor is constant"]),
    "values times 1e300": (lambda df: df.assign(asset=df["asset"] * 1e300), ["larger than 1e+100"]),
    "a factor equal to the target": (lambda df: df.assign(factor=df["asset"]), ["collinear"]),
    "x and 2x + 1": (lambda df: df.assign(asset=2 * df["factor"] + 1), ["asset and factor"]),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_data_is_refused_before_any_model(
    case: str, tmp_path: Path, data_dir: Path
) -> None:
    change, words = DEGENERATE[case]
    experiment(tmp_path, change(table()))
    run_refused(tmp_path, data_dir, *words)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda df: df.tz_localize("UTC"), "time zone UTC"),
        (lambda df: pd.concat([df, df.iloc[[3]]]).sort_index(), "repeats the date 2010-04-01"),
        (_cell("n/a", row=pd.Timestamp("2015-03-01")), "column 'asset' holds text: 'n/a'"),
        (lambda df: df.assign(factor=np.where(df.index.year == 2014, np.inf, df["factor"])),
         "not finite"),
    ],
    ids=["tz-aware index", "duplicate labels", "text in an object column", "inf in a column"],
)  # fmt: skip
def test_run_dataframe_refuses_unusable_frames(
    change, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regimes import api

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted")

    monkeypatch.setattr(api, "fit_and_write", no_fit)
    path = experiment(tmp_path, table())
    df = table().assign(date=lambda d: pd.to_datetime(d["date"])).set_index("date")
    with pytest.raises(DataError, match=words.replace("(", r"\(")):
        api.run_dataframe(change(df), path, out=tmp_path / "out", quick=True)


# ------------------------------------------------------------------ item 3: no traceback


@pytest.mark.parametrize(
    ("change", "frequency", "words"),
    [
        (lambda df: df.assign(date=["1500-01-01", *df["date"][1:]]), "M",
         ["date outside 1677-09-22..2262-04-11", "line 2"]),
        (lambda df: df.assign(date=[*df["date"][:-1], "2300-01-01"]), "M",
         ["date outside", "line 133"]),
        (lambda df: df, "Q", ["two values in the quarter 2010Q1", "lines 2 and 3",
                              "frequency to 'M'"]),
    ],
    ids=["before 1677", "after 2262", "monthly file declared quarterly"],
)  # fmt: skip
def test_dates_and_frequencies_are_one_line(
    change, frequency: str, words: list[str], tmp_path: Path, data_dir: Path
) -> None:
    experiment(tmp_path, change(table()), frequency)
    run_refused(tmp_path, data_dir, *words)


@pytest.mark.parametrize(
    ("key", "value"),
    [("draws", 10**9), ("tune", 10**9), ("chains", 10000), ("seed", -1), ("seed", 2**64)],
)
def test_sampler_sizes_and_seeds_are_bounded(key: str, value: int, tmp_path: Path) -> None:
    path = experiment(tmp_path, table())
    text = path.read_text(encoding="utf-8").replace("[sampler.quick]", f"[sampler]\n{key} = {value}\n[sampler.quick]")  # fmt: skip
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"sampler.{key}"):
        load_experiment(path)


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_a_seed_override_is_validated_like_the_config(seed: int, tmp_path: Path) -> None:
    """`--seed -1` and `--seed 2**64` slipped through `model_copy` (no validation)."""
    exp = load_experiment(experiment(tmp_path, table()))
    with pytest.raises(ConfigError, match=f"--seed {seed}: the seed must be a whole number"):
        run_version(exp, seed=seed)
    refused(["run", str(tmp_path / "mine.toml"), "--seed", str(seed), "--out",
             str(tmp_path / "out")], "--seed")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_before_sampling(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regimes import api

    def no_fit(*args, **kwargs):
        raise AssertionError("sampled before the --out check")

    monkeypatch.setattr(api, "fit_frame", no_fit)
    experiment(tmp_path, table())
    (tmp_path / "taken").write_text("a file\n", encoding="utf-8")
    refused(["run", str(tmp_path / "mine.toml"), "--quick", "--out", str(tmp_path / "taken"),
             "--data-dir", str(data_dir)], "--out", "is a file")  # fmt: skip
    refused(["run", str(tmp_path / "mine.toml"), "--quick", "--out",
             str(tmp_path / "taken" / "below"), "--data-dir", str(data_dir)], "is a file")  # fmt: skip


def test_long_paths_are_one_line_everywhere(tmp_path: Path, data_dir: Path) -> None:
    long = "x" * 5000
    path = experiment(tmp_path, table())
    text = path.read_text(encoding="utf-8").replace('file = "mine.csv"', f'file = "{long}"', 1)
    path.write_text(text, encoding="utf-8")
    run_refused(tmp_path, data_dir, "data.series.asset", "not a usable file name")
    refused(["diagnose", str(tmp_path / long)], "not a usable path")
    refused(["forecast", str(tmp_path / long)], "not a usable path")
    refused(["run", str(tmp_path / long)], "not a usable file name")
    refused(["data", "list", "--data-dir", long], "not a usable path")


def test_forecast_horizon_is_bounded(tmp_path: Path) -> None:
    """`forecast --horizon 100000` asked for more memory than the machine has."""
    run = make_run(tmp_path, "r1", 1.0)
    refused(["forecast", str(run), "--horizon", "100000"], "--horizon must be from 1 to 1200")


def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file\n", encoding="utf-8")
    env = {**os.environ, "REGIMES_CACHE_DIR": str(blocker)}
    proc = subprocess.run([sys.executable, "-m", "regimes.cli", "data", "list"], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("regimes: error: compile cache folder") and "REGIMES_CACHE_DIR" in line


def test_a_truncated_study_json_is_one_line(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.toml").write_text('title = "t"\n', encoding="utf-8")
    (study / "study.json").write_text('{"runs": {"a": {"stat', encoding="utf-8")
    refused(["report", str(study)], "study.json", "unreadable or corrupt")


# ------------------------------------------------------------------ item 6: lax or unclear


def test_a_nan_cell_is_a_missing_value_like_nan_and_na(tmp_path: Path, data_dir: Path) -> None:
    from regimes.userdata import user_series

    df = table().astype({"asset": object})
    df.loc[[0, 1, 2], "asset"] = ["NaN", "nan", "NA"]  # 2010, before the window
    exp = load_experiment(experiment(tmp_path, df))
    assert user_series(exp, data_dir)["asset"].first_valid_index() == pd.Timestamp("2010-04-01")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ('model = "ms_mean"\n[options]\nk_regimes = true', "options.k_regimes"),
        ('model = "ms_mean"\n[options]\nregime_names = ["", "b"]',
         "key 'options.regime_names': every regime name must be a non-empty name"),
        ('model = "ms_mean"\n[options]\nregime_names = ["a", "a"]',
         "key 'options.regime_names': regime_names must be distinct ('a' repeated)"),
    ],
    ids=["k_regimes = true", "an empty regime name", "repeated regime names"],
)  # fmt: skip
def test_regime_options_are_strict(options: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "e.toml"
    body = '[data]\ntarget = "gold"\nstart = "2000-01"\nend = "2010-12"\n'
    path.write_text(options.replace("[options]", body + "[options]"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert words in str(err.value) and "found {" not in str(err.value)


def test_lfo_threshold_and_comparisons_are_checked(tmp_path: Path) -> None:
    a, b = make_run(tmp_path, "a", 1.0), make_run(tmp_path, "b", 2.0)
    refused(["lfo", str(a), "--k-threshold", "nan"], "--k-threshold must be a finite number")
    refused(["compare", str(a), str(b), "--lfo", "--k-threshold", "inf"], "--k-threshold")
    refused(["compare", str(a), str(a)], "given twice")
    refused(["compare", str(a), str(a.parent / "." / a.name), "--lfo"], "given twice")
    refused(["report", "--compare", str(a), str(a)], "given twice")


def test_a_data_dir_that_is_a_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "data.csv"
    file.write_text("x\n", encoding="utf-8")
    monkeypatch.setenv("REGIMES_DATA_DIR", str(file))
    refused(["data", "list"], "REGIMES_DATA_DIR", "is a file, not a folder")
    refused(["data", "check", "--data-dir", str(file)], "--data-dir", "is a file, not a folder")


def test_a_folder_is_not_reported_as_not_found(tmp_path: Path, data_dir: Path) -> None:
    path = experiment(tmp_path, table())
    (tmp_path / "adir").mkdir()
    text = path.read_text(encoding="utf-8").replace('file = "mine.csv"', 'file = "adir"', 1)
    path.write_text(text, encoding="utf-8")
    run_refused(tmp_path, data_dir, "is a folder, not a file")
    from regimes.forecast import load_scenario

    with pytest.raises(RegimesError, match="is a folder, not a file"):
        load_scenario(tmp_path / "adir", ["factor"])


def test_control_characters_are_never_echoed_raw(tmp_path: Path) -> None:
    code, lines = cli(["diagnose", str(tmp_path / "a\x00b\x1b[31m")])
    assert code == 2 and len(lines) == 1
    assert "\x00" not in lines[0] and "\x1b" not in lines[0] and "\\x00" in lines[0]


def test_a_user_series_named_like_a_catalog_id_is_the_users(tmp_path: Path, data_dir: Path) -> None:
    from regimes.api import source_line
    from regimes.userdata import data_sources, experiment_frame

    df = table().rename(columns={"asset": "GOLD"})
    path = experiment(tmp_path, df)
    text = path.read_text(encoding="utf-8").replace('target = "asset"', 'target = "GOLD"')
    text = text.replace("[data.series.asset]", '[data.series.GOLD]\nunits = "my units"')
    path.write_text(text, encoding="utf-8")
    exp = load_experiment(path)
    frame = experiment_frame(exp, data_dir)
    assert frame.units == "my units"  # not the catalog's "USD per troy oz"
    np.testing.assert_allclose(frame.y[frame.fit.to_numpy()].iloc[:3], df["GOLD"].iloc[24:27])
    line = source_line(exp, data_sources(exp, data_dir))
    assert "your file `" in line and "Pink Sheet" not in line
    assert set(frame.attrs["data_inputs"]) == {"data.series.GOLD", "data.series.factor"}
