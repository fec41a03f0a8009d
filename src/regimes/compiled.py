"""A PyMC model compiled once to JAX with its data containers as arguments, so a refit on new data
of the same shapes (SBC simulations, seeds, sweeps; leave-future-out refits on padded windows)
reuses the compiled log density, gradient and sampler instead of compiling them again.

PyMC's own JAX path (`pm.sample(nuts_sampler="numpyro")`) bakes the data into the graph as
constants and compiles the log density three times per fit (multistart log density, its
gradient, and the sampler's). Here the model's `pm.Data` containers become explicit inputs of one
rewritten graph, so:

- `CompiledModel.logp_and_grad` (one jitted function) drives the multi-start optimisation;
- `CompiledModel.sample` runs numpyro's NUTS on a numpyro model whose arguments are the data
  (`jit_model_args`), so a second call with data of the same shapes compiles nothing, and the
  persistent XLA cache finds the same executable in a new process;
- `CompiledModel.constrained` maps unconstrained draws back to the model's variables (and
  deterministics), again with the data as arguments.

`compiled_for(model, key)` keeps one `CompiledModel` per structural key in this process: the
caller's key (a family's spec and the column layout of its data), the data shapes (JAX compiles
for static shapes) and a digest of the graph's constants (data a family bakes into the graph
instead of a container), so a cached compilation never fits data it was not given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_CACHE: dict[str, CompiledModel] = {}
EXTRA_FIELDS = (
    "num_steps",
    "potential_energy",
    "energy",
    "adapt_state.step_size",
    "accept_prob",
    "diverging",
)


def _constants_for_other_shared(outputs: list) -> list:
    """Shared variables that are not data containers (none in our models) become constants."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs
    from pytensor.tensor import constant

    shared = [v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)]
    if not shared:
        return outputs
    return clone_replace(outputs, replace={v: constant(v.get_value(borrow=True)) for v in shared})


def _jaxify(inputs: list, outputs: list) -> Callable:
    """The PyTensor graph `outputs(inputs)` rewritten for JAX and turned into a JAX function."""
    import pymc.sampling.jax  # noqa: F401  (registers PyMC's JAX forms of its parameter checks)
    from pytensor.compile import mode
    from pytensor.graph import FunctionGraph
    from pytensor.link.jax.dispatch import jax_funcify

    fgraph = FunctionGraph(inputs=inputs, outputs=outputs, clone=True)
    mode.JAX.optimizer.rewrite(fgraph)
    return jax_funcify(fgraph)


