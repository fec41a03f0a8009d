"""Forecasts and scenario paths (`regimes.forecast`, `regimes forecast`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes.forecast import ScenarioError, forecast_run, load_scenario

FACTORS = ("real_rate", "dollar")


def _quick_run(repo_root: Path, data_dir: Path, root: Path, name: str) -> Path:
    from regimes.api import run_experiment

    return run_experiment(
        repo_root / "experiments" / f"{name}.toml",
        data_dir=data_dir,
        out=root / "results",
        quick=True,
        progress=False,
        figures=False,
    ).path


@pytest.fixture(scope="module")
def fedfunds_run(repo_root, data_dir, tmp_path_factory) -> Path:
    return _quick_run(repo_root, data_dir, tmp_path_factory.mktemp("ff"), "textbook/fedfunds")


@pytest.fixture(scope="module")
def static_run(repo_root, data_dir, tmp_path_factory) -> Path:
    return _quick_run(repo_root, data_dir, tmp_path_factory.mktemp("old"), "gold/old_framework")


def _reopen(run_dir: Path):
    from regimes.reopen import run_config, run_frame
    from regimes.results import open_run

    run = open_run(run_dir)
    exp = run_config(run)
    return run, exp, run_frame(run, exp)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _months(start: str, n: int) -> list[str]:
    return list(pd.date_range(start, periods=n, freq="MS").strftime("%Y-%m"))


# --- (a) constant-P Markov: last_filtered · P^h, converging to the stationary distribution


def test_markov_regime_probabilities_are_filtered_times_matrix_power(fedfunds_run) -> None:
    from regimes.families import markov
    from regimes.families.base import Fit

    run, exp, frame = _reopen(fedfunds_run)
    horizon = 400
    ds = forecast_run(fedfunds_run, [], horizon=horizon)
    assert list(ds["scenario"].values) == ["unconditional"]
    assert ds.sizes["time"] == horizon and ds["horizon"].values[0] == 1
    assert "last observed" in ds.attrs["unconditional"]
    tree = run.posterior()
    post = tree["posterior"]
    P = post["P"].stack(sample=("chain", "draw")).transpose("sample", ...).values  # (D, K, K)
    lf = markov.FAMILY.passes(Fit(tree, frame, exp.spec)).last_filtered[:, 0]  # (D, K)
    assert frame.time[-1] == frame.time[frame.fit.to_numpy()][-1]  # no months past the fit
    prob = ds["regime_prob"].sel(scenario="unconditional").values
    for h in (1, 2, 12, 40):
        by_hand = np.einsum("dk,dkj->dj", lf, np.linalg.matrix_power(P, h)).mean(axis=0)
        np.testing.assert_allclose(prob[h - 1], by_hand, rtol=1e-10, atol=1e-12)
    # long horizons: each draw's stationary distribution π = π P, averaged over draws
    stationary = []
    for mat in P:
        w, v = np.linalg.eig(mat.T)
        pi = np.real(v[:, np.argmin(np.abs(w - 1.0))])
        stationary.append(pi / pi.sum())
    np.testing.assert_allclose(prob[-1], np.mean(stationary, axis=0), atol=2e-3)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    q = ds["regime_prob_q"].sel(scenario="unconditional", quantile=[0.05, 0.95]).values
    assert np.all(q[..., 0] <= q[..., 1] + 1e-12)


# --- (b) static level model: fair value along a path is intercept + x'β, held path = unconditional


def test_static_fair_value_along_scenario_by_hand(static_run, tmp_path) -> None:
    run, exp, frame = _reopen(static_run)
    assert exp.spec.family == "static" and exp.spec.options["transform"] == "level"
    last = frame.time[-1]
    n = 6
    months = _months(f"{last + pd.DateOffset(months=1):%Y-%m}", n)
    rr = np.linspace(1.5, 0.5, n)
    usd = np.linspace(110.0, 100.0, n)
    path = _write_csv(
        tmp_path / "falling.csv",
        [
            {"month": m, "real_rate": a, "dollar": b, "ddri": 9.0}  # ddri: known, ignored
            for m, a, b in zip(months, rr, usd, strict=True)
        ],
    )
    ds = forecast_run(static_run, [path], horizon=n)
    assert list(ds["scenario"].values) == ["unconditional", "falling"]
    assert "regime_prob" not in ds
    np.testing.assert_allclose(ds["factor"].sel(scenario="falling", term="real_rate"), rr)
    # by hand, in natural units: standardised on the fit window (the target by its population
    # sd, factors by their sample sd)
    fit = frame.fit.to_numpy()
    y = frame.y.to_numpy()[fit]
    post = run.posterior()["posterior"].to_dataset().stack(sample=("chain", "draw"))
    a = post["intercept"].values
    b = post["beta"].transpose("sample", "term").values
    terms = list(post["term"].values)
    x = np.column_stack([rr, usd])[:, [list(FACTORS).index(t) for t in terms]]
    xf = frame.X[terms].to_numpy()[fit]
    z = (x - xf.mean(axis=0)) / xf.std(axis=0, ddof=1)
    fv = y.mean() + y.std() * (a[:, None] + b @ z.T)  # (D, n)
    for d in (0, 7, len(a) - 1):  # a few draws, term by term
        one = y.mean() + y.std() * (a[d] + sum(b[d, j] * z[:, j] for j in range(len(terms))))
        np.testing.assert_allclose(fv[d], one)
    q = ds["quantile"].values
    np.testing.assert_allclose(
        ds["fair_value"].sel(scenario="falling").values, np.quantile(fv, q, axis=0).T, rtol=1e-10
    )


def test_held_last_values_scenario_reproduces_unconditional(static_run, tmp_path) -> None:
    _, _, frame = _reopen(static_run)
    last_row = frame.X.iloc[-1]
    months = _months(f"{frame.time[-1] + pd.DateOffset(months=1):%Y-%m}", 5)
    path = _write_csv(tmp_path / "held.csv", [{"month": m, **last_row.to_dict()} for m in months])
    ds = forecast_run(static_run, [path], horizon=5)
    np.testing.assert_array_equal(
        ds["fair_value"].sel(scenario="held").values,
        ds["fair_value"].sel(scenario="unconditional").values,
    )


def test_forecast_continues_derived_fair_value(static_run) -> None:
    """Month 1 of the unconditional forecast equals derived.nc's last month (same factors)."""
    from regimes.results import load_derived

    ds = forecast_run(static_run, [], horizon=2)
    derived = load_derived(static_run)
    np.testing.assert_allclose(
        ds["fair_value"].sel(scenario="unconditional").isel(time=0).values,
        derived["fair_value"].isel(time=-1).values,
        rtol=1e-10,
    )


