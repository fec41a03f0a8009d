"""Figures drawn in a second process while the run goes on: after sampling, a run's own work
(derive, netCDF, memo figures) is one thread on one core; the report's ArviZ figures (seconds
of SciPy and text layout) are rendered by a helper process on the other, started early so that
its imports overlap the sampler's compilation, and come back as bytes for the run to write.

`prepare()` starts the helper (once per process; it ignores SIGINT, which the parent turns into
its own clean stop, and ends when the parent's end of the pipe closes, so it never outlives
it); `submit(fn, *args)` sends it one call and returns a `Pending` whose `result()` waits for
the answer, re-raising the helper's exception with its traceback. Without a second core, or if
the helper cannot start or dies, the call runs in this process instead: the same files either
way (figures depend on their data and the memo style, not on the process).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

WARM_IMPORTS = ("matplotlib.pyplot",)  # what the helper imports before any call, with the caller's

_lock = threading.RLock()  # re-entered by `stop()` from a signal handler in the main thread
_helper: _Helper | None = None


class Pending:
    """One call sent to the helper (or to run here): `result()` returns its value."""

    def __init__(self, helper: _Helper | None, fn: Callable[..., Any], args: tuple) -> None:
        self._helper, self._fn, self._args = helper, fn, args
        self._answer: tuple[str, Any] | None = None  # without a helper: run by `result()`

    def collect(self) -> None:
        """Read this call's answer from the helper (once); a lost helper leaves it unanswered."""
        if self._answer is not None or self._helper is None:
            return
        helper, self._helper = self._helper, None
        try:
            self._answer = helper.conn.recv()
        except (EOFError, OSError) as exc:
            log.debug(f"figure helper lost ({exc!r}); drawing in this process")
            stop()
        except BaseException:  # interrupted while waiting: the answer still on its way would be
            stop()  # read as the next call's, so this helper ends (the next run starts one)
            raise
        finally:
            if helper.inflight is self:
                helper.inflight = None

    def result(self) -> Any:
        """The call's value: the helper's answer (its exception raised here, with its
        traceback), or the call run here without a helper (or with one lost)."""
        self.collect()
        if self._answer is None:  # no helper, or it died: run it here
            self._answer = ("ok", self._fn(*self._args))
        status, payload = self._answer
        if status == "error":
            exc, text = payload
            exc.add_note(f"raised in the figure helper process:\n{text}")
            raise exc
        return payload


class _Helper:
    """The helper process and this process's end of its pipe (one call in flight at a time)."""

    def __init__(self, warm: tuple[str, ...]) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of a process running JAX threads
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, warm), daemon=True, name="figures")
        self.process.start()
        child.close()  # the helper holds the only other end: it sees EOF when this one closes
        self.inflight: Pending | None = None

    def close(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)


def _serve(conn: Any, warm: tuple[str, ...]) -> None:
    """The helper's loop: import matplotlib and the modules `warm` names, draw one small figure,
    then run each call sent and send back ("ok", value) or ("error", (exception, traceback
    text)) until the pipe closes."""
    import importlib

    import matplotlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the command, then this
    matplotlib.use("Agg")  # never a window, nor a notebook's backend inherited through MPLBACKEND
    for name in (*WARM_IMPORTS, *warm):
        importlib.import_module(name)
    _warm_drawing()
    while True:
        try:
            fn, args = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except Exception as exc:
            answer = ("error", (exc, traceback.format_exc()))
        try:
            conn.send(answer)
        except Exception as exc:  # e.g. an exception that does not pickle
            conn.send(("error", (RuntimeError(repr(exc)), traceback.format_exc())))


def _warm_drawing() -> None:
    """Draw and save one small figure with text, so the first real one does not pay for the
    font cache and the renderers' first use."""
    import io

    from regimes.figures import memo_style

    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot([0, 1], [0, 1], label="warm")
        ax.set_title("warm")
        ax.legend()
        for fmt in ("png", "svg"):
            fig.savefig(io.BytesIO(), format=fmt)
        plt.close(fig)


def prepare(warm: tuple[str, ...] = ()) -> None:
    """Start the helper process if this process has none, a second core to give it and may
    have children (not a daemonic worker); it imports the modules `warm` names (those of the
    calls to come) while it waits."""
    import multiprocessing

    global _helper
    with _lock:
        if _helper is not None or (os.cpu_count() or 1) < 2:
            return
        if multiprocessing.current_process().daemon:  # e.g. a Dask worker: may have no children
            return
        try:
            _helper = _Helper(warm)
        except (OSError, RuntimeError, AssertionError) as exc:  # no processes here: draw here
            log.debug(f"figure helper not started ({exc!r}); drawing in this process")


def submit(fn: Callable[..., Any], *args: Any) -> Pending:
    """Run `fn(*args)` in the helper (started by `prepare()`), or here when its result is asked
    for (so a run times it where it waits for it) without one.
    `fn` and `args` must pickle; the helper answers one call at a time, in order (a call sent
    while another is in flight first collects that one's answer)."""
    with _lock:
        helper = _helper
    if helper is None:
        return Pending(None, fn, args)
    if helper.inflight is not None:
        helper.inflight.collect()
    try:
        payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):  # not for another process
        return Pending(None, fn, args)
    try:
        helper.conn.send_bytes(payload)
    except (OSError, ValueError) as exc:  # a dead helper or a closed pipe
        log.debug(f"figure helper lost ({exc!r}); drawing in this process")
        stop()
        return Pending(None, fn, args)
    helper.inflight = Pending(helper, fn, args)
    return helper.inflight


def stop() -> None:
    """End the helper process (before this process exits without its interpreter shutdown)."""
    global _helper
    with _lock:
        helper, _helper = _helper, None
    if helper is not None:
        helper.close()
