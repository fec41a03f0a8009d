"""Stopping on SIGINT and SIGTERM: the signal becomes an exception in the main thread (so every
atomic writer removes its temporary files on the way out), is never lost, and the command ends
with 130 or 143 and one line on stderr.

Used by the CLI around each verb (`with Stopper(hard=True)`); process-wide, like `cache`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress

EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as shells do


GRACE_S = 5.0  # the command ends this long after a signal even if its exception got lost


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt (never caught by `except Exception`)."""


def interrupted_line(signum: int, verb: str | None, written: Sequence[object] = ()) -> str:
    """The one stderr line of an interrupted command: what it left behind, per verb (`written`:
    the run directories it completed before the signal, each whole)."""
    if written and verb == "run":
        names = ", ".join(str(w) for w in written)
        return f"regimes: interrupted ({signal.Signals(signum).name}); complete: {names}"
    if verb == "sweep":  # task configs and finished tasks are on disk under the sweep folder
        what = (
            "finished tasks are kept; continue with `regimes sweep SWEEP.toml --resume "
            "SWEEP_DIR` (the folder its first progress line names)"
        )
    else:
        what = "no run directory was written" if verb == "run" else "nothing was written"
    return f"regimes: interrupted ({signal.Signals(signum).name}); {what}"


class Stopper:
    """Turns SIGINT/SIGTERM into KeyboardInterrupt/Terminated in the main thread, and makes sure
    they are not lost: Python runs a signal handler at the next bytecode, which may be inside a
    garbage-collector callback or finaliser (JAX registers one, `_xla_gc_callback`, that runs
    very often) where an exception is printed as "Exception ignored" and dropped, and the run
    went on to exit 0. Such a dropped exception is caught by `sys.unraisablehook` and the signal
    raised again, so that it lands in ordinary code. A second signal while the first unwinds
    ends the process at once; with `hard`, so does a first one after GRACE_S."""

    def __init__(self, hard: bool) -> None:
        self.hard = hard
        self.signum = 0
        self.rearmed = False
        self.verb: str | None = None
        self.code = 1  # the command's exit status, once known
        self.done = threading.Event()
        self.old: dict[int, object] = {}
        self.old_hook = sys.unraisablehook

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_ON_SIGNAL:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by the parent: stays
                    self.old[signum] = signal.signal(signum, self.handler)
            sys.unraisablehook = self.unraisable
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for signum, handler in self.old.items():  # the command's work is done: a signal now
            # (while the interpreter shuts down) ends it at once with the command's own result
            signal.signal(signum, self.late if self.hard else handler)  # type: ignore[arg-type]
        if self.old:
            sys.unraisablehook = self.old_hook

    def handler(self, signum: int, frame: object) -> None:
        if self.signum and not self.rearmed:  # a second signal while the first unwinds
            self.exit_now(signum)
        if not self.signum and self.hard:
            threading.Thread(target=self.watchdog, args=(signum,), daemon=True).start()
        self.signum, self.rearmed = signum, False
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    def late(self, signum: int, frame: object) -> None:
        exit_now(self.code)

    def unraisable(self, hook: object) -> None:
        exc = getattr(hook, "exc_value", None)
        if self.signum and isinstance(exc, KeyboardInterrupt | Terminated):
            self.rearmed = True  # dropped in a callback: raise it again a moment later, from
            # another thread (the handler would run right here otherwise, and be dropped again)
            threading.Timer(0.01, os.kill, (os.getpid(), self.signum)).start()
            return
        self.old_hook(hook)  # type: ignore[arg-type]

    def watchdog(self, signum: int) -> None:
        if not self.done.wait(GRACE_S):
            self.exit_now(signum)

    def exit_now(self, signum: int) -> None:
        """Remove this process's temporary run folders, say so, and end the process now."""
        stop_helpers()
        results = sys.modules.get("regimes.results")  # not imported: no temporary folders
        if results is not None:
            results.remove_own_temporary()
        with suppress(OSError, ValueError):
            sys.stdout.flush()
        os.write(2, (interrupted_line(signum, self.verb) + "\n").encode())
        os._exit(EXIT_ON_SIGNAL.get(signum, 128 + signum))


def stop_helpers() -> None:
    """End the figure helper process, if this process started one (`figures.background`), so
    that a command ending now leaves no process behind, even for a moment."""
    background = sys.modules.get("regimes.figures.background")  # not imported: none started
    if background is not None:
        background.stop()


def exit_now(code: int) -> None:
    """Flush the standard streams and end the process with `code` (no interpreter shutdown):
    its helper process first, its logging handlers flushed."""
    stop_helpers()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
