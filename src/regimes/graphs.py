"""Fingerprints of PyTensor graphs: what a compiled function is specific to (the shapes of its
data containers and the constants baked into it), so a cache of compiled functions is reused
only where it computes the same thing on the new data."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def constants_digest(outputs: list[Any]) -> str:
    """sha256 of every constant the graphs `outputs` depend on: data a family bakes into the
    graph (not a `pm.Data` container) is part of the structure, so a cached compilation is
    reused only for the same constants and never silently fits old data."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs

    h = hashlib.sha256()
    for var in graph_inputs(outputs):
        if isinstance(var, Constant):
            value = np.asarray(var.data)
            h.update(f"{value.dtype}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def data_shapes(model: Any) -> str:
    """The shapes of a PyMC model's data containers (a compilation is specific to them)."""
    from pytensor.compile.sharedvalue import SharedVariable

    return ",".join(
        f"{v.name}{np.shape(v.get_value(borrow=True))}"
        for v in model.data_vars
        if isinstance(v, SharedVariable)
    )
