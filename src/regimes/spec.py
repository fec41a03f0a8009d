"""Model specs and priors declared as data: the lowest layer, shared by configs and families.

A model spec (`models/*.toml`) says how to model: the family, its options and its priors. Priors
are a PyMC distribution name and numeric parameters, so a run can store its fully resolved spec.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# the posterior quantiles every derived.nc holds (the public contract)
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class Strict(BaseModel):
    """A frozen pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ plain names

NAME_MAX = 100
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
NAME_RULE = (
    f"use ASCII letters, digits, '_', '-' and '.' (not first, no '..'), at most {NAME_MAX} "
    "characters"
)


def plain_name_problem(value: str) -> str | None:
    """Why `value` cannot be used as one plain file or folder name (None when it can): no path
    separators, no '..', no leading dot, no control characters, not empty."""
    if not value:
        return f"must not be empty; {NAME_RULE}"
    if len(value) > NAME_MAX:
        return f"is {len(value)} characters long; {NAME_RULE}"
    if _NAME_RE.fullmatch(value) is None or ".." in value:
        bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "_-."))})
        what = (
            f" (contains {', '.join(repr(c) for c in bad)})"
            if bad
            else " (starts with '.' or contains '..')"
        )
        return f"must be a plain file name{what}; {NAME_RULE}"
    return None


# ------------------------------------------------------------------ priors

REAL, POSITIVE, UNIT = "a finite number", "a number > 0", "a number strictly between 0 and 1"


@dataclass(frozen=True)
class DistParams:
    """The parameters a prior distribution accepts, the valid range of each, and the ways they
    may be combined: each way is (required, optional) names; the given names must fit one."""

    params: dict[str, str]
    ways: tuple[tuple[frozenset[str], frozenset[str]], ...]
    ordered: tuple[str, str, float | None, float | None] | None = None  # lower, upper, defaults
    vector: frozenset[str] = frozenset()  # parameters that must be lists of at least two numbers


def _ways(*ways: tuple[str, str]) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    return tuple((frozenset(r.split()), frozenset(o.split())) for r, o in ways)


PRIOR_PARAMS: dict[str, DistParams] = {
    "Normal": DistParams(
        {"mu": REAL, "sigma": POSITIVE, "tau": POSITIVE}, _ways(("", "mu sigma"), ("", "mu tau"))
    ),
    "HalfNormal": DistParams(
        {"sigma": POSITIVE, "tau": POSITIVE}, _ways(("", "sigma"), ("", "tau"))
    ),
    "StudentT": DistParams(
        {"nu": POSITIVE, "mu": REAL, "sigma": POSITIVE, "lam": POSITIVE},
        _ways(("nu", "mu sigma"), ("nu", "mu lam")),
    ),
    "HalfStudentT": DistParams(
        {"nu": POSITIVE, "sigma": POSITIVE, "lam": POSITIVE}, _ways(("nu", "sigma"), ("nu", "lam"))
    ),
    "Uniform": DistParams(
        {"lower": REAL, "upper": REAL}, _ways(("", "lower upper")), ("lower", "upper", 0.0, 1.0)
    ),
    "Beta": DistParams(
        {"alpha": POSITIVE, "beta": POSITIVE, "mu": UNIT, "sigma": POSITIVE, "nu": POSITIVE},
        _ways(("alpha beta", ""), ("mu sigma", ""), ("mu nu", "")),
    ),
    "Gamma": DistParams(
        {"alpha": POSITIVE, "beta": POSITIVE, "mu": POSITIVE, "sigma": POSITIVE},
        _ways(("alpha beta", ""), ("mu sigma", "")),
    ),
    "InverseGamma": DistParams(
        {"alpha": POSITIVE, "beta": POSITIVE, "mu": POSITIVE, "sigma": POSITIVE},
        _ways(("alpha", "beta"), ("mu sigma", "")),
    ),
    "Exponential": DistParams(
        {"lam": POSITIVE, "scale": POSITIVE}, _ways(("", "lam"), ("", "scale"))
    ),
    "LogNormal": DistParams(
        {"mu": REAL, "sigma": POSITIVE, "tau": POSITIVE}, _ways(("", "mu sigma"), ("", "mu tau"))
    ),
    "TruncatedNormal": DistParams(
        {"mu": REAL, "sigma": POSITIVE, "tau": POSITIVE, "lower": REAL, "upper": REAL},
        _ways(("", "mu sigma lower upper"), ("", "mu tau lower upper")),
        ("lower", "upper", None, None),
    ),
    "Dirichlet": DistParams({"a": POSITIVE}, _ways(("a", "")), vector=frozenset({"a"})),
}
PRIOR_DISTRIBUTIONS = tuple(PRIOR_PARAMS)


