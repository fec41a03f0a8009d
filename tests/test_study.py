"""Studies: the study.toml schema, the quantity and verdict rules, the descriptive analyses, and
the whole gold study in quick mode from the command line (one test: the study runs once)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimes.errors import ConfigError
from regimes.study import load_study
from regimes.study.config import Comparison
from regimes.study.quantities import Estimate, extract, judge
from regimes_gold.descriptive import Series, gold_top, real_gold_debt_corr

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "experiments" / "gold"
VERDICTS = {"agrees", "differs", "inconclusive", "cannot be computed"}


def _regimes(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """The `regimes` command line in a fresh process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "regimes.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _est(lo: float, hi: float) -> Estimate:
    return Estimate((lo + hi) / 2, lo, hi, "")


@pytest.mark.parametrize(
    ("cmp", "lo", "hi", "verdict"),
    [
        ({"kind": "value", "value": 86.7, "tol": 3.0}, 84.0, 86.0, "agrees"),
        ({"kind": "value", "value": 86.7, "tol": 0.5}, 84.0, 86.0, "differs"),
        ({"kind": "above", "value": 400}, 410.0, 900.0, "agrees"),
        ({"kind": "above", "value": 400}, 200.0, 900.0, "inconclusive"),
        ({"kind": "above", "value": 400}, 100.0, 300.0, "differs"),
        ({"kind": "sign", "value": "negative"}, -2.0, -0.1, "agrees"),
        ({"kind": "sign", "value": "negative"}, 0.1, 2.0, "differs"),
        ({"kind": "sign", "value": "positive"}, -0.1, 2.0, "inconclusive"),
        ({"kind": "below", "value": 0.5}, 0.1, 0.4, "agrees"),
    ],
)
def test_judge_numeric(cmp: dict, lo: float, hi: float, verdict: str) -> None:
    assert judge(Comparison(**cmp), _est(lo, hi))[0] == verdict


def test_judge_months_and_missing() -> None:
    est = Estimate(
        pd.Timestamp("1983-05-01"), pd.Timestamp("1983-04-01"), pd.Timestamp("1983-10-01"), ""
    )
    assert judge(Comparison(kind="month", value="1983-06"), est)[0] == "agrees"
    assert judge(Comparison(kind="month", value="2022-01", tol=12), est)[0] == "differs"
    assert judge(Comparison(kind="month", value="1984-09", tol=12), est)[0] == "agrees"
    assert judge(Comparison(kind="value", value=1.0), None)[0] == "cannot be computed"
    none = Comparison(kind="none", why="not public")
    assert judge(none, None) == ("cannot be computed", "not public")
    with pytest.raises(ValueError, match="needs 'why'"):
        Comparison(kind="none")
    with pytest.raises(ValueError, match="'negative' or 'positive'"):
        Comparison(kind="sign", value="up")


def _derived() -> xr.Dataset:
    time = pd.date_range("2020-01-01", periods=6, freq="MS")
    q = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    price = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])
    fv = np.outer(np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]), [0.8, 0.9, 1.0, 1.1, 1.2])
    coef = np.stack(
        [np.array([-1, -1, 1, -1, 1, 1])[:, None] + (q - 0.5)[None, :] * k for k in (1, 10)], axis=1
    )
    return xr.Dataset(
        {
            "price": ("time", price),
            "fair_value": (("time", "quantile"), fv),
            "deviation_pct": (("time", "quantile"), 100 * (price[:, None] / fv - 1)),
            "coef": (("time", "term", "quantile"), coef.astype(float)),
            "in_sample": ("time", np.ones(6, dtype=np.int8)),
        },
        coords={"time": time, "quantile": q, "term": ["a", "b"]},
    )


def test_quantities_read_the_right_months() -> None:
    d = _derived()
    dev = extract(d, "deviation_at:latest")  # the last month with a price, not the last row
    assert dev.note == "at 2020-05"
    assert dev.median == pytest.approx(150.0)
    gap = extract(d, "gap_bp_max:2020-01")  # price − fair value, ×100, largest median at 2020-05
    assert gap.note == "at 2020-05"
    assert (gap.lo, gap.median, gap.hi) == pytest.approx((100 * (5 - 2.4), 300.0, 100 * (5 - 1.6)))
    since = extract(d, "positive_since:a")  # median positive from 2020-05 on (2020-04 negative)
    assert (since.lo, since.median, since.hi) == pytest.approx((0.55, 1.0, 1.45))  # at 2020-05
    assert "median positive since 2020-05; 90% band above zero since 2020-05" in since.text
    assert "90% band still includes zero" in extract(d, "positive_since:b").text
    with pytest.raises(ConfigError, match="unknown quantity"):
        extract(d, "nonsense:a")


