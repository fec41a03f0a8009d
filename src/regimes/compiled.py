"""A PyMC model compiled once to JAX with its data containers as arguments, so a refit on new data
of the same shapes (SBC simulations, seeds, sweeps; leave-future-out refits on padded windows)
reuses the compiled log density, gradient and sampler instead of compiling them again.

PyMC's own JAX path (`pm.sample(nuts_sampler="numpyro")`) bakes the data into the graph as
constants and compiles the log density three times per fit (multistart log density, its
gradient, and the sampler's). Here the model's `pm.Data` containers become explicit inputs of one
rewritten graph, so:

- `CompiledModel.logp_and_grad` (one jitted function) drives the multi-start optimisation;
- `CompiledModel.sample` runs numpyro's NUTS kernel (its functional `hmc` API) in one jitted
  function per sampler settings whose arguments are the data, mapped over chains, so a second
  call with data of the same shapes compiles nothing, and the persistent XLA cache finds the
  same executable in a new process;
- `CompiledModel.constrained` maps unconstrained draws back to the model's variables (and
  deterministics), again with the data as arguments.

`compiled_for(model, key)` keeps one `CompiledModel` per structural key in this process: the
caller's key (a family's spec and the column layout of its data), the data shapes (JAX compiles
for static shapes) and a digest of the graph's constants (data a family bakes into the graph
instead of a container), so a cached compilation never fits data it was not given.
"""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regimes.graphs import cached, data_shapes, jaxify
from regimes.graphs import constants_digest as graph_constants
from regimes.timing import phase

_log = logging.getLogger(__name__)

PARTICLE_CHUNK = 16  # particles whose log densities SMC evaluates together (cache-sized)


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


@dataclass
class Adaptation:
    """NUTS tuning carried from one fit to the next fit of the same compiled model on nearby
    data (leave-future-out refits, one month apart): each chain's last position, step size and
    diagonal inverse mass matrix. A fit given a filled one starts there, keeps the mass matrix
    and re-tunes only the step size over `warm_tune(tune)` steps, instead of a multi-start
    optimisation and a full warm-up. Any fixed mass matrix leaves the posterior unchanged;
    warm-up draws are discarded either way. Empty (or filled for another structure): a cold
    fit, which fills it."""

    structure: str = ""  # the `compiled_for` key it was filled for
    position: list[np.ndarray] | None = None  # per value variable, (chains, *shape)
    step_size: np.ndarray | None = None  # (chains,)
    inverse_mass: np.ndarray | None = None  # (chains, n unconstrained)
    chain_mode: list[int] | None = None  # the modes the chains started in (`regimes.modes`)
    mode_log_densities: list[float] | None = None

    def ready_for(self, structure: str, chains: int) -> bool:
        """Filled by a fit of the same compiled structure with at least as many chains."""
        return (
            self.structure == structure
            and self.step_size is not None
            and len(self.step_size) >= chains
        )

    def take(self, chains: int) -> Adaptation:
        """The first `chains` chains' tuning (a quick refit of a run with more chains)."""
        assert self.position is not None and self.step_size is not None
        assert self.inverse_mass is not None
        return Adaptation(
            structure=self.structure,
            position=[p[:chains] for p in self.position],
            step_size=self.step_size[:chains],
            inverse_mass=self.inverse_mass[:chains],
            chain_mode=self.chain_mode[:chains] if self.chain_mode is not None else None,
            mode_log_densities=self.mode_log_densities,
        )

    def save(self, path: Path) -> None:
        """Write the filled tuning to `path` (`.npz`), so a later process (leave-future-out of
        a finished run) can warm-start from it."""
        assert self.position is not None and self.step_size is not None
        arrays = {f"position_{i}": p for i, p in enumerate(self.position)}
        extra = {"chain_mode": np.asarray(self.chain_mode)} if self.chain_mode is not None else {}
        with path.open("wb") as fh:
            np.savez(
                fh,
                structure=np.array(self.structure),
                step_size=self.step_size,
                inverse_mass=np.asarray(self.inverse_mass),
                mode_log_densities=np.asarray(self.mode_log_densities or [], dtype=float),
                **arrays,
                **extra,
            )

    @classmethod
    def load(cls, path: Path) -> Adaptation:
        """The tuning `save` wrote (empty when the file is missing or unreadable: a cold fit)."""
        try:
            with np.load(path) as f:
                n = sum(1 for k in f.files if k.startswith("position_"))
                return cls(
                    structure=str(f["structure"]),
                    position=[f[f"position_{i}"] for i in range(n)],
                    step_size=f["step_size"],
                    inverse_mass=f["inverse_mass"],
                    chain_mode=f["chain_mode"].tolist() if "chain_mode" in f.files else None,
                    mode_log_densities=f["mode_log_densities"].tolist() or None,
                )
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return cls()


