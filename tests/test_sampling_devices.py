"""numpyro draws chains in parallel only with one XLA host device per chain; with fewer it falls
back to one chain after another on one core (measured: 4 chains on 2 cores 1.8x slower)."""

from __future__ import annotations

from regimes.cache import HOST_DEVICES
from regimes.config import SamplerSection


def test_default_chains_get_a_device_each_after_pymc_jax_import() -> None:
    import jax
    import pymc.sampling.jax  # noqa: F401  (rewrites XLA_FLAGS on import, before JAX starts)

    chains = SamplerSection().chains
    assert chains <= HOST_DEVICES
    assert jax.local_device_count() >= chains, (
        f"{jax.local_device_count()} XLA host devices for {chains} chains: numpyro would draw "
        "them sequentially"
    )
