"""Sweeps: many fits of one experiment (real-time origins, seeds, grids, SBC simulations) on Dask,
combined along a new dimension. `run_sweep` is what `regimes sweep` calls; `open_sweep` opens
the result."""

from regimes.sweep.combine import SWEEP_NC, open_sweep
from regimes.sweep.runner import failed_tasks, run_sweep
from regimes.sweep.spec import Sweep, load_sweep

__all__ = ["SWEEP_NC", "Sweep", "failed_tasks", "load_sweep", "open_sweep", "run_sweep"]