class PriorParamError(ValueError):
    """An invalid value of one prior parameter (configs report the key `priors.NAME.PARAM`)."""

    def __init__(self, param: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.value = value


def _in_range(value: float, kind: str) -> bool:
    if not math.isfinite(value):
        return False
    return kind == REAL or (value > 0 and (kind == POSITIVE or value < 1))


def _describe_ways(dist: str, table: DistParams) -> str:
    options = []
    for required, optional in table.ways:
        need = " and ".join(p for p in table.params if p in required)
        may = f"any of ({', '.join(p for p in table.params if p in optional)})"
        options.append(f"{need} with {may}" if need and optional else need or may)
    return f"{dist} takes " + ", or ".join(options)


def check_prior_params(dist: str, params: dict[str, Any]) -> None:
    """Raise ValueError (PriorParamError for one parameter) unless `params` are valid for `dist`:
    known names, combined as PyMC allows, each in its valid range, lower below upper."""
    table = PRIOR_PARAMS[dist]
    for key, value in params.items():
        if key not in table.params:
            raise PriorParamError(
                key,
                value,
                f"{dist} has no parameter {key!r}; its parameters are {', '.join(table.params)}",
            )
        kind = table.params[key]
        if key in table.vector and (not isinstance(value, list) or len(value) < 2):
            raise PriorParamError(
                key, value, f"{dist} parameter {key!r} must be a list of at least two numbers > 0"
            )
        values = value if isinstance(value, list) else [value]
        if not all(_in_range(float(v), kind) for v in values):
            each = "each element " if isinstance(value, list) else ""
            raise PriorParamError(key, value, f"{dist} parameter {key!r}: {each}must be {kind}")
    given = set(params)
    if not any(r <= given <= r | o for r, o in table.ways):
        raise ValueError(
            f"{_describe_ways(dist, table)} (given: {', '.join(sorted(given)) or 'none'})"
        )
    if table.ordered is not None:
        lo_key, hi_key, lo_default, hi_default = table.ordered
        lo, hi = params.get(lo_key, lo_default), params.get(hi_key, hi_default)
        if lo is not None and hi is not None:
            pairs = _pairs(lo, hi)
            if pairs is None:
                raise PriorParamError(
                    hi_key, hi, f"{dist}: {lo_key} and {hi_key} are lists of different lengths"
                )
            if any(a >= b for a, b in pairs):
                if hi_key in params:
                    raise PriorParamError(
                        hi_key,
                        hi,
                        f"{dist} parameter {hi_key!r} must be greater than {lo_key} = {lo!r}",
                    )
                raise PriorParamError(
                    lo_key,
                    lo,
                    f"{dist} parameter {lo_key!r} must be less than {hi_key} = {hi!r} (default)",
                )
    if dist == "Beta" and given == {"mu", "sigma"}:
        pairs = _pairs(params["mu"], params["sigma"])
        if pairs is None or any(s * s >= m * (1 - m) for m, s in pairs):
            raise PriorParamError(
                "sigma",
                params["sigma"],
                "Beta parameter 'sigma' must be below sqrt(mu * (1 - mu)) (for each mu)",
            )


def _pairs(a: Any, b: Any) -> list[tuple[float, float]] | None:
    """Elementwise pairs of two numbers or lists (a number pairs with every element); None when
    both are lists of different lengths."""
    xs, ys = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
    n = max(len(xs), len(ys))
    if len(xs) not in (1, n) or len(ys) not in (1, n):
        return None
    return list(zip(xs * (n // len(xs)), ys * (n // len(ys)), strict=True))


class PriorSpec(Strict):
    """A prior declared as data: a PyMC distribution name and its numeric parameters, checked
    against the distribution's parameter names and valid ranges when it is read."""

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
                raise PriorParamError(
                    key, value, f"parameter {key!r} must be a number or a list of numbers"
                )
        check_prior_params(self.dist, self.params)
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
