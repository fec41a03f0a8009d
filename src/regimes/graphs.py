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


def clear_cache() -> None:
    """Drop every compiled function of this process (a benchmark's cold start; the on-disk
    JAX cache is kept)."""
    _COMPILED.clear()


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


def jaxify(inputs: list[Any], outputs: list[Any]) -> Callable[..., Any]:
    """The PyTensor graph `outputs(inputs)` rewritten for JAX and turned into a JAX function
    (returning the outputs as a sequence): jit it, vmap it."""
    import pymc.sampling.jax  # noqa: F401  (registers PyMC's JAX forms of its parameter checks)
    from pytensor.compile import mode
    from pytensor.graph import FunctionGraph
    from pytensor.link.jax.dispatch import jax_funcify

    fgraph = FunctionGraph(inputs=inputs, outputs=outputs, clone=True)
    mode.JAX.optimizer.rewrite(fgraph)
    return jax_funcify(fgraph)


class CompiledFunction:
    """A function of a graph's inputs compiled through JAX (`compile_function`): called with one
    value per input, or `batched` with a leading axis of draws on every input (one vmapped call
    instead of a Python loop over draws). The data containers the graph reads are passed at
    each call, from their current values."""

    def __init__(self, fn: Callable[..., Any], shared: list[Any], n_inputs: int, listed: bool):
        self.fn, self.shared, self.n_inputs, self.listed = fn, shared, n_inputs, listed
        self._jit: dict[str, Any] = {}

    def _data(self) -> list[Any]:
        return [v.get_value(borrow=True) for v in self.shared]

    def _out(self, result: Any, n: int | None = None) -> Any:
        arrays = [np.asarray(r) if n is None else np.asarray(r)[:n] for r in result]
        return arrays if self.listed else arrays[0]

    def __call__(self, *args: Any) -> Any:
        if "one" not in self._jit:
            import jax

            self._jit["one"] = jax.jit(self.fn)
        return self._out(self._jit["one"](*args, *self._data()))

    def batched(self, *args: Any, size: int | None = None) -> Any:
        """The outputs for a batch of draws (each argument (m, ...)), stacked (m, ...); with
        `size`, the batch is padded to `size` draws (repeating its last), so calls with up to
        `size` draws share one compilation."""
        if "batched" not in self._jit:
            import jax

            axes = (0,) * self.n_inputs + (None,) * len(self.shared)
            self._jit["batched"] = jax.jit(jax.vmap(self.fn, in_axes=axes))
        arrays = [np.asarray(a) for a in args]
        m = arrays[0].shape[0]
        if size is not None and size > m:
            arrays = [np.concatenate([a, np.repeat(a[-1:], size - m, axis=0)]) for a in arrays]
        return self._out(self._jit["batched"](*arrays, *self._data()), m)


def compile_function(inputs: list[Any], outputs: Any) -> CompiledFunction:
    """A function of `inputs` for the passes after sampling (HMM filters, transition paths),
    compiled through JAX: about 2 s where PyTensor's C backend takes 20-30 s on a cold compile
    cache for the same scan graphs, at the same per-call cost; `.batched` runs many draws in
    one vmapped call.

    The data containers the outputs read become inputs with the static shapes JAX needs (scan
    lengths, slices), filled from the containers at each call: setting a container's value (of
    the same shape) changes what the function computes, as with a PyTensor function."""
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
        fn = jaxify([*args, *data], replaced)
    return CompiledFunction(fn, shared, len(args), listed)
