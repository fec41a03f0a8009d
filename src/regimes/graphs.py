"""Fingerprints of PyTensor graphs: what a compiled function is specific to (the shapes of its
data containers and the constants baked into it), so a cache of compiled functions is reused
only where it computes the same thing on the new data."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from regimes.timing import phase

_COMPILED: dict[str, Any] = {}  # the one process-wide cache of compiled functions, by key


def cached[T](key: str, make: Callable[[], T]) -> T:
    """`make()`, once per `key` in this process: every compiled function (log densities and
    samplers, per-draw output passes) is kept here under a key that names its structure (a
    family's spec and data layout, the data shapes and a digest of the graph's constants)."""
    if key not in _COMPILED:
        _COMPILED[key] = make()
    return _COMPILED[key]


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


def compile_function(inputs: list[Any], outputs: Any) -> Any:
    """A function of `inputs` for the passes after sampling (HMM filters, transition paths),
    compiled through JAX: about 2 s where PyTensor's C backend takes 20-30 s on a cold compile
    cache for the same scan graphs, at the same per-call cost.

    The data containers the outputs read become inputs with the static shapes JAX needs (scan
    lengths, slices), filled from the containers at each call: setting a container's value (of
    the same shape) changes what the function computes, as with a PyTensor function."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs
    from pytensor.tensor.sharedvar import TensorSharedVariable

    listed = isinstance(outputs, list | tuple)
    outs = list(outputs) if listed else [outputs]
    shared = [v for v in graph_inputs(outs, blockers=inputs) if isinstance(v, TensorSharedVariable)]
    data = [
        pt.tensor(name=v.name, dtype=v.dtype, shape=np.shape(v.get_value(borrow=True)))
        for v in shared
    ]
    args = [v.type(name=v.name) for v in inputs]  # the inputs, cut from what computes them
    replace = dict(zip(inputs, args, strict=True)) | dict(zip(shared, data, strict=True))
    replaced = clone_replace(outs, replace=replace)
    with phase("compile"):
        fn = pytensor.function([*args, *data], replaced, on_unused_input="ignore", mode="JAX")

    def call(*args: Any) -> Any:
        result = fn(*args, *[v.get_value(borrow=True) for v in shared])
        return result if listed else result[0]

    return call
