"""`regimes.timing`: seconds per phase of a run, nested phases and JAX compilation counted once,
under their own names (the manifest's timing and the benchmarks read them)."""

from __future__ import annotations

import time

from regimes.timing import COMPILE, phase, recording


def test_nested_phases_are_exclusive_and_add_up() -> None:
    with recording() as rec:
        with phase("outer"):
            time.sleep(0.05)
            with phase("inner"):
                time.sleep(0.1)
            time.sleep(0.05)
        with phase("outer"):  # a phase entered again adds up
            time.sleep(0.05)
    seconds = rec.snapshot()
    assert set(seconds) == {"outer", "inner"}
    assert 0.1 <= seconds["inner"] < 0.2
    assert 0.15 <= seconds["outer"] < 0.3  # its own 0.15 s, not the inner phase's


def test_outside_a_recording_a_phase_records_nothing() -> None:
    with phase("alone"):
        pass
    with recording() as rec:
        pass
    assert rec.snapshot() == {}


def test_jax_compilation_inside_a_phase_counts_under_compile() -> None:
    import jax  # loaded before the phase, as a run's "imports" phase does
    import jax.numpy as jnp

    with recording() as rec, phase("sampling"):
        fn = jax.jit(lambda x: jnp.cumsum(jnp.sin(x) ** 2 + 1.5 * x))
        jax.block_until_ready(fn(jnp.arange(7.0)))  # traced, lowered and compiled here
    seconds = rec.snapshot()
    assert seconds[COMPILE] > 0
    assert seconds["sampling"] >= 0
