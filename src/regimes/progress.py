"""Progress of sampling as people know it from tqdm: on a terminal or in a notebook one bar for
all chains with its ETA and the running count of divergent transitions (after warm-up, the ones
the convergence gate counts); elsewhere (a log file, CI, a Dask worker) a log line every tenth of
the way on the `regimes.progress` logger instead. Inside `regimes.logs.quiet()` neither shows.

The samplers report from inside compiled code (`jax.debug.callback`, possibly from several
threads at once, one per chain): `nuts_step` for NUTS and `smc_stage` for tempered SMC. Each
sampling run gets a fresh bar, recognised when a chain starts again from its first step.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from regimes.logs import silenced

# deferred to the functions that use them: tqdm, ipywidgets (docs/modules.md#imports)

log = logging.getLogger(__name__)
LINES = 10  # log lines per sampling run when not on a terminal
_LOCK = threading.Lock()
_CURRENT: dict[str, Any] = {}  # the sampling run being shown, by sampler


def interactive() -> bool:
    """Whether a bar can be drawn: stderr is a terminal, or this is a notebook's kernel."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _bar_class() -> Any:
    """tqdm's notebook widget in a kernel with ipywidgets, else its text bar (which a notebook
    shows too; tqdm.auto would warn there without ipywidgets)."""
    if "ipykernel" in sys.modules:
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm


def _eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or unknown
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class Progress:
    """One sampling run's progress over `total` units of work (all chains' steps, or SMC runs'
    temperatures): a tqdm bar when `interactive()`, else a log line every tenth."""

    def __init__(self, label: str, total: float, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = 0.0
        self.t0 = time.monotonic()
        self.next_line = 1
        self.finished = False
        self.bar = None
        if interactive() and not silenced(log.name):  # a `logs.quiet()` block: no bar either
            tqdm = _bar_class()
            self.bar = tqdm(
                total=total, desc=label, unit=unit, leave=True, mininterval=0.5, file=sys.stderr
            )

    def advance(self, done: float, status: str) -> None:
        """Set the work done so far and a short status (phase, divergences, ...)."""
        self.done = min(done, self.total)
        if self.bar is not None:
            self.bar.set_postfix_str(status, refresh=False)
            self.bar.update(self.done - self.bar.n)
        else:
            while self.done >= self.next_line * self.total / LINES:
                elapsed = time.monotonic() - self.t0
                share = self.done / self.total
                eta = elapsed * (1 - share) / share if share > 0 else float("nan")
                log.info(f"{self.label}: {share:.0%} ({status}), ETA {_eta(eta)}")
                self.next_line += 1
        if self.done >= self.total:
            self.close()

    def close(self) -> None:
        """End the bar (its last state stays on screen)."""
        if not self.finished and self.bar is not None:
            self.bar.close()
        self.finished = True


class NutsProgress(Progress):
    """All chains of one NUTS run: steps of warm-up and sampling, divergences after warm-up."""

    def __init__(self, chains: int, total: int, tune: int) -> None:
        self.shape = (chains, total, tune)
        self.steps = [0] * chains
        self.divergences = 0
        super().__init__(f"NUTS, {chains} chain{'s' * (chains > 1)}", chains * total, "step")

    def step(self, chain: int, step: int, diverging: bool) -> None:
        tune = self.shape[2]
        self.steps[chain] = max(self.steps[chain], step + 1)
        if diverging and step >= tune:
            self.divergences += 1
        phase = "warm-up" if min(self.steps) <= tune else "sampling"
        self.advance(sum(self.steps), f"{phase}, {self.divergences} divergences")


def nuts_step(chain: int, step: int, chains: int, total: int, tune: int, diverging: bool) -> None:
    """A NUTS chain finished step `step` (0-based) of `total` (`tune` of them warm-up), with a
    divergent transition or not; from the compiled sampler's callback."""
    chain, step, diverging = int(chain), int(step), bool(diverging)
    with _LOCK:
        bar = _CURRENT.get("nuts")
        fresh = (
            bar is None
            or bar.finished
            or bar.shape != (chains, total, tune)
            or (step == 0 and bar.steps[chain] > 0)  # a chain starts again: a new run
        )
        if fresh:
            if bar is not None:
                bar.close()
            bar = _CURRENT["nuts"] = NutsProgress(chains, total, tune)
        bar.step(chain, step, diverging)


class SmcProgress(Progress):
    """The independent runs of tempered SMC, each from temperature 0 to 1."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.betas = [0.0] * runs
        super().__init__(f"SMC, {runs} run{'s' * (runs > 1)}", float(runs), "run")

    def stage(self, run: int, stage: int, beta: float, acceptance: float) -> None:
        self.betas[run] = max(self.betas[run], beta)
        status = (
            f"run {run + 1}, stage {stage + 1}, temperature {beta:.3f}, acceptance {acceptance:.2f}"
        )
        self.advance(sum(self.betas), status)


def smc_stage(run: int, runs: int, stage: int, beta: float, acceptance: float) -> None:
    """Tempered SMC run `run` of `runs` reached temperature `beta` at `stage` (0-based)."""
    with _LOCK:
        bar = _CURRENT.get("smc")
        if bar is None or bar.finished or bar.runs != runs or (run == 0 and stage == 0):
            if bar is not None:
                bar.close()
            bar = _CURRENT["smc"] = SmcProgress(runs)
        bar.stage(run, stage, float(beta), float(acceptance))