def test_regime_quantities_read_their_regimes() -> None:
    """`transition:FROM:TO` and `regime_fair_value:WHEN:REGIME` read the named cell's quantiles
    (the textbook study's rows against published fits); unknown regimes are named."""
    d = _derived()
    q = d["quantile"].values
    regimes = ["low", "high"]
    p = np.array([[0.9, 0.1], [0.3, 0.7]])
    d["transition"] = (("regime", "regime_to", "quantile"), p[:, :, None] + (q - 0.5) / 10)
    level = np.array([1.0, 5.0])[None, :, None] + 0 * np.arange(6)[:, None, None] + (q - 0.5)
    d["fair_value_by_regime"] = (("time", "regime", "quantile"), level)
    d = d.assign_coords(regime=regimes, regime_to=regimes)
    up = extract(d, "transition:low:high")
    assert (up.lo, up.median, up.hi) == pytest.approx((0.055, 0.1, 0.145))
    high = extract(d, "regime_fair_value:latest:high")
    assert (high.lo, high.median, high.hi) == pytest.approx((4.55, 5.0, 5.45))
    assert high.note == "at 2020-05"
    with pytest.raises(ConfigError, match=r"no regime 'mid'; regimes are \['low', 'high'\]"):
        extract(d, "transition:low:mid")


def test_descriptive_extractors_on_known_series() -> None:
    idx = pd.date_range("1970-01-01", "2005-12-01", freq="MS")
    gold = pd.Series(np.where(idx == pd.Timestamp("1980-02-01"), 900.0, 300.0), index=idx)
    trend = np.linspace(0, 1, len(idx))
    real = pd.Series(np.where(idx.year < 1990, 10 - trend, 10 + trend), index=idx)
    debt = pd.Series(30 + 40 * trend, index=idx)
    s = Series(real_gold=real, gold=gold, debt_gdp=debt, ddri=debt)
    top = gold_top(s, "1980-01")
    assert top.median == pd.Timestamp("1980-02-01")
    assert real_gold_debt_corr(s, "1970:1989").median == pytest.approx(-1.0)
    assert real_gold_debt_corr(s, "1990:2005").median == pytest.approx(1.0)
    r = real_gold_debt_corr(s, "1970:2005")
    assert -1 <= r.lo <= r.median <= r.hi <= 1 and not math.isnan(r.median)


def test_study_config_is_checked(tmp_path: Path) -> None:
    study = load_study(GOLD)
    assert study.lfo is not None and len(study.lfo.experiments) >= 3
    assert {row.source for row in study.brief} - {"descriptive", "lfo"} <= {
        p.stem for p in GOLD.glob("*.toml")
    }
    folder = tmp_path / "s"
    folder.mkdir()
    shutil.copy(GOLD / "old_framework.toml", folder)
    (folder / "study.toml").write_text(
        'title = "t"\n[[brief]]\nwhat = "x"\nreported = "1"\nsource = "old_framwork"\n'
        'quantity = "r2"\ncompare = { kind = "value", value = 1 }\n'
    )
    with pytest.raises(
        ConfigError, match=r"brief\[0\]\.source.*old_framwork.*known: old_framework"
    ):
        load_study(folder)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ('application = "silver"\n', r"key 'application': no application 'silver' is installed "
         r"\(installed: gold\)"),
        ('[[brief]]\nwhat = "x"\nreported = "1"\nsource = "descriptive"\nquantity = "gold_top:1980-01"'
         '\ncompare = { kind = "value", value = 1 }\n', r"brief\[0\]\.source.*application = NAME"),
        ('application = "gold"\n[[brief]]\nwhat = "x"\nreported = "1"\nsource = "descriptive"\n'
         'quantity = "gold_tap:1980-01"\ncompare = { kind = "value", value = 1 }\n',
         r"brief\[0\]\.quantity.*'gold_tap' is no quantity of application 'gold'"),
        ('[page]\npanels = ["regime_probabilities", "real_gold_price"]\n',
         r"page\.panels\[1\]': no panel 'real_gold_price' \(known: regime_probabilities, "),
        ('[page]\n[[page.figures]]\nexperiment = "ms2_ecm"\nfigure = "regime_ribbon"\n'
         'caption = "c"\n', r"page\.figures\[0\]\.experiment.*no experiment 'ms2_ecm'"),
        ('[page]\n[[page.figures]]\nexperiment = "old_framework"\nfigure = "../x"\n'
         'caption = "c"\n', r"page\.figures\.0\.figure"),
        ('[answer]\nexperiment = "old_framework"\nregime = "r"\nclaim = "2020-01"\n'
         'question = "is {asset} there?"\n', r"answer\.question.*\{subject\} and \{regime\}"),
    ],
)  # fmt: skip
def test_study_page_settings_are_checked(tmp_path: Path, extra: str, error: str) -> None:
    """The application, its quantities and panels, the runs' figures and the answer's wording a
    study.toml names are checked when it loads, each error naming its key."""
    shutil.copy(GOLD / "old_framework.toml", tmp_path)
    (tmp_path / "study.toml").write_text('title = "t"\n' + extra)
    with pytest.raises(ConfigError, match=error):
        load_study(tmp_path)