def warm_tune(tune: int) -> int:
    """Warm-up steps of a warm-started fit: a third of the cold warm-up, at least 30 (the step
    size's dual averaging from a step size already tuned to this posterior)."""
    return min(tune, max(30, tune // 3))


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
    split_fn: Callable  # (*values, *data) -> [log prior with Jacobians, log likelihood] (SMC)
    structure: str = ""  # the `compiled_for` key: what an `Adaptation` must have been filled for
    _jit: dict[str, Any] = field(default_factory=dict)

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
            forward.append(
                value if transform is None else transform.forward(value, *rv.owner.inputs)
            )
        graphs = [logp, *sample_vars, *forward, model.varlogp, model.datalogp]
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

        def to_jax(inputs, outputs):
            return jaxify(inputs, _constants_for_other_shared(outputs))

        values = list(model.value_vars)
        point = model.initial_point()
        return cls(
            value_names=[v.name for v in values],
            value_shapes=[np.shape(point[v.name]) for v in values],
            data_names=[v.name for v in shared],
            sample_names=[v.name for v in sample_vars],
            logp_fn=to_jax([*values, *data_inputs], [replaced[0]]),
            constrain_fn=to_jax([*values, *data_inputs], replaced[1 : 1 + n_sample]),
            forward_fn=to_jax([*rv_inputs, *data_inputs], replaced[1 + n_sample : -2]),
            split_fn=to_jax([*values, *data_inputs], replaced[-2:]),
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
        """A flat unconstrained vector (or a batch of them, (..., d)) as the list of
        value-variable arrays (each (..., *shape))."""
        out, i = [], 0
        for shape, size in zip(self.value_shapes, self.sizes, strict=True):
            out.append(x[..., i : i + size].reshape((*x.shape[:-1], *shape)))
            i += size
        return out

    def _logp_flat(self, x, data):
        """The log density (Jacobians included) at one flat unconstrained point."""
        return self.logp_fn(*self.unflatten(x), *data)[0]

    def logp_and_grad(self) -> Callable:
        """jit((flat x, data) -> (log density, gradient)): compiled once per data shapes."""
        if "logp_and_grad" not in self._jit:
            import jax

            self._jit["logp_and_grad"] = jax.jit(jax.value_and_grad(self._logp_flat))
        return self._jit["logp_and_grad"]

    def hessian(self) -> Callable:
        """jit((flat x, data) -> Hessian of the log density): Laplace masses of the optima."""
        if "hessian" not in self._jit:
            import jax

            self._jit["hessian"] = jax.jit(jax.hessian(self._logp_flat))
        return self._jit["hessian"]

    def to_unconstrained(self, rv_values: list[np.ndarray], data: list[np.ndarray]) -> np.ndarray:
        """Prior draws of the free variables (constrained) as one flat unconstrained vector."""
        if "forward" not in self._jit:
            import jax

            self._jit["forward"] = jax.jit(lambda rvs, data: self.forward_fn(*rvs, *data))
        parts = self._jit["forward"](rv_values, data)
        return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])

    def unconstrained_draws(self, rv_draws: list[np.ndarray], data: list[np.ndarray]) -> np.ndarray:
        """Draws of the free variables (each (n, *shape), constrained) as flat unconstrained
        vectors (n, d): the posterior's draws where the sampler's own positions are gone."""
        if "forward_batch" not in self._jit:
            import jax

            def flat(rvs, data):
                import jax.numpy as jnp

                parts = self.forward_fn(*rvs, *data)
                return jnp.concatenate([jnp.ravel(p) for p in parts])

            self._jit["forward_batch"] = jax.jit(jax.vmap(flat, in_axes=(0, None)))
        return np.asarray(self._jit["forward_batch"](rv_draws, data), dtype=float)

    def log_density_batch(self) -> Callable:
        """jit((points (n, d), data) -> log density (n,)), Jacobians included: the prior and
        likelihood halves of `prior_and_likelihood` summed (bridge sampling's evaluations)."""
        if "log_density_batch" not in self._jit:
            import jax

            split = self.prior_and_likelihood()
            self._jit["log_density_batch"] = jax.jit(lambda x, data: sum(split(x, data)))
        return self._jit["log_density_batch"]

    def constrained(self, values: list[np.ndarray], data: list[np.ndarray]) -> dict[str, Any]:
        """Constrained variables and deterministics at one unconstrained point."""
        if "constrain" not in self._jit:
            import jax

            self._jit["constrain"] = jax.jit(lambda v, data: self.constrain_fn(*v, *data))
        outs = self._jit["constrain"](values, data)
        return {n: np.asarray(o) for n, o in zip(self.sample_names, outs, strict=True)}

    def prior_and_likelihood(self) -> Callable:
        """(particles (n, d), data) -> (log prior with Jacobians (n,), log likelihood (n,)), the
        two halves of the log density tempered SMC (`regimes.smc`) needs: vectorised over
        particles in chunks of `PARTICLE_CHUNK`, one after the other, so each chunk's
        intermediate arrays (particles × months × states) stay in the CPU's cache; the whole
        cloud at once streams them through memory, about 3× slower for 3000 particles."""
        if "split" not in self._jit:
            import jax
            import jax.numpy as jnp

            def split(x, data):
                lp, ll = self.split_fn(*self.unflatten(x), *data)
                return lp, ll

            each = jax.vmap(split, in_axes=(0, None))

            def chunked(x, data):
                n, size = x.shape[0], min(x.shape[0], PARTICLE_CHUNK)
                count = -(-n // size)
                padded = jnp.concatenate(
                    [x, jnp.broadcast_to(x[:1], (count * size - n, x.shape[1]))]
                )
                lp, ll = jax.lax.map(lambda c: each(c, data), padded.reshape(count, size, -1))
                return lp.reshape(-1)[:n], ll.reshape(-1)[:n]

            self._jit["split"] = chunked
        return self._jit["split"]

    def smc_kernels(self) -> dict[str, Callable]:
        """The jitted SMC kernels of this structure (`regimes.smc.make_kernels`), made once."""
        if "smc" not in self._jit:
            from regimes.smc import make_kernels

            self._jit["smc"] = make_kernels(self.prior_and_likelihood())
        return self._jit["smc"]

    def posterior_of(self, values: list[Any], data: list) -> dict[str, np.ndarray]:
        """Constrained variables and deterministics of unconstrained draws (each value
        variable (chains, draws, *shape)), as the posterior group stores them."""
        if "posterior" not in self._jit:
            import jax

            def constrain_draws(values, data):
                return jax.vmap(jax.vmap(lambda v: self.constrain_fn(*v, *data)))(values)

            self._jit["posterior"] = jax.jit(constrain_draws)
        outs = self._jit["posterior"](values, data)
        return {n: np.asarray(o) for n, o in zip(self.sample_names, outs, strict=True)}

    # ------------------------------------------------------------------ NUTS

    def _chain_runner(
        self,
        tune: int,
        draws: int,
        target_accept: float,
        chains: int,
        progress: bool,
        warm: bool = False,
    ) -> Callable:
        """One compiled NUTS run per chain — warm-up then draws, numpyro's kernel (the same
        dual-averaging step size and windowed diagonal mass-matrix adaptation `MCMC` uses) —
        with the data as arguments, mapped over chains. Made once per settings: a call with
        new data of the same shapes compiles nothing. (numpyro's `MCMC.run` closes over the
        data in a fresh `partial` for its `pmap`, so every run with new data recompiled the
        sampler: about 5 s a refit.) `warm`: each chain also takes a step size and inverse mass
        matrix to start from, and adapts only the step size (`Adaptation`)."""
        key = ("runner", tune, draws, float(target_accept), chains, progress, warm)
        if key in self._jit:
            return self._jit[key]
        import jax
        from numpyro.infer.hmc import hmc

        names, logp_fn = list(self.value_names), self.logp_fn

        def potential_fn_gen(*data):
            def potential(z):
                return -logp_fn(*[z[n] for n in names], *data)[0]

            return potential

        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

        total = tune + draws
        every = max(1, total // 100)

        def report(step, chain, diverging):
            from regimes.progress import nuts_step

            nuts_step(chain, step, chains, total, tune, diverging)

        def run_chain(rng_key, init_params, data, chain, step_size=1.0, inverse_mass=None):
            data = tuple(data)
            state = init_kernel(
                init_params,
                num_warmup=tune,
                step_size=step_size,
                inverse_mass_matrix=inverse_mass,
                target_accept_prob=target_accept,
                adapt_step_size=True,
                adapt_mass_matrix=not warm,
                dense_mass=False,
                model_args=data,
                rng_key=rng_key,
            )

            def step(state, i):
                state = sample_kernel(state, model_args=data)
                if progress:  # every hundredth step of each chain, its last, each divergence
                    jax.lax.cond(
                        (i % every == 0) | (i == total - 1) | (state.diverging & (i >= tune)),
                        lambda: jax.debug.callback(report, i, chain, state.diverging),
                        lambda: None,
                    )
                fields = (
                    state.z,
                    state.potential_energy,
                    state.energy,
                    state.num_steps,
                    state.accept_prob,
                    state.diverging,
                    state.adapt_state.step_size,
                )
                return state, fields

            final, trace = jax.lax.scan(step, state, jax.numpy.arange(total))
            adapted = (final.adapt_state.step_size, final.adapt_state.inverse_mass_matrix)
            return jax.tree.map(lambda x: x[tune:], trace), adapted

        if chains > 1 and jax.local_device_count() >= chains:  # one host device per chain
            runner = jax.pmap(run_chain, in_axes=(0, 0, None, 0, 0, 0) if warm else (0, 0, None, 0))
        else:  # chains one after the other on one device

            def runner(keys, inits, data, chain_ids, *tuning):
                return jax.lax.map(
                    lambda a: run_chain(a[0], a[1], data, a[2], *a[3:]),
                    (keys, inits, chain_ids, *tuning),
                )

            runner = jax.jit(runner)
        self._jit[key] = runner
        return runner

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
        tuning: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float, Adaptation]:
        """NUTS from `init` (unconstrained values, each (chains, *shape)). Returns the
        constrained posterior draws (chain, draw, ...), the sampler statistics PyMC reports
        (lp as log density, diverging, tree_depth, ...), the sampling seconds and each chain's
        final position and tuning (`Adaptation`, structure unset). `tuning`: each chain's step
        size and inverse mass matrix to warm-start from (mass matrix then kept)."""
        import jax
        import jax.numpy as jnp

        warm = tuning is not None
        runner = self._chain_runner(tune, draws, target_accept, chains, progress, warm)
        # as numpyro's MCMC: one key per chain, split once more for the kernel
        keys = jax.random.split(jax.random.PRNGKey(seed), chains)
        keys = jax.vmap(lambda k: jax.random.split(k)[0])(keys)
        init_params = {n: jnp.asarray(v) for n, v in zip(self.value_names, init, strict=True)}
        device_data = [jnp.asarray(d) for d in data]
        t0 = time.perf_counter()
        extra = [jnp.asarray(t) for t in tuning] if warm else []
        trace, (final_step, final_mass) = runner(
            keys, init_params, device_data, jnp.arange(chains), *extra
        )
        z, potential, energy, n_steps, accept, diverging, step_size = trace
        values = [z[n] for n in self.value_names]
        jax.block_until_ready(values)
        seconds = time.perf_counter() - t0
        posterior = self.posterior_of(values, device_data)
        n_steps = np.asarray(n_steps)
        stats = {
            "lp": -np.asarray(potential),
            "energy": np.asarray(energy),
            "n_steps": n_steps,
            "tree_depth": np.log2(n_steps).astype(int) + 1,
            "acceptance_rate": np.asarray(accept),
            "diverging": np.asarray(diverging),
            "step_size": np.asarray(step_size),
        }
        adaptation = Adaptation(
            position=[np.asarray(v[:, -1]) for v in values],
            step_size=np.asarray(final_step),
            inverse_mass=np.asarray(final_mass),
        )
        return posterior, stats, seconds, adaptation


def constants_digest(model) -> str:
    """sha256 of every constant in the model's log density (see `graphs.constants_digest`)."""
    return graph_constants([model.logp()])


def compiled_for(model, key: str) -> CompiledModel:
    """The compiled functions of `model`'s structure, made once per `key` (a family's spec and
    data layout), data shapes and constants in this process."""
    full = f"{key}|{data_shapes(model)}|{constants_digest(model)}"

    def make() -> CompiledModel:
        with phase("compile"):
            compiled = CompiledModel.from_model(model)
        compiled.structure = full
        return compiled

    return cached(f"model|{full}", make)
