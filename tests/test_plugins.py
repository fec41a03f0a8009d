"""Library and application apart: the core (`src/regimes/`) names no application, and the gold
study's package (`src/regimes_gold/`) reaches it only through the entry points of
`regimes.plugins` — read lazily, checked, and part of every reuse key."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from regimes import plugins
from regimes.data import CATALOG, Series
from regimes.factors import FACTORS, FactorDef

CORE = Path(__file__).resolve().parents[1] / "src" / "regimes"
APPLICATION_NAMES = re.compile(r"gold|ddri|factor_inputs", re.IGNORECASE)


def application_names(root: Path) -> list[str]:
    """`path:line: text` of every line under `root` (its source, specs and styles; compiled
    caches skipped) that names the gold application."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if APPLICATION_NAMES.search(line):
                hits.append(f"{path.relative_to(root.parent)}:{n}: {line.strip()}")
    return hits


def test_the_core_names_no_application(tmp_path: Path) -> None:
    """No 'gold', 'DDRI' or 'FACTOR_INPUTS' anywhere in src/regimes/, docstrings and comments
    included: a second study starts without editing the core. (The check itself can fail.)"""
    assert application_names(CORE) == []
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "m.py").write_text(
        '"""Like gold."""\nx = 1  # the Ddri\nFACTOR_INPUTS = {}\n'
    )
    assert [h.split(":")[1] for h in application_names(tmp_path / "core")] == ["1", "2", "3"]


def test_the_gold_plugin_is_found_through_its_entry_points() -> None:
    """After the editable install, the core finds gold's catalog series, factors, model specs and
    study application through the entry-point groups, each the plugin's own object."""
    from regimes.config import find_model_spec
    from regimes.study.application import APPLICATIONS
    from regimes_gold import MODELS, factors, series, study

    assert ("gold", series.SERIES[0]) in plugins.load_group(plugins.SERIES, Series)
    assert CATALOG["GOLD"] is series.SERIES[0]
    assert all(FACTORS[f.name] is f for f in factors.FACTORS)
    spec = find_model_spec("ms_anchor_ecm", Path("experiments/gold/anchors.toml"))
    assert spec == MODELS / "ms_anchor_ecm.toml"
    assert APPLICATIONS["gold"] is study.APPLICATION


def test_importing_the_core_loads_no_plugin() -> None:
    """Importing regimes (data, factors, configs, studies) imports no plugin; the first catalog
    lookup imports the plugin's series module only, not its study page."""
    code = (
        "import sys, regimes, regimes.data, regimes.factors, regimes.dataset, regimes.config, "
        "regimes.study\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('regimes_gold'))\n"
        "assert loaded() == [], loaded()\n"
        "assert 'GOLD' in regimes.data.CATALOG\n"
        "print(loaded())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "['regimes_gold', 'regimes_gold.series']"


def _fake(monkeypatch: pytest.MonkeyPatch, *values: str) -> None:
    """Installed entry points of every group: plugins named p0, p1, ... pointing at `values`."""
    eps = [metadata.EntryPoint(f"p{i}", v, "test") for i, v in enumerate(values)]
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps)


def _factors() -> plugins.Registry[FactorDef]:
    return plugins.Registry("factor", "test", FactorDef, lambda f: f.name, [FACTORS["real_rate"]])


def test_a_plugin_that_cannot_be_used_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin that fails to import, names the wrong kind or takes a name already registered
    is a PluginError (a ConfigError: one line from the CLI) naming the plugin and the fix."""
    _fake(monkeypatch, "no_such_plugin_module:THINGS")
    with pytest.raises(plugins.PluginError, match=r"plugin 'p0' \(no_such_plugin_module:THINGS, "
                       r"entry-point group test\) could not be loaded: ModuleNotFoundError"):  # fmt: skip
        list(_factors())
    _fake(monkeypatch, "regimes.plugins:SERIES")  # a str
    with pytest.raises(plugins.PluginError, match=r"names str, not FactorDef \(or a sequence"):
        "ddri" in _factors()  # noqa: B015 - the lookup is what loads
    _fake(monkeypatch, "regimes_gold.factors:FACTORS", "regimes.factors:FACTORS")
    with pytest.raises(plugins.PluginError, match="names Registry, not FactorDef"):
        len(_factors())
    dup = metadata.EntryPoint("twin", "regimes_gold.factors:FACTORS", "test")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [dup, dup])
    with pytest.raises(
        plugins.PluginError, match=r"factor '\w+' is registered twice \(plugin 'twin' and plugin"
    ):
        _factors()["ddri"]


def test_a_registry_reads_its_plugins_once_and_takes_registrations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The core's entries first, then the plugins' (read on first use, once); `register` adds or
    replaces one by name; an unhashable name is simply not there."""
    calls: list[str] = []
    eps = [metadata.EntryPoint("gold", "regimes_gold.factors:FACTORS", "test")]
    monkeypatch.setattr(plugins, "entry_points", lambda group: calls.append(group) or eps)
    reg = _factors()
    assert calls == []
    assert next(iter(reg)) == "real_rate"  # the core's entry first, then the plugin's
    assert {"ddri", "excess_deficit"} <= set(reg)
    assert ["ddri"] not in reg  # type: ignore[comparison-overlap]
    mine = FactorDef("ddri", "my own", "percent", FACTORS["inflation"].fn, {"cpi": "CPIAUCSL"})
    assert reg.register(mine) is mine and reg["ddri"] is mine
    assert calls == ["test"]
    with pytest.raises(TypeError, match="needs a FactorDef"):
        reg.register("ddri")  # type: ignore[arg-type]


def test_reuse_keys_change_with_a_plugins_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stored result is stale once a plugin's source changes (its factors compute the data),
    as it is when the core's does."""
    import regimes.reuse as reuse

    assert "regimes_gold (" in reuse.code_version()
    pkg = tmp_path / "myplugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    monkeypatch.setattr(reuse, "plugin_sources", lambda: {"myplugin": pkg})
    try:
        reuse.code_version.cache_clear()
        before = reuse.code_version()
        (pkg / "__init__.py").write_text("X = 2\n")
        reuse.code_version.cache_clear()
        assert reuse.code_version() != before and "myplugin (" in before
    finally:
        reuse.code_version.cache_clear()
