"""A second study that is not about gold: `experiments/textbook/` (the Kim-Nelson fed funds and
Hamilton GNP models beside their published fits) runs quick and the core renders its page from
its study.toml alone. It also stands for `test_end_to_end` for these two configs (a study
folder's runs are checked here, not there)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from regimes.study import load_study, run_study
from test_end_to_end import check_run_dir

TEXTBOOK = Path(__file__).resolve().parents[1] / "experiments" / "textbook"
VERDICTS = {"agrees", "differs", "inconclusive"}


def test_textbook_study_renders_both_runs_without_gold(data_dir: Path, tmp_path: Path) -> None:
    """Both runs complete (each a full run directory), the brief's eight published values each
    get a verdict against our posterior, the page shows both models in its own panels and their
    copied regime figures, and nothing on it is about gold (no application, no core edit)."""
    study = load_study(TEXTBOOK)
    assert study.application == "" and study.answer is None
    study_dir = run_study(
        TEXTBOOK, data_dir=data_dir, out=tmp_path, quick=True, progress=False,
        report=False,
    )  # fmt: skip
    data = json.loads((study_dir / "study.json").read_text())
    assert list(data["runs"]) == ["fedfunds", "hamilton_gnp"]
    for name, rec in data["runs"].items():
        assert rec["status"] == "complete", rec
        check_run_dir(study_dir / rec["run_dir"], name)
    assert [r["what"] for r in data["brief"]] == [r.what for r in study.brief]
    assert {r["verdict"] for r in data["brief"]} <= VERDICTS, data["brief"]
    assert {r["source"] for r in data["brief"]} == {"fedfunds", "hamilton_gnp"}
    figures = [f for f, _ in data["figures"]]
    assert figures == [
        "figures/study_regime_probabilities.png",
        "figures/study_fair_value_by_regime.png",
        "figures/study_fedfunds_regime_ribbon.png",
        "figures/study_hamilton_gnp_regime_ribbon.png",
    ]
    for f in figures:
        assert (study_dir / f).stat().st_size > 1000
    page = (study_dir / "study.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures)
    for caption in (c for _, c in data["figures"]):
        assert f"<figcaption>{html.escape(caption)}</figcaption>" in page
    assert "fedfunds" in page and "hamilton_gnp" in page
    assert 'id="answer"' not in page  # no [answer]: no headline section
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # a figure's bytes may spell it
    assert not re.search("gold", text, re.IGNORECASE)