# --- (c) validation errors name what is wrong


@pytest.fixture
def good_rows() -> list[dict]:
    return [
        {"month": m, "real_rate": 1.0 + i / 10, "dollar": 120.0}
        for i, m in enumerate(_months("2026-08", 4))
    ]


def test_scenario_validation_names_column_and_row(tmp_path, good_rows) -> None:
    last = pd.Timestamp("2026-07-01")
    ok = load_scenario(_write_csv(tmp_path / "ok.csv", good_rows), FACTORS, last_month=last)
    assert ok.name == "ok" and len(ok.values) == 4 and list(ok.values.columns) == list(FACTORS)

    missing = [{k: v for k, v in r.items() if k != "dollar"} for r in good_rows]
    with pytest.raises(ScenarioError, match=r"missing column\(s\) dollar"):
        load_scenario(_write_csv(tmp_path / "a.csv", missing), FACTORS)
    unknown = [{**r, "dolar": 1.0} for r in good_rows]
    with pytest.raises(ScenarioError, match=r"unknown column\(s\) dolar"):
        load_scenario(_write_csv(tmp_path / "b.csv", unknown), FACTORS)
    known = [{**r, "ddri": 1.0} for r in good_rows]  # another experiment's factor: ignored
    assert list(load_scenario(_write_csv(tmp_path / "c.csv", known), FACTORS).values.columns) == [
        "real_rate",
        "dollar",
    ]
    bad = [dict(r) for r in good_rows]
    bad[2]["dollar"] = "n/a"
    with pytest.raises(ScenarioError, match=r"line 4 \(month 2026-10\), column 'dollar': 'n/a'"):
        load_scenario(_write_csv(tmp_path / "d.csv", bad), FACTORS)
    empty = [dict(r) for r in good_rows]
    empty[1]["real_rate"] = ""
    with pytest.raises(ScenarioError, match=r"line 3 .*column 'real_rate'"):
        load_scenario(_write_csv(tmp_path / "e.csv", empty), FACTORS)
    gap = [dict(r) for r in good_rows]
    gap[3]["month"] = "2027-01"
    with pytest.raises(ScenarioError, match="line 5: month 2027-01 does not follow 2026-10"):
        load_scenario(_write_csv(tmp_path / "f.csv", gap), FACTORS)
    badmonth = [dict(r) for r in good_rows]
    badmonth[0]["month"] = "Aug 2026"
    with pytest.raises(ScenarioError, match="line 2: month 'Aug 2026' is not YYYY-MM"):
        load_scenario(_write_csv(tmp_path / "g.csv", badmonth), FACTORS)
    path = _write_csv(tmp_path / "h.csv", good_rows)
    with pytest.raises(ScenarioError, match="is in the past"):
        load_scenario(path, FACTORS, last_month=last, last_observed=pd.Timestamp("2026-09-01"))
    with pytest.raises(ScenarioError, match="must cover 2026-07"):
        load_scenario(path, FACTORS, last_month=pd.Timestamp("2026-06-01"))
    with pytest.raises(ScenarioError, match="no 'month' column"):
        load_scenario(
            _write_csv(tmp_path / "i.csv", [{"date": "2026-08", "real_rate": 1, "dollar": 1}]),
            FACTORS,
        )
    # rows for months the run already has factors for are superseded by the observations
    sup = load_scenario(path, FACTORS, last_month=pd.Timestamp("2026-08-01"))
    assert sup.values.index[0] == pd.Timestamp("2026-09-01") and "superseded" in sup.source


