"""The example family of docs/adding-a-family.md, built from the doc's own Python blocks (run in
order in one fresh module, as a reader would paste them): the contract test runs it as a case, so
the doc cannot drift from the interface."""

from __future__ import annotations

import functools
import re
import sys
import types
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-family.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def doc_blocks(language: str) -> list[tuple[int, str]]:
    """(first line, code) of every fenced block of `language` in the doc, in order."""
    text = DOC.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == language
    ]


@functools.cache
def doc_module() -> types.ModuleType:
    """The doc's Python blocks executed in order as one module (which registers its family)."""
    module = types.ModuleType("adding_a_family_doc")
    module.__file__ = str(DOC)
    sys.modules[module.__name__] = module  # where pydantic and pickle look a class's module up
    for line, code in doc_blocks("python"):
        # blank lines in front: a traceback names the doc's own line numbers; none of this
        # file's `__future__` imports (a reader's module has none)
        source = "\n" * (line - 1) + code
        exec(compile(source, str(DOC), "exec", dont_inherit=True), module.__dict__)
    return module
