"""docs/adding-a-family.md can be followed end to end: its Python blocks, run in order, define and
register a complete family (run through the contract test as the case `doc-known-break` in
tests/test_family_contract.py), importing them loads no PyMC (a config names the family without
it), and its model spec is one `regimes` reads, refusing a typo with the key named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from doc_family import DOC, doc_blocks, doc_module
from regimes.config import load_model_spec
from regimes.errors import ConfigError
from regimes.families import Family, get_family


def test_the_doc_defines_and_registers_its_family() -> None:
    module = doc_module()
    assert isinstance(module.FAMILY, Family) and module.FAMILY.name == "known_break"
    assert get_family("known_break") is module.FAMILY
    assert not module.FAMILY.__abstractmethods__  # every abstract hook written


def test_the_doc_family_module_loads_no_pymc() -> None:
    probe = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from doc_family import doc_module\n"
        "doc_module()\n"
        "print(json.dumps(sorted(m for m in ('pymc', 'pytensor', 'jax') if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _spec_text() -> str:
    specs = [code for _, code in doc_blocks("toml") if 'family = "known_break"' in code]
    assert len(specs) == 1, f"{DOC.name} should show one known_break model spec"
    return specs[0]


def test_the_doc_model_spec_loads(tmp_path: Path) -> None:
    doc_module()  # registered, as a reader's notebook or package would have it
    path = tmp_path / "known_break.toml"
    path.write_text(_spec_text(), encoding="utf-8")
    spec = load_model_spec(path)
    opts = get_family(spec.family).validate_spec(spec, where=str(path))
    assert opts.break_month == "2022-03" and opts.transform == "log"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("break_month", "break_moth"), "options.break_moth"),
        (('"2022-03"', '"2022-3"'), "options.break_month"),
    ],
)
def test_a_typo_in_the_doc_spec_names_the_key(
    tmp_path: Path, edit: tuple[str, str], key: str
) -> None:
    doc_module()
    path = tmp_path / "known_break.toml"
    path.write_text(_spec_text().replace(*edit), encoding="utf-8")
    spec = load_model_spec(path)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        get_family(spec.family).validate_spec(spec, where=str(path))
