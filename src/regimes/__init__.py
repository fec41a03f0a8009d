"""regimes: Bayesian regime-switching models of a market's pricing anchor.

Importing the package changes nothing in the importing process: its loggers (`regimes.*`) have
a `NullHandler` and propagate to the application's logging set-up, and the process-wide settings
(compile caches, XLA host devices, BLAS threads, log lines on stderr) are made only by entry
points that call `regimes.cache.setup_process` (the `regimes` command, a Dask worker).
"""

from __future__ import annotations

import logging
from importlib import metadata

try:
    __version__ = metadata.version("regimes")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

logging.getLogger(__name__).addHandler(logging.NullHandler())