@dataclass
class CompiledModel:
    """JAX functions of one model structure, with its data containers as arguments."""

    value_names: list[str]  # unconstrained value variables, in model order
    value_shapes: list[tuple[int, ...]]
    data_names: list[str]  # the model's data containers (pm.Data), in argument order
    sample_names: list[str]  # constrained variables and deterministics stored as the posterior
    logp_fn: Callable  # (*values, *data) -> [logp]
    constrain_fn: Callable  # (*values, *data) -> sample_names' values
    forward_fn: Callable  # (*free RV values, *data) -> value variables (prior draws -> starts)
    _jit: dict[str, Any] = field(default_factory=dict)
    _mcmc: dict[tuple, Any] = field(default_factory=dict)

    @classmethod
    def from_model(cls, model) -> CompiledModel:
        """Rewrite and jaxify the model's log density (with Jacobians), its constraining map and
        the transform of prior draws to the unconstrained space, data containers as inputs."""
        import pytensor.tensor as pt
        from pymc.util import get_default_varnames
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.graph.replace import clone_replace
        from pytensor.graph.traversal import graph_inputs

        logp = model.logp()
        sample_vars = list(
            get_default_varnames(model.unobserved_value_vars, include_transformed=False)
        )
        free = list(model.free_RVs)
        rv_inputs = [rv.type() for rv in free]
        forward = []
        for rv, value in zip(free, rv_inputs, strict=True):
            transform = model.rvs_to_transforms.get(rv)
            forward.append(value if transform is None else transform.forward(value, *rv.owner.inputs))
        graphs = [logp, *sample_vars, *forward]
        shared = [
            v
            for v in graph_inputs(graphs)
            if isinstance(v, SharedVariable) and v.name in model.named_vars
        ]
        # static shapes: JAX needs them (scan lengths, slices); a new shape is a new compilation
        data_inputs = [
            pt.tensor(name=v.name, dtype=v.dtype, shape=np.shape(v.get_value(borrow=True)))
            for v in shared
        ]
        # one replacement: data containers -> inputs, and the free variables the forward
        # transforms depend on (other priors' values) -> the prior-draw inputs
        replace = dict(zip(shared, data_inputs, strict=True)) | dict(
            zip(free, rv_inputs, strict=True)
        )
        replaced = clone_replace(graphs, replace=replace)
        n_sample = len(sample_vars)

        def jaxify(inputs, outputs):
            return _jaxify(inputs, _constants_for_other_shared(outputs))

        values = list(model.value_vars)
        point = model.initial_point()
        return cls(
            value_names=[v.name for v in values],
            value_shapes=[np.shape(point[v.name]) for v in values],
            data_names=[v.name for v in shared],
            sample_names=[v.name for v in sample_vars],
            logp_fn=jaxify([*values, *data_inputs], [replaced[0]]),
            constrain_fn=jaxify([*values, *data_inputs], replaced[1 : 1 + n_sample]),
            forward_fn=jaxify([*rv_inputs, *data_inputs], replaced[1 + n_sample :]),
        )

    # ------------------------------------------------------------------ data

    def data_of(self, model) -> list[np.ndarray]:
        """The current values of the model's data containers, in argument order."""
        return [np.asarray(model[name].get_value(borrow=True)) for name in self.data_names]

    # ------------------------------------------------------------------ flat parameter vectors

    @property
    def sizes(self) -> list[int]:
        """Number of elements of each value variable."""
        return [int(np.prod(s)) for s in self.value_shapes]

    def unflatten(self, x):
        """A flat unconstrained vector as the list of value-variable arrays."""
        out, i = [], 0
        for shape, size in zip(self.value_shapes, self.sizes, strict=True):
            out.append(x[i : i + size].reshape(shape))
            i += size
        return out

    def logp_and_grad(self) -> Callable:
        """jit((flat x, data) -> (log density, gradient)): compiled once per data shapes."""
        if "logp_and_grad" not in self._jit:
            import jax

            def logp_flat(x, data):
                return self.logp_fn(*self.unflatten(x), *data)[0]

            self._jit["logp_and_grad"] = jax.jit(jax.value_and_grad(logp_flat))
        return self._jit["logp_and_grad"]

    def to_unconstrained(self, rv_values: list[np.ndarray], data: list[np.ndarray]) -> np.ndarray:
        """Prior draws of the free variables (constrained) as one flat unconstrained vector."""
        if "forward" not in self._jit:
            import jax

            self._jit["forward"] = jax.jit(lambda rvs, data: self.forward_fn(*rvs, *data))
        parts = self._jit["forward"](rv_values, data)
        return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])

    def constrained(self, values: list[np.ndarray], data: list[np.ndarray]) -> dict[str, Any]:
        """Constrained variables and deterministics at one unconstrained point."""
        if "constrain" not in self._jit:
            import jax

            self._jit["constrain"] = jax.jit(lambda v, data: self.constrain_fn(*v, *data))
        outs = self._jit["constrain"](values, data)
        return {n: np.asarray(o) for n, o in zip(self.sample_names, outs, strict=True)}

    # ------------------------------------------------------------------ NUTS

    def _numpyro_model(self):
        import numpyro
        import numpyro.distributions as dist

        def model(*data):
            values = [
                numpyro.sample(
                    name, dist.ImproperUniform(dist.constraints.real, (), event_shape=shape)
                )
                for name, shape in zip(self.value_names, self.value_shapes, strict=True)
            ]
            numpyro.factor("logp", self.logp_fn(*values, *data)[0])

        return model

    def sample(
        self,
        data: list[np.ndarray],
        init: list[np.ndarray],
        *,
        draws: int,
        tune: int,
        chains: int,
        target_accept: float,
        seed: int,
        progress: bool = False,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
        """NUTS from `init` (unconstrained values, each (chains, *shape)). Returns the
        constrained posterior draws (chain, draw, ...), the sampler statistics PyMC reports
        (lp as log density, diverging, tree_depth, ...) and the sampling seconds."""
        import jax
        import jax.numpy as jnp
        from numpyro.infer import MCMC, NUTS

        key = (draws, tune, chains, float(target_accept), progress)
        if key not in self._mcmc:
            kernel = NUTS(
                self._numpyro_model(),
                target_accept_prob=target_accept,
                adapt_step_size=True,
                adapt_mass_matrix=True,
                dense_mass=False,
            )
            self._mcmc[key] = MCMC(
                kernel,
                num_warmup=tune,
                num_samples=draws,
                num_chains=chains,
                chain_method="parallel",
                progress_bar=progress,
                jit_model_args=True,
            )
        mcmc = self._mcmc[key]
        rng = jax.random.PRNGKey(seed)
        if chains > 1:
            rng = jax.random.split(rng, chains)
        init_params = {n: jnp.asarray(v) for n, v in zip(self.value_names, init, strict=True)}
        if chains == 1:
            init_params = {n: v[0] for n, v in init_params.items()}
        t0 = time.perf_counter()
        mcmc.run(rng, *[jnp.asarray(d) for d in data], init_params=init_params,
                 extra_fields=EXTRA_FIELDS)  # fmt: skip
        raw = mcmc.get_samples(group_by_chain=True)
        seconds = time.perf_counter() - t0
        values = [raw[n] for n in self.value_names]
        if "posterior" not in self._jit:

            def constrain_draws(values, data):
                return jax.vmap(jax.vmap(lambda v: self.constrain_fn(*v, *data)))(values)

            self._jit["posterior"] = jax.jit(constrain_draws)
        outs = self._jit["posterior"](values, [jnp.asarray(d) for d in data])
        posterior = {n: np.asarray(o) for n, o in zip(self.sample_names, outs, strict=True)}
        stats = _stats(mcmc)
        return posterior, stats, seconds


def _stats(mcmc) -> dict[str, np.ndarray]:
    """numpyro's extra fields under PyMC's names; lp is the log density (−potential energy)."""
    rename = {
        "potential_energy": "lp",
        "adapt_state.step_size": "step_size",
        "num_steps": "n_steps",
        "accept_prob": "acceptance_rate",
    }
    out: dict[str, np.ndarray] = {}
    for name, value in mcmc.get_extra_fields(group_by_chain=True).items():
        if isinstance(value, dict | tuple):
            continue
        value = np.asarray(value).copy()
        out[rename.get(name, name)] = value
        if name == "num_steps":
            out["tree_depth"] = np.log2(value).astype(int) + 1
    out["lp"] = -out["lp"]
    return out


def constants_digest(model) -> str:
    """sha256 of every constant in the model's log density: data a family bakes into the graph
    (not a `pm.Data` container) is part of the structure, so a cached compilation is reused only
    for the same constants and never silently fits old data."""
    import hashlib

    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs

    h = hashlib.sha256()
    for var in graph_inputs([model.logp()]):
        if isinstance(var, Constant):
            value = np.asarray(var.data)
            h.update(f"{value.dtype}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def data_shapes(model) -> str:
    """The shapes of the model's data containers (a compilation is specific to them)."""
    from pytensor.compile.sharedvalue import SharedVariable

    return ",".join(
        f"{v.name}{np.shape(v.get_value(borrow=True))}"
        for v in model.data_vars
        if isinstance(v, SharedVariable)
    )


def compiled_for(model, key: str) -> CompiledModel:
    """The compiled functions of `model`'s structure, made once per `key` (a family's spec and
    data layout), data shapes and constants in this process."""
    full = f"{key}|{data_shapes(model)}|{constants_digest(model)}"
    if full not in _CACHE:
        _CACHE[full] = CompiledModel.from_model(model)
    return _CACHE[full]
