"""Logger levels instead of `quiet` flags: library code logs progress at INFO on its module's
logger and a caller silences a block with `regimes.logs.quiet()`; the `quiet=` keyword of the
public functions still works for one release, with a DeprecationWarning; no function of the
library takes a `quiet` parameter of its own."""

from __future__ import annotations

import ast
import inspect
import io
import logging
import threading
from pathlib import Path

import pytest

from regimes import logs, progress
from regimes.api import run_dataframe, run_experiment
from regimes.fit import fit_frame
from regimes.lfo import compare_lfo, ensure_lfo, lfo_frame, lfo_run
from regimes.study import run_study
from regimes.sweep import run_sweep

SRC = Path(__file__).resolve().parents[1] / "src"
DEPRECATED = [run_experiment, run_dataframe, fit_frame, lfo_run, lfo_frame, ensure_lfo,
              compare_lfo, run_study, run_sweep]  # fmt: skip


def _said(name: str = "regimes.api") -> bool:
    """Whether an INFO line on the logger `name` reaches the `regimes` handlers now."""
    return logging.getLogger(name).isEnabledFor(logging.INFO)


def test_quiet_silences_info_lines_and_restores_the_level() -> None:
    root = logging.getLogger("regimes")
    before = root.level
    assert _said()
    with logs.quiet():
        assert not _said() and logging.getLogger("regimes.api").isEnabledFor(logging.WARNING)
        assert logs.silenced("regimes.progress")
        with logs.quiet(level=logging.ERROR):  # nested, stricter
            assert not logging.getLogger("regimes.api").isEnabledFor(logging.WARNING)
        assert not _said() and logging.getLogger("regimes.api").isEnabledFor(logging.WARNING)
    assert root.level == before and _said() and not logs.silenced("regimes.progress")


def test_blocks_ending_out_of_order_on_threads_restore_the_level() -> None:
    """Two threads' blocks overlap and end in the order they did not start: the level comes back
    only when both have ended (a save-and-restore per block would leave it quiet, or loud too
    early)."""
    before = logging.getLogger("regimes").level
    first_in, second_in, first_may_end = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with logs.quiet():
            first_in.set()
            first_may_end.wait(10)
        seen.append(_said())  # the second block still runs: still quiet

    def second() -> None:
        first_in.wait(10)
        with logs.quiet():
            second_in.set()
            first_may_end.set()
            t.join(10)

    t = threading.Thread(target=first)
    t.start()
    second()
    assert seen == [False]
    assert logging.getLogger("regimes").level == before and _said()


def test_named_loggers_only() -> None:
    with logs.quiet("regimes.fit", "pymc"):
        assert not _said("regimes.fit") and not _said("pymc")
        assert _said("regimes.lfo")  # its own lines still show between silent refits
    assert _said("regimes.fit")


def test_no_progress_bar_inside_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with logs.quiet():
        assert progress.Progress("NUTS", 10, "step").bar is None
    bar = progress.Progress("NUTS", 10, "step")
    assert bar.bar is not None
    bar.close()


def test_the_deprecated_keyword_warns_and_silences(caplog: pytest.LogCaptureFixture) -> None:
    @logs.quiet_keyword
    def talk(x: int, *, y: int = 0) -> bool:
        logging.getLogger("regimes.api").info("working")
        return _said()

    assert talk(1) is True  # no keyword: no warning
    with pytest.warns(DeprecationWarning, match=r"quiet=\.\.\.\) is deprecated.*logs\.quiet"):
        assert talk(1, quiet=True) is False
    with pytest.warns(DeprecationWarning):
        assert talk(1, y=2, quiet=False) is True
    assert _said()
    assert list(inspect.signature(talk).parameters) == ["x", "y", "quiet"]


@pytest.mark.parametrize("fn", DEPRECATED, ids=lambda f: f.__name__)
def test_public_functions_keep_the_keyword(fn: object) -> None:
    """Callers outside the repository that pass quiet= keep working for one release."""
    param = inspect.signature(fn).parameters["quiet"]  # type: ignore[arg-type]
    assert param.kind is param.KEYWORD_ONLY and param.default is None


def test_no_function_of_the_library_takes_a_quiet_parameter() -> None:
    """Silence is the caller's logger level, never a flag passed down (the deprecated keyword is
    the decorator's)."""
    found = []
    for path in sorted((SRC / "regimes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
                if "quiet" in names:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert not found, found
