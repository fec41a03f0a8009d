"""Small helpers shared by the benchmark scripts: load averages, plain-text tables and the
code before as a temporary git worktree."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages (other work shares the machine), or None where unknown."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats rounded, missing values as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def text_table(cols: list[str], rows: list[list[Any]]) -> str:
    """Rows of cells as an aligned plain-text table with a header rule."""
    body = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(x) for x in col) for col in zip(cols, *body, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    return "\n".join(lines)


@contextmanager
def reference_tree(root: Path, commit: str | None) -> Iterator[Path | None]:
    """`commit` of the repository at `root` checked out into a temporary git worktree for a
    benchmark's "before" side (None without a commit), removed on the way out."""
    if not commit:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "reference"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), commit],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False
            )
