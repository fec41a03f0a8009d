"""Sampling progress as people know it: one bar for all chains with ETA and the running count
of divergences on a terminal or in a notebook; a log line every tenth elsewhere."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from regimes import progress


@pytest.fixture(autouse=True)
def fresh() -> None:
    progress._CURRENT.clear()


def _run(chains: int = 2, tune: int = 50, draws: int = 50, divergent: tuple = ()) -> None:
    """The calls a compiled NUTS run makes: each chain's steps in turn, divergences where told."""
    total = tune + draws
    for step in range(total):
        for chain in range(chains):
            progress.nuts_step(chain, step, chains, total, tune, (chain, step) in divergent)


def test_log_lines_off_a_terminal_count_divergences_after_warm_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger="regimes.progress"):
        _run(divergent=((0, 10), (1, 60), (0, 70)))  # the first in warm-up: not counted
    lines = [r.getMessage() for r in caplog.records if r.name == "regimes.progress"]
    assert len(lines) == progress.LINES
    assert lines[0].startswith("NUTS, 2 chains: 10% (warm-up, 0 divergences), ETA")
    assert lines[-1].startswith("NUTS, 2 chains: 100% (sampling, 2 divergences)")


def test_a_bar_on_a_terminal_and_a_new_bar_for_the_next_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: True)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    _run(divergent=((1, 60),))
    first = progress._CURRENT["nuts"]
    assert first.finished and first.divergences == 1
    _run(chains=2)  # the same runner again (a refit): its chains start over
    assert progress._CURRENT["nuts"] is not first and progress._CURRENT["nuts"].divergences == 0
    text = err.getvalue().replace("\r", "\n")
    assert "NUTS, 2 chains: 100%" in text and "sampling, 1 divergences" in text
    assert "200/200" in text


def test_smc_runs_advance_by_temperature(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger="regimes.progress"):
        for run in range(2):
            for stage, beta in enumerate([0.01, 0.1, 0.5, 1.0]):
                progress.smc_stage(run, 2, stage, beta, 0.3)
    lines = [r.getMessage() for r in caplog.records if r.name == "regimes.progress"]
    assert lines[-1].startswith("SMC, 2 runs: 100% (run 2, stage 4, temperature 1.000")
    assert progress._CURRENT["smc"].finished


def test_the_compiled_sampler_reports_every_chain_and_each_divergence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neal's funnel with short warm-up diverges; the divergences the callback reports after
    warm-up are exactly those in the sampler statistics."""
    import pymc as pm

    from regimes.compiled import CompiledModel

    calls: list[tuple[int, int, bool]] = []
    monkeypatch.setattr(
        progress, "nuts_step", lambda c, s, n, t, w, d: calls.append((int(c), int(s), bool(d)))
    )
    with pm.Model() as model:  # the compiled sampler takes the data containers as arguments
        v = pm.Normal("v", 0.0, pm.Data("scale", 3.0))
        pm.Normal("x", 0.0, pm.math.exp(v / 2))
    cm = CompiledModel.from_model(model)
    init = [np.zeros(2), np.zeros(2)]
    _, stats, _, _ = cm.sample(
        cm.data_of(model), init, draws=60, tune=20, chains=2, target_accept=0.6, seed=3,
        progress=True,
    )  # fmt: skip
    for chain in (0, 1):
        steps = [s for c, s, _ in calls if c == chain]
        assert steps[0] == 0 and steps[-1] == 79  # the first and the last step, and between
        reported = sum(d for c, s, d in calls if c == chain and s >= 20)
        assert reported == int(stats["diverging"][chain].sum())
    assert int(stats["diverging"].sum()) > 0  # the funnel did diverge: the count was tested
