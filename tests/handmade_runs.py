"""Run directories written by hand, as `regimes run` writes them but without sampling: for the
tests that damage, swap or delete a run's files (test_faults, test_property_loaders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from regimes.results import CONFIG, DERIVED, POSTERIOR, write_netcdf, write_run


def derived_of(value: float) -> xr.Dataset:
    return xr.Dataset({"price": ("time", np.full(4, value))}, coords={"time": np.arange(4)})


def posterior_of(seed: int) -> xr.DataTree:
    draws = np.random.default_rng(seed).normal(size=(2, 50))
    post = xr.Dataset(
        {"mu": (("chain", "draw"), draws)}, coords={"chain": [0, 1], "draw": np.arange(50)}
    )
    return xr.DataTree.from_dict({"posterior": post})


def make_run(root: Path, run_id: str, value: float, posterior: bytes | None = None) -> Path:
    """A complete run directory written as `regimes run` writes one, without sampling."""

    def writer(tmp: Path) -> dict:
        write_netcdf(derived_of(value), tmp / DERIVED)
        if posterior is None:
            write_netcdf(posterior_of(int(value)), tmp / POSTERIOR)
        else:
            (tmp / POSTERIOR).write_bytes(posterior)
        (tmp / CONFIG).write_text('name = "exp"\n', encoding="utf-8")
        (tmp / "figures").mkdir()
        (tmp / "figures" / "fair_value.png").write_bytes(b"png" * int(value))
        return {"seed": int(value)}

    return write_run(root, "exp", run_id, writer)
