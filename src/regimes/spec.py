"""Model specs and priors declared as data: the lowest layer, shared by configs and families.

A model spec (`models/*.toml`) says how to model: the family, its options and its priors. Priors
are a PyMC distribution name and numeric parameters, so a run can store its fully resolved spec.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PRIOR_DISTRIBUTIONS = (
    "Normal",
    "HalfNormal",
    "StudentT",
    "HalfStudentT",
    "Uniform",
    "Beta",
    "Gamma",
    "InverseGamma",
    "Exponential",
    "LogNormal",
    "TruncatedNormal",
    "Dirichlet",
)


class Strict(BaseModel):
    """A frozen pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorSpec(Strict):
    """A prior declared as data: a PyMC distribution name and its numeric parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    dist: str

    @field_validator("dist")
    @classmethod
    def _known_dist(cls, value: str) -> str:
        if value not in PRIOR_DISTRIBUTIONS:
            raise ValueError(
                f"unknown distribution {value!r}; use one of {', '.join(PRIOR_DISTRIBUTIONS)}"
            )
        return value

    @model_validator(mode="after")
    def _numeric_params(self) -> PriorSpec:
        for key, value in self.params.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                raise ValueError(
                    f"parameter {key!r} must be a number or a list of numbers, found {value!r}"
                )
        return self

    @property
    def params(self) -> dict[str, Any]:
        """The distribution's keyword parameters (everything but `dist`)."""
        return dict(self.model_extra or {})


class ModelSpec(Strict):
    """A model specification: family, family-specific options and priors by parameter name."""

    family: str
    description: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    priors: dict[str, PriorSpec] = Field(default_factory=dict)
    name: str = ""
    path: str = ""
