"""Where a run's time goes: wall seconds per phase (imports, build, compile, multistart,
sampling, derive, posterior predictive, netCDF, figures, report), recorded as the run goes for
its manifest and the benchmarks (issue 30).

`recording()` collects the phases of everything inside it; `phase(name)` times a block under
`name`, exclusive of the phases nested in it and of the JAX compilation (tracing, lowering,
XLA) done inside it, which is counted under "compile" wherever it happens. Outside a recording
`phase` costs a clock read and does nothing else.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

COMPILE = "compile"
_JAX_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class _Recorder:
    """Seconds per phase, with a stack of the phases open now (innermost last)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.open: list[str] = []
        self.since = time.perf_counter()  # when the innermost open phase last resumed
        self.lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def switch(self, push: str | None) -> None:
        """Close the running interval of the innermost phase; open `push` (or resume the one
        below when None, after popping)."""
        now = time.perf_counter()
        with self.lock:
            if self.open:
                self.add(self.open[-1], now - self.since)
            if push is None:
                self.open.pop()
            else:
                self.open.append(push)
            self.since = now

    def snapshot(self) -> dict[str, float]:
        """Seconds per phase so far (closed intervals; rounded to milliseconds)."""
        with self.lock:
            return {k: round(max(v, 0.0), 3) for k, v in self.seconds.items()}

    def compiled(self, seconds: float) -> None:
        """JAX compiled for `seconds` inside the running phase: count them under "compile"."""
        with self.lock:
            self.add(COMPILE, seconds)
            if self.open and self.open[-1] != COMPILE:
                self.add(self.open[-1], -seconds)


_ACTIVE: list[_Recorder] = []
_LISTENING: list[bool] = []


def _on_jax_event(event: str, duration: float, **_: object) -> None:
    if _ACTIVE and event in _JAX_COMPILE_EVENTS:
        _ACTIVE[-1].compiled(duration)


def _listen_to_jax() -> None:
    """Count JAX's compilation events, once JAX is loaded (never importing it here)."""
    if _LISTENING or "jax" not in sys.modules:
        return
    from jax import monitoring

    monitoring.register_event_duration_secs_listener(_on_jax_event)
    _LISTENING.append(True)


@contextmanager
def recording() -> Iterator[_Recorder]:
    """Record the phases of everything inside; the recorder's `snapshot()` gives the seconds
    per phase so far."""
    recorder = _Recorder()
    _ACTIVE.append(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.remove(recorder)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block under `name` in the active recording (if any)."""
    _listen_to_jax()
    if not _ACTIVE:
        yield
        return
    recorder = _ACTIVE[-1]
    recorder.switch(name)
    try:
        yield
    finally:
        recorder.switch(None)
        _listen_to_jax()
