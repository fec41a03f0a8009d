"""Model families behind one declared interface (`base.Family`), found by name in a registry.

A family is one module here (or in another package, registered by entry point) defining a
`Family` subclass and an instance `FAMILY`; see `docs/adding-a-family.md`. The derived.nc
variables every family must write are declared in `schema.py`.
"""

from __future__ import annotations

from regimes.families.base import (
    Family,
    family_names,
    get_family,
    register,
    validate_options,
    validate_priors,
)

__all__ = [
    "Family",
    "family_names",
    "get_family",
    "register",
    "validate_options",
    "validate_priors",
]
