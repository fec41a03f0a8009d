"""When a stored result may be reused: its reuse key, one for every cached result (a study's runs
and a sweep's tasks on `--resume`, a run's `lfo.nc` and `forecast.nc`).

A result is reused only when it was computed from the same inputs as it would be now: the same
config (as run), the same code (regimes' own source files, those of the installed plugins and
the numerical libraries' versions),
the same seed, the same bytes of every data file actually read (catalog files and the user's own
files or DataFrame columns, each by its sha256), and the same settings of the site (LFO's
threshold, a forecast's scenario files, ...). `Inputs.key` hashes them all; `Inputs.change`
says in a few words which of them differs, for the one log line that says why a result is
computed again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from regimes.plugins import plugin_sources

LIBRARIES = ("pymc", "pytensor", "jax", "numpyro", "numpy", "scipy", "arviz-stats", "xarray")


@lru_cache(maxsize=1)
def code_version() -> str:
    """regimes' version and the sha256 of its source files, the sha256 of each installed
    plugin's (an application's factors or page: `regimes.plugins`), and the versions of the
    numerical libraries a fit depends on: any change to them makes every stored result stale."""
    parts = [f"regimes {_version('regimes')} ({_source_hash(Path(__file__).resolve().parent)})"]
    parts += [f"{name} ({_source_hash(where)})" for name, where in plugin_sources().items()]
    parts += [f"{name} {_version(name)}" for name in LIBRARIES]
    return "; ".join(parts)


def _source_hash(where: Path) -> str:
    """The first 16 hex digits of the sha256 of a package's .py files (names and bytes), or of
    one module file."""
    files, root = (
        (sorted(where.rglob("*.py")), where) if where.is_dir() else ([where], where.parent)
    )
    h = hashlib.sha256()
    for path in files:
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def sha256_text(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Inputs:
    """What a result is computed from: `config` (sha256 of the config text as run), `seed`,
    `data` (a label per data input actually read, e.g. "us_macro_monthly.csv" or
    "data.series.mine", -> its sha256), `settings` (the site's own, JSON values) and `code`."""

    config: str
    seed: int | None
    data: Mapping[str, str]
    settings: Mapping[str, Any] = field(default_factory=dict)
    code: str = field(default_factory=code_version)

    def to_json(self) -> dict[str, Any]:
        """The inputs as stored beside the result (a manifest, done.json, attributes)."""
        return {
            "config": self.config,
            "seed": self.seed,
            "data": dict(sorted(self.data.items())),
            "settings": json.loads(json.dumps(self.settings, sort_keys=True, default=str)),
            "code": self.code,
        }

    @property
    def key(self) -> str:
        """The reuse key: sha256 of every input (the one key every reuse site compares)."""
        return sha256_text(json.dumps(self.to_json(), sort_keys=True))

    @classmethod
    def from_json(cls, value: Any) -> Inputs | None:
        """Inputs as stored, or None when absent or malformed (never reusable)."""
        if not isinstance(value, dict):
            return None
        data, settings = value.get("data"), value.get("settings", {})
        seed = value.get("seed")
        if (
            not isinstance(value.get("config"), str)
            or not isinstance(value.get("code"), str)
            or not isinstance(data, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
            or not isinstance(settings, dict)
            or not (seed is None or (isinstance(seed, int) and not isinstance(seed, bool)))
        ):
            return None
        return cls(value["config"], seed, data, settings, value["code"])

    def change(self, stored: Inputs | None) -> str:
        """Why a result computed from `stored` is not current ("" when it is), in a few words."""
        if stored is None:
            return "it records no reuse key (written by an older version, or damaged)"
        if stored.config != self.config:
            return "its config differs from the config as it would run now"
        if stored.seed != self.seed:
            return f"its seed {stored.seed} differs from {self.seed}"
        changed = [k for k in self.data if k in stored.data and stored.data[k] != self.data[k]]
        if changed:
            return f"the data changed since: {', '.join(sorted(changed))}"
        if set(stored.data) != set(self.data):
            new, gone = set(self.data) - set(stored.data), set(stored.data) - set(self.data)
            what = [f"now read: {', '.join(sorted(new))}"] if new else []
            what += [f"no longer read: {', '.join(sorted(gone))}"] if gone else []
            return f"it read other data files ({'; '.join(what)})"
        if json.dumps(stored.settings, sort_keys=True) != json.dumps(
            self.to_json()["settings"], sort_keys=True
        ):
            return f"its settings {dict(stored.settings)} differ from {self.to_json()['settings']}"
        if stored.code != self.code:
            return "it was computed by another version of regimes or its libraries"
        return "" if stored.key == self.key else "its reuse key differs"
