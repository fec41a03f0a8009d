"""User-facing error types: the CLI prints these as one clear line (no traceback without --debug)."""

from __future__ import annotations


class RegimesError(Exception):
    """Base class for errors caused by user input (configs, data, arguments), not by bugs."""


class ConfigError(RegimesError):
    """An experiment or model config is invalid; the message names the file and the key."""


class DataError(RegimesError):
    """A data file or series is missing or malformed; the message names it and says how to fix it."""


class UnknownSeriesError(DataError):
    """A series id is not in the catalog."""


class RunError(RegimesError):
    """A run directory is missing or incomplete."""
