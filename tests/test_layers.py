"""The package's modules form layers that only point down, with no import cycles and no imports
of another module's private names. The application plugins of this repository (`regimes_gold`)
sit above the whole core: a plugin may import the core, the core never a plugin. Parsed from the source (every import, at module level or inside
a function; `if TYPE_CHECKING:` blocks excepted), so a new upward import fails here first.

Layers, lowest first (a module may import its own layer and any below it): `LAYERS` below,
each module with its job in docs/modules.md (tests/test_modules_doc.py keeps the two in step):
0 foundation, 1 data, scaling and plots, 2 families, 3 inference, 4 runs on disk, 5 services,
6 presentation, 7 application, 8 command line, 9 applications (the plugins).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = [
    ("regimes.errors", "regimes.spec", "regimes.draws", "regimes.cache", "regimes.signals", "regimes.hmm",
     "regimes.kalman", "regimes.graphs", "regimes.spells", "regimes.smc", "regimes.bridge", "regimes.files", "regimes.reuse",
     "regimes.reversion", "regimes.progress", "regimes.plugins", "regimes.logs",
     "regimes.timing"),
    ("regimes.data", "regimes.factors", "regimes.dataset", "regimes.priors", "regimes.figures",
     "regimes.scaling"),
    ("regimes.families",),
    ("regimes.config", "regimes.sampling", "regimes.compiled", "regimes.anchoring", "regimes.modes", "regimes.diagnostics", "regimes.ppc",
     "regimes.fit", "regimes.userdata", "regimes.calibration", "regimes.summary", "regimes.cf", "regimes.advice",
     "regimes.inference_data"),
    ("regimes.results", "regimes.reopen"),
    ("regimes.lfo", "regimes.forecast", "regimes.compare"),
    ("regimes.report",),
    ("regimes.api", "regimes.study", "regimes.sweep"),
    ("regimes.cli",),
    ("regimes_gold",),
]  # fmt: skip
PACKAGES = ("regimes", "regimes_gold")  # the core and the plugins checked with it


def modules() -> dict[str, Path]:
    out = {}
    for path in (p for package in PACKAGES for p in (SRC / package).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def layer_of(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _owner(name: str) -> str:
    """The module a dotted import name lives in (a submodule, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every regimes import of `module`."""
    return parse_imports(MODULES[module].read_text(encoding="utf-8"))


def parse_imports(source: str) -> list[tuple[str, str, int]]:
    """The regimes imports of a module's source (see `imports`)."""
    tree = ast.parse(source)
    type_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    out = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                target = sub if sub in MODULES else _owner(node.module)
                out.append((target, "" if sub in MODULES else alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    out.append((_owner(alias.name), "", node.lineno))
    return out


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module not in PACKAGES:
            layer_of(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in PACKAGES))
def test_imports_point_down(module: str) -> None:
    mine = layer_of(module)
    upward = [
        f"line {line}: {target} (layer {layer_of(target)})"
        for target, _, line in GRAPH[module]
        if target not in PACKAGES and layer_of(target) > mine
    ]
    assert not upward, f"{module} (layer {mine}) imports upward: {upward}"


def test_no_private_names_from_other_modules() -> None:
    found = [
        f"{module}:{line} imports {name} from {target}"
        for module, edges in GRAPH.items()
        for target, name, line in edges
        if name.startswith("_") and target != module
    ]
    assert not found, found


def test_no_import_cycles() -> None:
    edges = {m: {t for t, _, _ in GRAPH[m] if t != m} for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_what_it_must() -> None:
    """The checks can fail: a lazy upward import, a private name, a type-only import and the
    core importing a plugin."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from regimes.api import run_experiment\n"
        "def f():\n    from regimes.cli import main\n    from regimes.hmm import _lse\n"
        "    import regimes_gold.factors\n"
    )
    found = parse_imports(source)
    assert ("regimes.cli", "main", 5) in found
    assert ("regimes.hmm", "_lse", 6) in found
    assert ("regimes_gold.factors", "", 7) in found
    assert all(target != "regimes.api" for target, _, _ in found)  # type-only: not an edge
    assert layer_of("regimes.hmm") < layer_of("regimes.cli") < layer_of("regimes_gold.factors")
