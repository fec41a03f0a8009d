"""Series from the researcher's own files (`[data.series.NAME]` in an experiment): validated,
aligned like catalog series, fitted from the CLI, and found again when the run is reopened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes.config import load_experiment
from regimes.errors import DataError
from regimes.userdata import user_series

EXPERIMENT = """
model = "static_fair_value"
[options]
transform = "level"
errors = "iid"
[data]
target = "my_asset"
factors = ["my_factor", "my_quarterly"]
start = "2001-01"
end = "2008-12"
[data.series.my_asset]
file = "mine.csv"
[data.series.my_factor]
file = "mine.csv"
value_column = "factor"
[data.series.my_quarterly]
file = "quarterly.csv"
date_column = "quarter"
value_column = "q"
frequency = "Q"
[sampler]
draws = 60
tune = 60
chains = 2
[outputs]
figures = false
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    months = pd.date_range("2000-01-31", periods=120, freq="ME")  # month ends: any day works
    x = np.cumsum(rng.normal(0, 1, 120))
    asset = 5 + 2 * x + rng.normal(0, 0.3, 120)  # never exactly collinear: refused
    pd.DataFrame({"date": months.strftime("%Y-%m-%d"), "my_asset": asset, "factor": x}).to_csv(
        tmp_path / "mine.csv", index=False
    )
    quarters = pd.date_range("1999-01-01", periods=44, freq="QS")
    pd.DataFrame({"quarter": quarters.strftime("%Y-%m"), "q": np.arange(44.0)}).to_csv(
        tmp_path / "quarterly.csv", index=False
    )
    (tmp_path / "mine.toml").write_text(EXPERIMENT, encoding="utf-8")
    return tmp_path


def test_declared_files_are_read_and_aligned(folder: Path, data_dir: Path) -> None:
    exp = load_experiment(folder / "mine.toml")
    got = user_series(exp, data_dir)
    assert got["my_asset"].index[0] == pd.Timestamp("2000-01-01")  # dated at month starts
    q = got["my_quarterly"]
    # a quarter's value is known from the month after it ends (no look-ahead), held 3 months
    assert q[pd.Timestamp("1999-04-01")] == 0.0 and q[pd.Timestamp("1999-07-01")] == 1.0
    assert np.isnan(q.get(pd.Timestamp("1999-03-01"), np.nan))


def test_bad_user_files_are_one_clear_error(folder: Path, data_dir: Path) -> None:
    exp = load_experiment(folder / "mine.toml")
    (folder / "mine.csv").write_text("date,my_asset,factor\n2001-01,x,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.series\.my_asset: non-numeric value on line 2"):
        user_series(exp, data_dir)
    (folder / "mine.csv").unlink()
    with pytest.raises(DataError, match=r"data\.series\.my_asset: file 'mine\.csv' not found"):
        user_series(exp, data_dir)


def test_user_file_experiment_runs_from_the_cli(folder: Path, tmp_path: Path) -> None:
    """A quick run from the CLI whose factor is your file under a catalog series' name (GS10):
    the manifest, report.html and every figure's source line credit your file with its sha256,
    never the catalog's publisher, and every figure carries the quick-run mark."""
    text = EXPERIMENT.replace("my_factor", "GS10").replace("figures = false", "figures = true")
    (folder / "mine.toml").write_text(text + "[sampler.quick]\ndraws = 60\ntune = 60\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "regimes.cli", "run", str(folder / "mine.toml"), "--out", str(out),
         "--no-progress", "--quick"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    from regimes.reopen import run_config, run_frame
    from regimes.results import open_run, sha256_file

    run = open_run(proc.stdout.strip().splitlines()[-1])  # the run directory: the last line
    assert "QUICK RUN — not for citation" in proc.stdout  # after the short summary
    derived = run.derived()
    slope = float(derived["coef"].sel(term="GS10", quantile=0.5))
    assert abs(slope - 2.0) < 0.05
    frame = run_frame(run, run_config(run))  # the user files are found again, data hash equal
    assert frame.data_hash() == run.manifest["data_hash"]

    digest = sha256_file(folder / "mine.csv")
    sources = {s["variable"]: s for s in run.manifest["data_sources"]}
    assert sources["GS10"] == {"variable": "GS10", "source": "file",
                               "file": str(folder / "mine.csv"), "sha256": digest}  # fmt: skip
    credit = f"your file `mine.csv` (sha256 {digest[:12]})"
    publisher = "Federal Reserve"  # GS10's publisher in the catalog: never credited here
    report = (run.path / "report.html").read_text(encoding="utf-8")
    assert digest in report and credit in report and publisher not in report
    svgs = sorted((run.path / "figures").glob("*.svg"))
    assert {"fair_value", "ppc", "rank", "trace", "forest"} <= {p.stem for p in svgs}
    source = (run.path / "figures" / "fair_value.svg").read_text(encoding="utf-8")
    assert f"Source: {credit}" in source and publisher not in source
    for svg in svgs:  # the text of every figure, as matplotlib keeps it in the SVG
        assert "QUICK RUN — not for citation" in svg.read_text(encoding="utf-8"), svg.name
