"""A run's summary (`Run.summary`, `Run.summary_text`, `regimes summary`): parameters in natural
units with 90% intervals, R-hat and ESS from the natural-units posterior group, else derived.nc's
quantiles for older runs; the current regime with its band; the verdict. Hand-made runs, no
sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handmade_runs import make_switching_run, natural_group
from regimes.cli import main
from regimes.results import open_run

NOT_CONVERGED = {
    "converged": False,
    "reasons": [
        "R-hat above 1.01 for 1 of 9 elements (worst sigma: 1.4000); chains have not mixed"
    ],
    "advice": ["about 900 draws per chain would reach the ESS limit (set [sampler] draws = 900)"],
}


def test_summary_reads_the_natural_group_with_rhat_and_ess(tmp_path: Path) -> None:
    natural = natural_group()
    run = open_run(make_switching_run(tmp_path, natural=natural))
    table = run.summary()
    assert list(table.columns) == ["5%", "50%", "95%", "r_hat", "ess_bulk", "ess_tail", "units"]
    low = table.loc[("regime_mean", "low_rate")]
    draws = natural["regime_mean"].sel(regime="low_rate").values.ravel()
    np.testing.assert_allclose(
        [low["5%"], low["50%"], low["95%"]], np.quantile(draws, [0.05, 0.5, 0.95]), rtol=1e-6
    )
    assert low["units"] == "percent" and 0.99 < low["r_hat"] < 1.02 and low["ess_bulk"] > 200
    assert table.loc[("sigma", ""), "r_hat"] > 1.5  # chains one unit apart: not mixed
    assert ("transition", "low_rate → high_rate") in table.index
    assert table.loc[("expected_duration", "low_rate"), "units"] == "quarters"  # not "periods"
    text = run.summary_text()
    assert "mean of the target in each regime [percent]:" in text
    assert "posterior_natural" in text and "R-hat" in text


def test_summary_of_an_older_run_falls_back_to_derived_quantiles(tmp_path: Path) -> None:
    run = open_run(make_switching_run(tmp_path))
    table = run.summary()
    row = table.loc[("fair_value_by_regime", "high_rate")]
    assert (row["5%"], row["50%"], row["95%"]) == pytest.approx((9.4, 9.6, 9.8))
    assert np.isnan(row["r_hat"]) and row["units"] == "percent"
    assert table.loc[("expected_duration", "high_rate"), "50%"] == pytest.approx(15.0)
    assert "derived.nc quantiles" in run.summary_text()


def test_current_regime_is_the_last_observed_period_with_its_band(tmp_path: Path) -> None:
    run = open_run(make_switching_run(tmp_path))
    current = run.summary().loc["regime_prob"]
    # the price is observed for 10 quarters of 12: "now" is 2002-04, where the high regime holds
    assert current.loc["high_rate", "50%"] == pytest.approx(0.8)
    assert current.loc["high_rate", "5%"] == pytest.approx(0.75)
    assert "probability of each regime in 2002-04" in run.summary_text()


def test_verdict_quick_mark_and_short_form(tmp_path: Path) -> None:
    run = open_run(make_switching_run(tmp_path, verdict=NOT_CONVERGED, quick=True))
    short = run.summary_text(short=True)
    assert "QUICK RUN — not for citation" in short and "NOT CONVERGED" in short
    assert "worst sigma" in short and "advice: about 900 draws" in short
    assert "R-hat  ESS bulk" not in short  # the short form has medians and intervals only


def test_repr_is_short_and_the_html_shows_verdict_and_figures(tmp_path: Path) -> None:
    path = make_switching_run(tmp_path, verdict=NOT_CONVERGED)
    run = open_run(path)
    assert len(repr(run)) < 200 and "NOT CONVERGED" in repr(run) and str(path) in repr(run)
    html = run._repr_html_()
    assert "NOT CONVERGED" in html and "<table>" in html and "fair_value_by_regime" in html


def test_cli_summary_prints_the_table_and_refuses_a_non_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_switching_run(tmp_path, natural=natural_group())
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "regime_mean" not in out.splitlines()[0]  # a title first
    assert "mean of the target in each regime" in out and "converged" in out
    assert main(["summary", str(path), "--csv", "-"]) == 0
    assert capsys.readouterr().out.startswith("quantity,element,5%,50%,95%,r_hat")
    assert main(["summary", str(tmp_path)]) == 2
    assert "regimes: error:" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import regimes

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"regimes {regimes.__version__}"
    assert regimes.__version__[0].isdigit()
