"""The light paths load no heavy package: `regimes --help`, `import regimes.cli, regimes.config`,
loading an experiment config of every family (which imports the family's module to validate its
spec and priors) and a config error. Each of PyMC, PyTensor, JAX, numpyro, matplotlib, ArviZ,
SciPy and statsmodels costs from a tenth of a second to seconds on import, so a function needing
one imports it (or a module that loads it) where it is used (docs/modules.md#imports)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from regimes.config import find_model_spec, load_model_spec

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pymc", "pytensor", "jax", "jaxlib", "numpyro", "matplotlib", "arviz", "arviz_base",
         "arviz_stats", "arviz_plots", "scipy", "statsmodels", "dask", "distributed", "numba")  # fmt: skip

PROBE = """
import json, sys
from pathlib import Path
HEAVY = set(json.loads(sys.argv[1]))
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & HEAVY)
out = {}
import regimes.cli, regimes.config
out["import regimes.cli, regimes.config"] = loaded()
try:
    regimes.cli.main(["--help"])
except SystemExit:
    pass
out["regimes --help"] = loaded()
from regimes.errors import ConfigError
try:
    regimes.config.load_experiment({"model": "ms_mean", "data": {"target": "gold"}, "colour": 1})
except ConfigError:
    out["a config error"] = loaded()
for path in sys.argv[2:]:
    exp = regimes.config.load_experiment(Path(path))
    out[f"{exp.spec.family}: {Path(path).name}"] = loaded()
from regimes.families import family_names
print(json.dumps({"steps": out, "families": family_names()}))
"""


def one_experiment_per_family() -> dict[str, Path]:
    """The first shipped experiment config of each family (by its model spec's family)."""
    found: dict[str, Path] = {}
    for path in sorted((ROOT / "experiments").rglob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        if "model" not in raw:  # study.toml, sweep files
            continue
        family = load_model_spec(find_model_spec(raw["model"], path)).family
        found.setdefault(family, path)
    return found


def test_light_paths_load_no_heavy_package() -> None:
    configs = one_experiment_per_family()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *map(str, configs.values())],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    probed = json.loads(out.stdout.strip().splitlines()[-1])
    # every installed family (a fresh process: none registered at run time by a test)
    assert set(configs) == set(probed["families"]), "a family without a shipped experiment config"
    steps = probed["steps"]
    assert len(steps) == 3 + len(configs), steps  # the config error was raised and probed
    assert all(loaded == [] for loaded in steps.values()), steps
