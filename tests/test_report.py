"""`regimes report`: self-contained HTML pages of real runs, checked in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimes.api import run_experiment
from regimes.cli import main
from regimes.config import SHIPPED_MODELS
from regimes.report import write_report
from regimes.report.headline import headline_rows
from regimes.report.sections import caption, figure_order, verdict_section
from regimes.results import open_run, sha256_file

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("What was run", "Data provenance", "Diagnostics", "Figures", "Headline numbers")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]


@pytest.fixture(scope="module")
def good_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real run of the old-framework static model; `run_experiment` writes its report."""
    return run_experiment(
        ROOT / "experiments" / "gold" / "old_framework.toml",
        data_dir=data_dir,
        quick=True,
        out=tmp_path_factory.mktemp("runs"),
        progress=False,
        figures=True,
    ).path


@pytest.fixture(scope="module")
def bad_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deliberately unconverged run: 20 tuning steps and 20 draws of the same static model."""
    root = tmp_path_factory.mktemp("bad")
    (root / "models").mkdir()
    shutil.copy(SHIPPED_MODELS / "static_fair_value.toml", root / "models")
    (root / "experiments").mkdir()
    text = (ROOT / "experiments" / "gold" / "old_framework.toml").read_text(encoding="utf-8")
    text = re.sub(r"\[sampler\].*?(?=\n\[|\Z)", "", text, flags=re.S)
    text += "\n[sampler]\ndraws = 20\ntune = 20\nchains = 2\nseed = 7\n"
    path = root / "experiments" / "bad_short.toml"
    path.write_text(text, encoding="utf-8")
    return run_experiment(path, data_dir=data_dir, out=root / "results", progress=False).path


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium not found; install it with `apt-get install -y --no-install-recommends "
                "chromium` (scripts/install.sh does this when run as root)"
            )
        pytest.skip("chromium not installed (scripts/install.sh installs it as root)")
    return exe


def _browser(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local page with a throwaway profile."""
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra]
    proc = subprocess.run([*cmd, page.resolve().as_uri()], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _rendered_checks(page: Path, tmp: Path) -> dict[str, str]:
    """The data-* attributes the page's check script set on <body> after loading."""
    dom = _browser(page, tmp, "--window-size=1200,900", "--dump-dom").stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))


def _screenshot_colours(page: Path, tmp: Path) -> int:
    """Distinct colours in a 1200x2000 screenshot of the page (a blank page has one or two)."""
    from PIL import Image

    shot = tmp / "shot.png"
    _browser(page, tmp, f"--screenshot={shot}", "--window-size=1200,2000")
    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        return len(im.convert("RGB").getcolors(maxcolors=1 << 22) or [])


def _html(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def test_report_renders_in_browser(good_run: Path, tmp_path: Path) -> None:
    pngs = sorted((good_run / "figures").glob("*.png"))
    assert {"fair_value", "rank", "trace", "forest"} <= {p.stem for p in pngs}
    checks = _rendered_checks(good_run / "report.html", tmp_path)
    assert checks["img-count"] == str(len(pngs)), checks
    assert checks["img-loaded"] == checks["img-count"], "some figures did not decode"
    assert checks["verdict-visible"] == "yes", "verdict banner not in the first viewport"
    assert _screenshot_colours(good_run / "report.html", tmp_path) > 50


def test_report_is_self_contained_and_ordered(good_run: Path) -> None:
    html = _html(good_run)
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), refs[:3]
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert re.findall(r"<script", html) == ["<script"]  # only the inline check script
    positions = [html.index('id="verdict"')] + [html.index(f"<h2>{s}</h2>") for s in SECTIONS]
    assert positions == sorted(positions)
    verdict = open_run(good_run).manifest["verdict"]
    word = "converged" if verdict["converged"] else "not converged"
    assert f'data-verdict="{word}"' in html
    derived = open_run(good_run).derived()
    assert derived.attrs["data_hash"] in html
    assert "World Bank Commodity Markets (Pink Sheet)" in html  # gold's publisher
    assert "latest price" in html and "deviation from fair value" in html
    assert "P(regime" not in html  # a static run has no regimes


def test_bad_run_report_says_not_converged(bad_run: Path, tmp_path: Path) -> None:
    manifest = open_run(bad_run).manifest
    assert manifest["verdict"]["converged"] is False
    html = _html(bad_run)
    assert 'class="verdict bad" data-verdict="not converged"' in html
    for reason in manifest["verdict"]["reasons"]:
        assert reason.split("(")[0].strip() in html
    assert main(["diagnose", "--strict", str(bad_run)]) == 1
    checks = _rendered_checks(bad_run / "report.html", tmp_path)
    assert checks["verdict-visible"] == "yes"


