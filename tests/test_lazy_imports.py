"""The command line starts without the modelling stack: `regimes --help` and a refused config
answer in well under a second because importing `regimes.cli` and `regimes.config`, and failing
on a config, load none of PyMC, PyTensor, JAX, numpyro, ArviZ or matplotlib (seconds of imports
that only fitting and drawing need; issue 30)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pymc", "pytensor", "jax", "numpyro", "arviz", "arviz_base", "matplotlib")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(body: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running `body`."""
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_command_line_and_the_config_loads_no_modelling_stack() -> None:
    assert loaded_after("import regimes, regimes.cli, regimes.config") == []


def test_a_refused_config_loads_no_modelling_stack(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "ms_mean"\n[data]\ntarget = "gold"\n', encoding="utf-8")
    body = (
        "from regimes.cli import main\n"
        f"code = main(['run', {str(bad)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "assert code == 2, code"
    )
    assert loaded_after(body) == []
    assert not (tmp_path / "out").exists()
