"""docs/modules.md lists every module of the core and the plugins in the layer
tests/test_layers.py gives it, so a new module is documented where it sits (and a moved one
moved there too)."""

from __future__ import annotations

import re
from pathlib import Path

from test_layers import LAYERS, MODULES, PACKAGES, layer_of

DOC = Path(__file__).resolve().parents[1] / "docs" / "modules.md"
HEADING = re.compile(r"^### (\d+) ")
ROW = re.compile(r"^\| `([\w.]+)` \|")


def documented(text: str) -> dict[str, int]:
    """Module (full dotted name) -> the layer whose section lists it."""
    out: dict[str, int] = {}
    layer = None
    for line in text.splitlines():
        if m := HEADING.match(line):
            layer = int(m.group(1))
        elif line.startswith("## "):  # past the layers (the plugin tables name groups)
            layer = None
        elif (m := ROW.match(line)) and layer is not None:
            name = m.group(1)
            full = name if name.split(".")[0] in PACKAGES else f"regimes.{name}"
            assert full not in out, f"{name} is listed twice in {DOC.name}"
            out[full] = layer
    return out


def test_every_module_is_documented_in_its_layer() -> None:
    listed = documented(DOC.read_text(encoding="utf-8"))
    modules = {m for m in MODULES if m != "regimes"}
    assert sorted(modules - set(listed)) == [], f"missing from {DOC.name}"
    assert sorted(set(listed) - modules) == [], f"in {DOC.name} but not in src/"
    wrong = {m: (layer, layer_of(m)) for m, layer in listed.items() if layer != layer_of(m)}
    assert wrong == {}, "listed in another layer (doc, test_layers)"
    assert len({layer for layer in listed.values()}) == len(LAYERS)


def test_the_check_reads_the_doc_as_written() -> None:
    text = (
        "### 0 foundation\n| `errors` | x |\n### 9 applications\n| `regimes_gold.series` | y |\n"
        "## Plugins\n| `regimes.series` | a group, not a module |\n"
    )
    assert documented(text) == {"regimes.errors": 0, "regimes_gold.series": 9}