def test_report_is_reproducible_and_replaced_atomically(good_run: Path) -> None:
    report = good_run / "report.html"
    before, inode = report.read_bytes(), report.stat().st_ino
    assert write_report(good_run) == report
    assert report.stat().st_ino != inode  # a new file renamed into place, not rewritten in place
    assert report.read_bytes() == before
    assert not [p for p in good_run.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_manifest_lists_report_and_figures(good_run: Path) -> None:
    files = open_run(good_run).manifest["files"]
    for name in ("report.html", "figures/rank.png", "figures/trace.svg", "figures/forest.png"):
        assert name in files, name
    for name, digest in files.items():
        assert sha256_file(good_run / name) == digest, name


def test_compare_page_names_both_runs(good_run: Path, bad_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    assert main(["report", "--compare", str(good_run), str(bad_run), "--out", str(out)]) == 0
    html = (out / "compare.html").read_text(encoding="utf-8")
    for run in (good_run, bad_run):
        assert f"{run.parent.name}/{run.name}" in html
    assert "PSIS-LOO comparison" in html and "elpd_loo" in html  # same data: LOO is computed
    assert 'data-verdict="not converged"' in html  # the bad run spoils the joint verdict
    checks = _rendered_checks(out / "compare.html", tmp_path)
    assert checks["img-loaded"] == checks["img-count"] != "0"


def test_report_on_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "manifest.json" in err[0]


def test_verdict_banner_for_a_converged_run() -> None:
    html = verdict_section({"verdict": {"converged": True, "reasons": [], "max_rhat": 1.001}})
    assert 'class="verdict ok" data-verdict="converged"' in html
    assert "not converged" in verdict_section({})  # no verdict recorded: never shown as passed


def test_figure_order_and_captions(tmp_path: Path) -> None:
    for stem in ("trace", "zz_custom", "fair_value", "rank", "coef_paths", "regime_ribbon"):
        (tmp_path / f"{stem}.png").write_bytes(b"")
    assert [p.stem for p in figure_order(tmp_path)] == [
        "fair_value",
        "regime_ribbon",
        "coef_paths",
        "zz_custom",
        "rank",
        "trace",
    ]
    assert "zz custom" in caption("zz_custom") and caption("rank") != caption("zz_custom")


def test_headline_rows_of_a_switching_run() -> None:
    time = pd.date_range("2020-01-01", periods=4, freq="MS")
    q = [0.05, 0.5, 0.95]
    prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.25, 0.75]])
    ds = xr.Dataset(
        {
            "price": ("time", [100.0, 110.0, 120.0, np.nan], {"units": "USD"}),
            "fair_value": (("time", "quantile"), np.outer([100, 105, 110, 115.0], [0.9, 1, 1.1])),
            "regime_prob": (("time", "regime"), prob),
            "regime_prob_q": (
                ("time", "regime", "quantile"),
                prob[:, :, None] + np.array([-0.1, 0, 0.1]),
            ),
        },
        coords={"time": time, "quantile": q, "regime": ["calm", "fiscal_anchor"]},
    )
    rows = {r[0]: r[1:] for r in headline_rows(ds)}
    # one month for every row: the latest observed price's (the fair value runs a month longer)
    assert rows["latest price"] == ("2020-03", "120.0 USD")
    assert rows["fair value"] == ("2020-03", "110.0 USD (90%: 99.0 to 121.0)")
    # recomputable from the rows above: 120 / 110 - 1, 120 / 121 - 1, 120 / 99 - 1
    gap = "deviation from fair value (price / fair value − 1)"
    assert rows[gap] == ("2020-03", "9.09% (90%: -0.826% to 21.2%)")
    assert rows["P(regime: fiscal anchor)"] == ("2020-03", "0.70 (90%: 0.60 to 0.80)")
    rate = ds.assign(price=ds["price"].assign_attrs(units="percent"))  # a rate: levels, pp
    rows = {r[0]: r[1:] for r in headline_rows(rate)}
    assert rows["latest level"] == ("2020-03", "120.0 percent")
    assert rows["gap to fair value (level − fair value)"] == (
        "2020-03",
        "10.0 pp (90%: -1 pp to 21.0 pp)",
    )
    assert headline_rows(xr.Dataset()) == []