def test_forecast_run_rejects_short_scenario(static_run, tmp_path) -> None:
    _, _, frame = _reopen(static_run)
    months = _months(f"{frame.time[-1] + pd.DateOffset(months=1):%Y-%m}", 3)
    path = _write_csv(
        tmp_path / "short.csv", [{"month": m, "real_rate": 1.0, "dollar": 100.0} for m in months]
    )
    with pytest.raises(ScenarioError, match="fewer than the horizon 5"):
        forecast_run(static_run, [path], horizon=5)


# --- (d) the CLI writes forecast.nc (in the manifest) and the figure, and prints a summary


def test_cli_forecast_writes_manifest_and_prints(static_run, repo_root, capsys) -> None:
    from regimes.cli import main
    from regimes.forecast import load_forecast
    from regimes.results import open_run, sha256_file

    scen = repo_root / "experiments" / "scenarios"
    files = [scen / f"{n}.csv" for n in ("mild_recovery", "inflation_shock", "recession_squeeze")]
    argv = ["forecast", str(static_run), "--horizon", "12"]
    for f in files:
        argv += ["--scenario", str(f)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for name in ("unconditional", "mild_recovery", "inflation_shock", "recession_squeeze"):
        assert f"scenario {name}" in out
    assert "90% band" in out and "wrote" in out
    manifest = open_run(static_run).manifest
    for name in ("forecast.nc", "figures/forecast.png", "figures/forecast.svg"):
        assert manifest["files"][name] == sha256_file(static_run / name)
    assert json.loads((static_run / "manifest.json").read_text())["status"] == "complete"
    ds = load_forecast(static_run)
    assert ds is not None and ds.sizes["time"] == 12 and ds.sizes["scenario"] == 4
    assert not list(static_run.glob(".add-*")) and not list(static_run.glob(".figure-*"))


def test_cli_forecast_bad_scenario_is_one_line(static_run, tmp_path, capsys) -> None:
    from regimes.cli import main

    path = _write_csv(tmp_path / "x.csv", [{"month": "2030-01", "real_rate": 1.0}])
    assert main(["forecast", str(static_run), "--scenario", str(path)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) dollar" in err and len(err.strip().splitlines()) == 1
