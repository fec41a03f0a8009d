"""The figure helper process (`regimes.figures.background`): a call there gives the bytes it
gives here, errors come back with their traceback, it ignores Ctrl-C and never outlives its
parent; and the `regimes` command ends without the interpreter's teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

from regimes.figures import background
from regimes.report.arviz_figures import report_inputs, report_renders


def small_tree() -> xr.DataTree:
    """A posterior of two chains with a scalar, a vector and a latent path (left out of the
    figures), and the sampler statistics."""
    rng = np.random.default_rng(3)
    chains, draws = 2, 60
    posterior = xr.Dataset(
        {
            "mu": (("chain", "draw"), rng.normal(size=(chains, draws))),
            "beta": (("chain", "draw", "regime"), rng.normal(size=(chains, draws, 2))),
            "path": (("chain", "draw", "time"), rng.normal(size=(chains, draws, 30))),
        },
        coords={"chain": [0, 1], "draw": np.arange(draws), "regime": ["a", "b"]},
    )
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))},
        coords={"chain": [0, 1], "draw": np.arange(draws)},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


@pytest.fixture
def helper():
    """A helper process for the test, ended after it."""
    background.stop()
    background.prepare(warm=("arviz_plots",))
    if background._helper is None:
        pytest.skip("one core: no helper process")
    yield background._helper
    background.stop()


def test_a_call_in_the_helper_gives_the_bytes_it_gives_here(helper) -> None:
    tree = small_tree()
    inputs = report_inputs(tree)
    assert inputs is not None and list(inputs["posterior"].data_vars) == ["mu", "beta"]
    pending = background.submit(report_renders, inputs, "QUICK RUN")
    assert background.submit(os.getpid).result() != os.getpid()  # it ran in another process
    there = pending.result()
    here = report_renders(tree, "QUICK RUN")
    assert (
        sorted(there)
        == sorted(here)
        == sorted(
            f"{stem}.{suffix}" for stem in ("rank", "trace", "forest") for suffix in ("png", "svg")
        )
    )
    assert all(there[name] == here[name] for name in here)  # byte for byte, mark included
    assert here != report_renders(tree, "")  # the mark is drawn (the comparison can fail)


def test_an_error_in_the_helper_comes_back_with_its_traceback(helper) -> None:
    with pytest.raises(ValueError, match="invalid literal") as info:
        background.submit(int, "not a number").result()
    assert any("raised in the figure helper process" in note for note in info.value.__notes__)
    assert background.submit(int, "7").result() == 7  # the helper goes on


def test_a_call_that_does_not_pickle_runs_here(helper) -> None:
    assert background.submit(lambda: os.getpid()).result() == os.getpid()
    assert background.submit(os.getpid).result() != os.getpid()  # the helper is still there


def test_the_helper_ignores_ctrl_c_and_ends_when_stopped(helper) -> None:
    background.submit(int, "1").result()  # warmed up: its SIGINT handler is set
    os.kill(helper.process.pid, signal.SIGINT)
    time.sleep(0.3)
    assert helper.process.is_alive()  # the parent turns Ctrl-C into its own clean stop
    background.stop()
    assert not helper.process.is_alive()


def test_the_helper_never_outlives_its_parent(tmp_path) -> None:
    """A parent that ends abruptly (os._exit: no stop, no atexit) leaves no helper behind."""
    script = textwrap.dedent(
        """
        import os, sys
        from regimes.figures import background
        background.prepare()
        assert background.submit(int, "1").result() == 1
        print(background._helper.process.pid, flush=True)
        os._exit(0)
        """
    )
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: no helper process")
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    pid = int(out.stdout.split()[0])
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"the helper {pid} was still running 10 s after its parent ended")


def test_without_a_second_core_the_call_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    background.stop()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    background.prepare()
    assert background._helper is None
    assert background.submit(os.getpid).result() == os.getpid()
    calls: list[int] = []
    pending = background.submit(calls.append, 1)
    assert calls == []  # run when its result is asked for: a run times it where it waits
    pending.result()
    assert calls == [1]


def test_a_daemonic_worker_draws_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker (daemonic: it may not start processes) draws in its own process."""
    import multiprocessing
    from types import SimpleNamespace

    background.stop()
    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    background.prepare()
    assert background._helper is None
    assert background.submit(os.getpid).result() == os.getpid()


def test_the_command_ends_without_the_interpreters_teardown(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """`regimes` (no argv: the console script) ends through `exit_now` with its own exit
    status once its work is done; called with arguments (tests, scripts), `main` returns."""
    from regimes import cli

    ended = []

    def fake_exit(code: int) -> None:
        ended.append(code)

    monkeypatch.setattr(cli, "exit_now", fake_exit)
    monkeypatch.setattr(sys, "argv", ["regimes", "report", str(tmp_path / "no-run")])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.main() == 2
        assert ended == [2]
        assert cli.main(["report", str(tmp_path / "no-run")]) == 2
        assert ended == [2]
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