def test_study_passes_run_options_to_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`regimes run FOLDER --no-figures --no-report` reaches each run; a failed run is recorded
    and the study still writes its page."""
    import regimes.study.runner
    from regimes.errors import RegimesError
    from regimes.study import run_study
    from regimes.study.runner import failed_runs

    (tmp_path / "models").symlink_to(ROOT / "models")  # found above the experiment file
    folder = tmp_path / "s"
    folder.mkdir()
    shutil.copy(GOLD / "old_framework.toml", folder)
    (folder / "study.toml").write_text('title = "t"\n')
    seen: list[dict] = []

    def fake_run(path: Path, **kwargs: object) -> Path:
        seen.append(kwargs)
        raise RegimesError("not sampled in this test")

    monkeypatch.setattr(regimes.study.runner, "run_experiment", fake_run)
    study_dir = run_study(folder, out=tmp_path / "out", figures=False, report=False)
    assert [(k["figures"], k["report"]) for k in seen] == [(False, False)]
    assert failed_runs(study_dir) == ["old_framework"]
    assert (study_dir / "study.html").is_file()


def test_run_on_folder_without_study_toml_is_a_clear_error(tmp_path: Path) -> None:
    proc = _regimes("run", str(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert "without a study.toml" in proc.stderr


# The study test's subset: two regime models for the LFO ranking (one the loadings model that
# answers the headline question, the other its second opinion), the scenario forecasts of one of
# them, and the 2000-2026 change point sampled by tempered SMC (the brief's break-date row); the
# static old framework's full runs are in the interrupt, report and forecast tests. The whole
# folder runs under the validation marker (about 10 minutes on 2 cores); every family is sampled
# in tests/test_family_contract.py, and `test_every_gold_experiment_builds` builds each config.
CI_SUBSET = ("ms2_ecm", "loadings", "changepoint_2000")


def subset_study(gold: Path, keep: tuple[str, ...], root: Path) -> Path:
    """A copy of the gold study folder under `root` with only the experiments `keep`: its brief
    rows, LFO and scenario lists cut to them (the models/ and scenarios/ folders found as from
    experiments/gold/)."""
    import tomllib

    import tomli_w

    (root / "experiments").mkdir(parents=True)
    (root / "models").symlink_to(ROOT / "models")
    (root / "experiments" / "scenarios").symlink_to(gold.parent / "scenarios")
    folder = root / "experiments" / gold.name
    folder.mkdir()
    for name in keep:
        shutil.copy(gold / f"{name}.toml", folder)
    study = tomllib.loads((gold / "study.toml").read_text())
    study["brief"] = [r for r in study["brief"] if r.get("source") in {*keep, "descriptive", "lfo"}]
    for section in ("lfo", "scenarios"):
        study[section]["experiments"] = [n for n in study[section]["experiments"] if n in keep]
    study["page"]["figures"] = [f for f in study["page"]["figures"] if f["experiment"] in keep]
    if study.get("answer", {}).get("experiment") not in keep:
        study.pop("answer", None)
    else:
        study["answer"]["also"] = [n for n in study["answer"].get("also", []) if n in keep]
    (folder / "study.toml").write_text(tomli_w.dumps(study))
    return folder


@pytest.mark.parametrize(
    "path", sorted(p for p in GOLD.glob("*.toml") if p.stem != "study"), ids=lambda p: p.stem
)
def test_every_gold_experiment_builds(path: Path, data_dir: Path) -> None:
    """Each experiment of the study (those the CI subset does not sample too): its config, its
    data window and its model graph (sampling them all is the validation-marked study test)."""
    from regimes.config import load_experiment
    from regimes.families import get_family
    from regimes.userdata import experiment_frame

    exp = load_experiment(path)
    assert exp.spec is not None
    frame = experiment_frame(exp, data_dir)
    assert len(frame.frame) > 24, f"{path.stem}: only {len(frame.frame)} months"
    model = get_family(exp.spec.family).build(exp.spec, frame)
    assert model.free_RVs and (model.observed_RVs or model.potentials)  # HMMs: a Potential


@pytest.mark.parametrize(
    "subset",
    [
        pytest.param(CI_SUBSET, marks=pytest.mark.slow, id="subset"),
        pytest.param(None, marks=pytest.mark.validation, id="whole"),
    ],
)
def test_gold_study_quick_from_the_command_line(
    subset: tuple[str, ...] | None, data_dir: Path, tmp_path: Path
) -> None:
    """`regimes run experiments/gold/ --quick`: every run, the LFO ranking, the scenario
    forecasts, the brief table with a verdict per row, the figures and study.html; then
    `--resume` (no sampling) and `regimes report STUDY_DIR`."""
    from regimes.study.runner import rerender_study
    from test_end_to_end import check_run_dir

    gold = GOLD if subset is None else subset_study(GOLD, subset, tmp_path / "src")
    out = tmp_path / "out"
    proc = _regimes(
        "run", str(gold), "--quick", "--out", str(out), "--no-progress",
        "--data-dir", str(data_dir), timeout=3000,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    study_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert study_dir.parent.parent == out
    data = json.loads((study_dir / "study.json").read_text())
    names = {p.stem for p in gold.glob("*.toml")} - {"study"}
    assert set(data["runs"]) == names
    for name, rec in data["runs"].items():
        assert rec["status"] == "complete", rec
        check_run_dir(study_dir / rec["run_dir"], name)
        assert (study_dir / rec["run_dir"] / "report.html").is_file()
    study = load_study(gold)
    assert [r["what"] for r in data["brief"]] == [r.what for r in study.brief]
    assert {r["verdict"] for r in data["brief"]} <= VERDICTS
    computed = [r for r in data["brief"] if r["verdict"] != "cannot be computed"]
    assert len(computed) >= len(data["brief"]) - 3, [r for r in data["brief"] if r not in computed]
    lfo = {r["experiment"] for r in data["lfo"]}
    assert lfo == set(study.lfo.experiments)
    assert all(np.isfinite(r["elpd_lfo"]) for r in data["lfo"])
    scen = {(r["experiment"], r["scenario"]) for r in data["forecasts"] if "error" not in r}
    assert len(scen) == len(study.scenarios.experiments) * (len(study.scenarios.files) + 1)
    for f, _ in data["figures"]:
        assert (study_dir / f).stat().st_size > 1000
    page = (study_dir / "study.html").read_text()
    assert "The source research" in page and page.count("<tr") >= len(data["brief"])
    assert "data:image/png;base64," in page
    answer = data["answer"]  # the headline, from the anchor-set run
    assert answer["verdict"] in VERDICTS | {"no fiscal anchor found"}, answer
    assert set(answer["since"]) >= {"median", "lo", "hi", "near_claim"}
    assert 0 <= answer["latest"]["p"] <= 1
    assert (study_dir / answer["figure"]).stat().st_size > 1000
    assert page.index('id="answer"') < page.index('id="brief"')
    also = answer["also"]  # the same question asked of the others (the subset: ms2_ecm only)
    assert [a["experiment"] for a in also] == study.answer.also and also[-1][
        "experiment"
    ] == "ms2_ecm"
    assert all("latest" in a for a in also)
    assert "The same question asked of other models" in page
    timing = data["timing"]  # where the time went: each run, each phase summed over them
    assert set(timing["runs"]) == names and min(timing["runs"].values()) > 0
    assert {"compile", "sampling", "derive", "report"} <= set(timing["phases"])
    assert sum(timing["phases"].values()) <= sum(timing["runs"].values())
    # --resume reuses every unchanged run and the LFO results stored in them: no sampling
    proc = _regimes(
        "run", str(gold), "--quick", "--resume", str(study_dir), "--no-progress",
        "--data-dir", str(data_dir), timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("reusing") == len(names)
    assert "sampling" not in proc.stderr
    resumed = json.loads((study_dir / "study.json").read_text())
    assert resumed["lfo"] == data["lfo"] and resumed["brief"] == data["brief"]
    assert resumed["timing"]["phases"] == {}  # every run reused: none computed now
    assert set(resumed["timing"]["runs"].values()) == {0.0}
    # `regimes report STUDY_DIR` redoes the table and page from the stored runs, no sampling
    (study_dir / "study.html").unlink()
    html_path = rerender_study(study_dir, data_dir=data_dir)
    assert (
        html_path.is_file()
        and json.loads((study_dir / "study.json").read_text())["brief"] == data["brief"]
    )


def test_break_date_past_the_window_is_open_ended() -> None:
    """A 95% quantile past the window (≥ 5% mass on no break) reads 'or later'; a claimed month
    is judged by the posterior mass within its tolerance, not by the interval (which may span
    places far apart); under 5% mass on any break reads 'no break in the window'."""
    time = pd.date_range("2000-01-01", periods=4, freq="MS")
    q = np.array([0.05, 0.25, 0.5, 0.75, 0.95])

    def derived(dates: list[str | None], probs: list[float]) -> xr.Dataset:
        bd = np.array(
            [[np.datetime64(x, "ns") if x else np.datetime64("NaT", "ns") for x in dates]]
        )
        return xr.Dataset(
            {
                "break_date": (("break", "quantile"), bd),
                "break_prob": (("time", "break"), np.array(probs)[:, None]),
                "in_sample": ("time", np.ones(4, dtype=np.int8)),
            },
            coords={"time": time, "quantile": q, "break": ["a->b"]},
        )

    est = extract(
        derived(["2000-02", "2000-02", "2000-03", None, None], [0, 0.5, 0.3, 0]), "break_date"
    )
    assert est.text == "2000-03 (2000-02 to 2000-04 or later)"
    assert "= 0.80" in est.note
    assert judge(Comparison(kind="month", value="2000-02", tol=1), est)[0] == "agrees"  # 0.80
    assert judge(Comparison(kind="month", value="2000-03"), est)[0] == "inconclusive"  # 0.30
    verdict, why = judge(Comparison(kind="month", value="2000-04"), est)  # inside, but no mass
    assert verdict == "differs" and "P(2000-04..2000-04) = 0.00" in why
    apart = extract(  # two places far apart: the month between them is inside the interval
        derived(["2000-01", "2000-01", "2000-04", "2000-04", None], [0.45, 0, 0, 0.45]),
        "break_date",
    )
    assert judge(Comparison(kind="month", value="2000-02"), apart)[0] == "differs"
    none = extract(derived([None] * 5, [0, 0.01, 0.01, 0]), "break_date")
    assert none.text == "no break in the window"
    assert judge(Comparison(kind="month", value="2000-04"), none)[0] == "differs"


def _anchor_derived(
    p_fiscal: np.ndarray, spread: float = 0.1, identified=(1, 1), starts=None
) -> xr.Dataset:
    """A two-regime derived.nc: P(fiscal_anchor) month by month with a ±spread band, and the
    current spell's start from 200 sampled paths, in the fiscal regime from month `starts[i]`
    (default: wherever P(fiscal) last crossed 0.5) or never (None)."""
    from regimes.families.chain.derived import spell_variables

    time = pd.date_range("2015-01-01", periods=len(p_fiscal), freq="MS")
    prob = np.stack([1 - p_fiscal, p_fiscal], axis=1)
    q = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    prob_q = np.clip(prob[:, :, None] + (q - 0.5)[None, None, :] * 2 * spread, 0, 1)
    if starts is None:
        below = np.flatnonzero(p_fiscal < 0.5)
        starts = [int(below[-1]) + 1 if len(below) else 0] * 200
    paths = np.zeros((len(starts), len(time)), dtype=int)
    for i, start in enumerate(starts):
        if start is not None and start < len(time):
            paths[i, start:] = 1
    names = ["real_rate_anchor", "fiscal_anchor"]
    spells = spell_variables(paths, np.ones(len(time), bool), time, names, q)
    return xr.Dataset(
        {
            "regime_prob": (("time", "regime"), prob),
            "regime_prob_q": (("time", "regime", "quantile"), prob_q),
            "in_sample": ("time", np.ones(len(time), dtype=np.int8)),
            "anchor_identified_by_regime": ("regime", np.array(identified, dtype=np.int8)),
            **spells,
        },
        coords={"time": time, "quantile": q, "regime": names},
        attrs={"converged": 1},
    )


def test_the_anchor_answer_and_its_verdicts() -> None:
    """Since when gold is in the fiscal-anchor regime (the posterior of the current spell's
    start, from sampled paths) and the verdict on a claimed shift, each way it can come out."""
    from regimes.study.answer import anchor_answer
    from regimes.study.config import AnswerSettings

    n = 96  # 2015-01..2022-12; in the fiscal regime from about 2021-06 (month 77)
    p = np.where(np.arange(n) >= 77, 0.97, 0.05)
    rng = np.random.default_rng(0)
    starts = list(77 + rng.integers(-2, 3, 200))  # the paths' starts: 2021-04..2021-08
    claim = AnswerSettings(
        experiment="anchors", regime="fiscal_anchor", claim="2022-01", tol=12,
        no_anchor="no fiscal anchor found",
    )  # fmt: skip

    def answer(p=p, starts=starts, settings=claim, **more):
        return anchor_answer(_anchor_derived(p, starts=starts, **more), settings)

    ans = answer()
    assert ans["since"]["median"] == "2021-06" and ans["since"]["prob_now"] == 1.0
    assert "2021-04" <= ans["since"]["lo"] <= ans["since"]["hi"] <= "2021-08"
    assert ans["since"]["near_claim"] == 1.0
    assert ans["latest"]["month"] == "2022-12" and ans["verdict"] == "agrees", ans
    # the study's words: its subject (default: the run's target as configured, here none)
    assert ans["text"].startswith("The target has been in the fiscal_anchor regime since 2021-06")
    gold = answer(settings=claim.model_copy(update={"subject": "gold"}))
    assert gold["text"].startswith("Gold has been in the fiscal_anchor regime since 2021-06")
    early = answer(settings=claim.model_copy(update={"claim": "2017-01"}))
    assert early["verdict"] == "differs" and early["since"]["near_claim"] == 0.0
    mixed = answer(starts=[40] * 150 + list(starts[:50]))  # a quarter of the mass near the claim
    assert mixed["verdict"] == "inconclusive" and 0.2 < mixed["since"]["near_claim"] < 0.3
    unconverged = _anchor_derived(p, starts=starts)
    unconverged.attrs["converged"] = 0
    assert anchor_answer(unconverged, claim)["verdict"] == "inconclusive"
    assert answer(identified=(1, 0))["verdict"] == "no fiscal anchor found"
    half = anchor_answer(_anchor_derived(np.full(n, 0.5), spread=0.3), claim)
    assert half["verdict"] == "inconclusive", half
    # undecided now, but the draws in the regime say since when: the answer says so too
    undecided = anchor_answer(_anchor_derived(p * 0 + 0.5, spread=0.3, starts=starts), claim)
    assert undecided["verdict"] == "inconclusive"
    assert "If it is, its current spell began 2021-06" in undecided["text"]
    assert "100% of that start's mass lies within ± 12 months" in undecided["text"]
    out = answer(p=np.full(n, 0.1), starts=[None] * 200)
    assert out["verdict"] == "differs" and out["since"]["prob_now"] == 0.0


def test_the_shift_size_is_read_from_the_coefficients() -> None:
    """The size a power Monte Carlo plants: each term's coefficient in the other regime → the
    answered one (posterior medians), with the units; terms absent from a regime are skipped."""
    from regimes.study.answer import shift_size

    coef = np.array(
        [[[-0.1, -0.09], [0.01, 0.02]], [[np.nan, np.nan], [0.3, 0.4]]]
    )  # (term, regime, q)
    derived = xr.Dataset(
        {"coef": (("term", "regime", "quantile"), coef, {"units": "change in log y"})},
        coords={"term": ["rr", "fx"], "regime": ["a", "b"], "quantile": [0.5, 0.95]},
    )
    assert shift_size(derived, "b") == "rr -0.1 → +0.01 (change in log y)"
    assert shift_size(derived.drop_vars("coef"), "b") == ""


def test_the_power_record_reads_into_the_answer(tmp_path) -> None:
    """A power Monte Carlo's record: the dated share, the false alarms and the delay, each with
    its interval; a record of another model, or none, says so instead of inventing numbers."""
    from regimes.study.power import power_of

    rows = pd.DataFrame({
        "model": ["loadings"] * 6 + ["anchors"] * 2,
        "planted": [1, 1, 1, 0, 0, 0, 1, 0],
        "dated": [1, 1, 0, 0, 0, 0, 0, 0],
        "claims_shift": [1, 1, 1, 1, 0, 0, 0, 0],
        "filtered_delay": [2.0, 3.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
        "realtime": [1, 1, 1, 0, 0, 0, 0, 0],  # the third refitted in real time, never saw it
        "delay_months": [4.0, 8.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    })  # fmt: skip
    rows.to_csv(tmp_path / "power.csv", index=False)
    out = power_of(tmp_path / "power.csv", "loadings")
    assert out["dated"]["k"] == 2 and out["dated"]["n"] == 3
    assert out["false_alarm"]["k"] == 1 and out["false_alarm"]["n"] == 3
    assert out["dated"]["lo"] < 2 / 3 < out["dated"]["hi"] and out["delay_median"] == 6.0
    assert "67% of 3 simulations" in out["text"] and "median 6 months" in out["text"]
    assert out["realtime_seen"]["k"] == 2 and out["realtime_seen"]["n"] == 3
    assert "saw the shift in 2 of 3 runs" in out["text"]
    assert out["filtered_delay_median"] == 2.5 and "(2 of 3)" in out["text"]
    assert "holds no simulations" in power_of(tmp_path / "power.csv", "ms2_ecm")["text"]
    assert "No power record" in power_of(tmp_path / "missing.csv", "loadings")["text"]


def test_a_panel_answers_for_its_reference_asset() -> None:
    """On a panel's derived.nc the answer reads the shared chain and the reference asset's own
    anchor check (the flags and notes of the other assets are not its)."""
    from regimes.study.answer import anchor_answer
    from regimes.study.config import AnswerSettings

    n = 96
    p = np.where(np.arange(n) >= 77, 0.97, 0.05)
    one = _anchor_derived(p)
    panel = xr.concat([one, one], dim="asset", data_vars="minimal").assign_coords(
        asset=["SILVER", "gold"]
    )
    panel["anchor_identified_by_regime"] = (
        ("asset", "regime"),
        np.array([[1, 1], [1, 0]], dtype=np.int8),
        {
            "notes": "SILVER fiscal_anchor: reverts; gold fiscal_anchor: no identified anchor (t 0.5)"
        },
    )
    panel.attrs = {"converged": 1, "reference_asset": "gold"}
    claim = AnswerSettings(
        experiment="panel_anchors", regime="fiscal_anchor", claim="2021-06", tol=12,
        no_anchor="no fiscal anchor found",
    )  # fmt: skip
    ans = anchor_answer(panel, claim)
    assert ans["asset"] == "gold" and ans["verdict"] == "no fiscal anchor found"
    assert "(t 0.5)" in ans["text"] and "reverts" not in ans["text"]
    panel.attrs["reference_asset"] = "SILVER"
    ans = anchor_answer(panel, claim)
    assert ans["asset"] == "SILVER" and ans["verdict"] == "agrees", ans


def test_a_panel_assets_deviation_is_read_at_its_own_latest_month() -> None:
    """`deviation_at:latest:ASSET` on a panel run: that asset's last observed month (an asset
    whose series ends early is read there), the target by default, unknown assets named."""
    d = _derived()
    late = d.copy()
    late["price"] = late["price"].where(late["time"] < np.datetime64("2020-04-01"))
    late["deviation_pct"] = late["deviation_pct"] * 2
    panel = xr.concat([d, late], dim="asset").assign_coords(asset=["gold", "SP500"])
    panel.attrs["target"] = "gold"
    gold = extract(panel, "deviation_at:latest")
    assert gold.note == "gold, at 2020-05" and gold.median == pytest.approx(150.0)
    sp = extract(panel, "deviation_at:latest:SP500")
    assert sp.note == "SP500, at 2020-03"
    assert sp.median == pytest.approx(2 * float(d["deviation_pct"].sel(quantile=0.5)[2]))
    with pytest.raises(ConfigError, match=r"no asset 'COPPER'.*gold, SP500"):
        extract(panel, "deviation_at:latest:COPPER")
    with pytest.raises(ConfigError, match="one target"):
        extract(d, "deviation_at:latest:SP500")
    # a quantity that names no asset reads the reference asset (the brief passes panels whole)
    assert extract(panel, "positive_since:a").text == extract(d, "positive_since:a").text


def test_a_page_is_drawn_from_its_study_toml_and_application(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    """Without sampling (a hand-made run, re-rendered twice): the page draws the core and
    application panels `[page] panels` names, puts `[answer] panels` beside the answer, answers
    a descriptive row from the application's data, words the answer from `[answer]`, and says
    in place of a panel that fails why it is missing (once, however often it is redrawn)."""
    from handmade_runs import make_switching_run
    from regimes.errors import RegimesError
    from regimes.study.application import APPLICATIONS, Application
    from regimes.study.panels import PageContext, PanelOutput
    from regimes.study.runner import rerender_study

    loads: list[Path] = []

    def load(where: Path) -> dict:
        loads.append(where)
        return {"n": 7.0}

    def count(ctx: PageContext) -> PanelOutput:
        return PanelOutput(f"{len(ctx.runs)} run(s); the answer reads {ctx.answer['verdict']}")

    def bars(ctx: PageContext) -> PanelOutput:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.bar([0, 1], [1, ctx.data()["n"]])
        return PanelOutput("Bars of the application's data.", fig)

    def broken(ctx: PageContext) -> PanelOutput:
        raise RegimesError("no such data")

    app = Application(
        "page_test",
        "a test application",
        load=load,
        quantities={"n": lambda data, arg: Estimate(data["n"], data["n"], data["n"], "7")},
        panels={"count": count, "bars": bars, "broken": broken},
    )
    monkeypatch.setitem(APPLICATIONS._registered, "page_test", app)
    study_dir = tmp_path / "study"
    make_switching_run(study_dir / "runs")
    (study_dir / "study.toml").write_text(
        'title = "t"\napplication = "page_test"\n'
        '[answer]\nexperiment = "exp"\nregime = "high_rate"\nclaim = "2002-01"\n'
        'question = "is {subject} high?"\nsubject = "the rate"\npanels = ["count"]\n'
        '[page]\npanels = ["regime_probabilities", "bars", "broken"]\n'
        '[[brief]]\nwhat = "n"\nreported = "7"\nsource = "descriptive"\nquantity = "n:x"\n'
        'compare = { kind = "value", value = 7 }\n'
    )
    record = {"experiment": "exp", "status": "complete", "run_dir": "runs/exp/run-d"}
    (study_dir / "study.json").write_text(json.dumps({
        "title": "t", "folder": "s", "quick": False, "runs": {"exp": record}, "lfo": [],
        "lfo_note": "", "forecasts": [], "figures": [], "timing": {},
    }))  # fmt: skip
    for _ in range(2):
        page = rerender_study(study_dir, data_dir=data_dir).read_text()
    data = json.loads((study_dir / "study.json").read_text())
    assert data["figures"] == [
        ["figures/study_regime_probabilities.png", data["figures"][0][1]],
        ["figures/study_bars.png", "Bars of the application's data."],
        ["", "broken: not drawn (RegimesError: no such data)"],
    ]
    assert (study_dir / "figures" / "study_bars.png").stat().st_size > 1000
    assert data["brief"][0]["estimate"] == "7" and data["brief"][0]["verdict"] == "agrees"
    assert loads == [data_dir, data_dir]  # once per page
    answer = page[page.index('id="answer"') : page.index('id="brief"')]
    assert "The answer: is the rate high?" in answer
    assert f"1 run(s); the answer reads {data['answer']['verdict']}" in answer
    assert data["answer"]["panels"] == [
        ["", f"1 run(s); the answer reads {data['answer']['verdict']}"]
    ]
    assert page.count("broken: not drawn (RegimesError: no such data)") == 1
