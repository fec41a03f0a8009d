"""Shared test setup: caches inside the project, the data snapshot, a non-interactive backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("REGIMES_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("MPLBACKEND", "Agg")
_data = os.environ.get("REGIMES_DATA_DIR") or str(ROOT.parent / "shared" / "data")
os.environ["REGIMES_DATA_DIR"] = str(Path(_data).resolve())

from regimes.cache import setup_process  # noqa: E402

setup_process()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data snapshot (../shared/data); tests needing it skip only if it is absent."""
    path = Path(os.environ["REGIMES_DATA_DIR"])
    if not (path / "us_macro_monthly.csv").is_file():
        pytest.skip(f"data snapshot not found at {path}")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (for experiments/ and models/)."""
    return ROOT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long sampling runs (marked slow) first: with two xdist workers the suite's wall time is
    then about half its total instead of ending on one long test started last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
