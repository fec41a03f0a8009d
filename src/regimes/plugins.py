"""Plugins: what installed packages add to the core, found through entry points.

The core knows families, data rules, studies and sweeps; an *application* (a study's catalog
series, factors, model specs and the page parts that need code) is a package that registers
them here, the way a third-party model family registers itself (this repository's flagship
study is one: its package sits beside the core in `src/`, its entry points in pyproject.toml).
Every kind of addition has one entry-point group; each entry point names one object of the
group's kind or a sequence of them:

| group | an entry point names | read by |
| --- | --- | --- |
| `regimes.series` | `regimes.data.catalog.Series` (catalog entries) | `regimes.data.CATALOG` |
| `regimes.factors` | `regimes.factors.FactorDef` (a factor with its series recipe) | `regimes.factors.FACTORS` |
| `regimes.models` | `pathlib.Path` (a folder of model specs, `NAME.toml`) | `regimes.config.find_model_spec` |
| `regimes.studies` | `regimes.study.application.Application` | a study.toml's `application = NAME` |
| `regimes.families` | `regimes.families.base.Family` (read by `families/base.py` itself) | `regimes.families.get_family` |

A group is read where its kind is needed, the first time it is needed: importing `regimes` loads
no plugin, and a command that never looks up a factor never imports one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path

from regimes.errors import ConfigError

SERIES = "regimes.series"
FACTORS = "regimes.factors"
MODELS = "regimes.models"
STUDIES = "regimes.studies"
FAMILIES = "regimes.families"
GROUPS = (SERIES, FACTORS, MODELS, STUDIES, FAMILIES)


class PluginError(ConfigError):
    """An installed plugin registers something the core cannot use (it fails to import, names an
    object of the wrong kind, or reuses a name already taken)."""


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of `group`, sorted by name (a stable order across runs)."""
    return sorted(metadata.entry_points(group=group), key=lambda ep: (ep.name, ep.value))


def plugin_sources() -> dict[str, Path]:
    """The top-level package (or module) of every installed plugin, by name -> its folder (or
    file), found without importing it: what a reuse key hashes besides the core's own source."""
    out: dict[str, Path] = {}
    for group in GROUPS:
        for ep in entry_points(group):
            top = ep.module.split(".")[0]
            spec = importlib.util.find_spec(top) if top != "regimes" else None
            if spec is None or top in out:
                continue
            where = spec.submodule_search_locations
            out[top] = Path(next(iter(where))) if where else Path(str(spec.origin))
    return out


def load_group[T](group: str, kind: type[T]) -> list[tuple[str, T]]:
    """(plugin name, object) for every `kind` the installed plugins register under `group`; an
    entry point that fails to import or names anything else is a PluginError naming it."""
    out: list[tuple[str, T]] = []
    for ep in entry_points(group):
        where = f"plugin {ep.name!r} ({ep.value}, entry-point group {group})"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin is named, not a traceback from deep inside
            raise PluginError(
                f"{where} could not be loaded: {type(exc).__name__}: {exc}; reinstall or remove "
                "the package that provides it"
            ) from exc
        items = obj if isinstance(obj, list | tuple) else [obj]
        bad = [type(x).__name__ for x in items if not isinstance(x, kind)]
        if bad:
            raise PluginError(
                f"{where} names {bad[0]}, not {kind.__name__} (or a sequence of them); fix the "
                "entry point in the plugin's pyproject.toml"
            )
        out.extend((ep.name, x) for x in items)
    return out


class Registry[T](Mapping[str, T]):
    """Objects by name: the core's own, then those the installed plugins register under one
    entry-point group (read on first use). A name taken twice is a PluginError naming both
    owners; `register` adds or replaces one at run time (a notebook's own factor, a test)."""

    def __init__(
        self,
        what: str,
        group: str,
        kind: type[T],
        key: Callable[[T], str],
        builtin: Iterable[T] = (),
    ) -> None:
        self.what, self.group, self.kind, self.key = what, group, kind, key
        self._owner: dict[str, str] = {}  # who registered each name, for the clash message
        self._builtin: dict[str, T] = {}
        for item in builtin:
            self._put(self._builtin, item, "the core")
        self._loaded: dict[str, T] | None = None
        self._loading = False
        self._registered: dict[str, T] = {}

    def _put(self, into: dict[str, T], item: T, owner: str) -> None:
        name = self.key(item)
        if name in into:
            raise PluginError(
                f"{self.what} {name!r} is registered twice ({self._owner[name]} and {owner}); "
                "rename one"
            )
        into[name] = item
        self._owner[name] = owner

    def _entries(self) -> dict[str, T]:
        if self._loaded is None:
            if self._loading:
                raise PluginError(
                    f"a plugin of {self.group} looks up the {self.what} registry while it is "
                    "being loaded; look names up inside functions, not when the module is imported"
                )
            self._loading = True
            try:
                loaded = dict(self._builtin)
                for plugin, item in load_group(self.group, self.kind):
                    self._put(loaded, item, f"plugin {plugin!r}")
            finally:
                self._loading = False
            self._loaded = loaded
        return {**self._loaded, **self._registered} if self._registered else self._loaded

    def register(self, item: T) -> T:
        """Make `item` available by its name (replacing an earlier one of that name)."""
        if not isinstance(item, self.kind):
            raise TypeError(f"register() needs a {self.kind.__name__}; got {type(item).__name__}")
        self._registered[self.key(item)] = item
        return item

    def __getitem__(self, name: str) -> T:
        return self._entries()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries()
        except TypeError:  # an unhashable name (a list from a malformed config) is not a key
            return False

    def __repr__(self) -> str:
        return f"<{self.what} registry ({self.group}): {', '.join(self._entries())}>"
