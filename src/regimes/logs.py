"""How the library says what it is doing: every module logs on its own logger under `regimes`
(progress lines at INFO, detail at DEBUG), and a caller that wants silence raises the threshold
for a block with `quiet()`; no function takes a flag for it. Sampling progress bars follow the
same switch (`silenced`). The `regimes` command shows the INFO lines on stderr
(`cache.setup_process`); a notebook or another program sees what its own logging set-up lets
through.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ROOT = "regimes"  # the library's loggers are this one and its children (`regimes.api`, ...)

_LOCK = threading.Lock()
_HELD: dict[str, tuple[int, list[int]]] = {}  # logger: (its level before, the levels held on it)


def _hold(name: str, level: int, held: bool) -> None:
    """Hold `level` on the logger `name` (`held`), or let one such hold go: the logger shows the
    strictest level held, and its own level again once none is, whatever order blocks on several
    threads end in."""
    logger = logging.getLogger(name)
    before, levels = _HELD.get(name, (logger.level, []))
    if held:
        levels.append(level)
    else:
        levels.remove(level)
    if levels:
        _HELD[name] = (before, levels)
        logger.setLevel(max(*levels, before))
    else:
        _HELD.pop(name, None)
        logger.setLevel(before)


@contextmanager
def quiet(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Inside the block the loggers `names` (default: all of `regimes`) drop records below
    `level` (default: progress lines and detail; warnings still show), and sampling progress
    bars are not drawn; afterwards each is as it was. Blocks nest and may overlap on threads."""
    names = names or (ROOT,)
    with _LOCK:
        for name in names:
            _hold(name, level, held=True)
    try:
        yield
    finally:
        with _LOCK:
            for name in names:
                _hold(name, level, held=False)


def silenced(name: str = ROOT) -> bool:
    """Whether the logger `name` has been told to drop INFO lines: the nearest level set on it or
    on a parent below the root logger is above INFO (a `quiet()` block, or the user's own
    `logging.getLogger("regimes").setLevel(...)`). Unconfigured (a notebook): False."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None and logger is not logging.root:
        if logger.level != logging.NOTSET:
            return logger.level > logging.INFO
        logger = logger.parent
    return False


def quiet_keyword[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """Accept the `quiet=` keyword `fn` once took, for one release: `quiet=True` runs `fn` inside
    `quiet()`; either value warns (DeprecationWarning) that `with regimes.logs.quiet():` is the
    way now. The signature shown (help(), an IDE) keeps the keyword."""
    name = getattr(fn, "__qualname__", "this function")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "quiet" not in kwargs:
            return fn(*args, **kwargs)
        silent = kwargs.pop("quiet")
        warnings.warn(
            f"{name}(quiet=...) is deprecated and will be removed in the next release: wrap the "
            "call in `with regimes.logs.quiet():` instead",
            DeprecationWarning,
            stacklevel=2,
        )
        if not silent:
            return fn(*args, **kwargs)
        with quiet():
            return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    keyword = inspect.Parameter(
        "quiet", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="bool | None"
    )
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    wrapper.__signature__ = sig.replace(parameters=[*params[:at], keyword, *params[at:]])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
