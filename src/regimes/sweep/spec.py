"""The sweep file (`SWEEP.toml`): a base experiment and one way to expand it into many fits,
validated on load with errors that name the file and the key.

    experiment = "../ms2_ecm.toml"     # relative to the sweep file
    [overrides]                        # optional: dotted config keys set in every task
    "data.start" = "2005-01"
    [origins]                          # one fit per fit-window end (real-time re-estimation)
    start = "2015-01"; end = "latest"; step = 1; window = "expanding"   # or "rolling", length = 120
    # or: seeds = [1, 2, 3]
    # or: [grid] "options.k_regimes" = [2, 3]   (dotted config keys -> values; cartesian product)
    # or: [sbc] sims = 100; seed = 1; keep = 99   (simulation-based calibration, one task a sim)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from regimes.config import format_errors, load_experiment, parse_month, read_toml
from regimes.errors import ConfigError
from regimes.spec import Strict, plain_name_problem

EXPANSIONS = ("origins", "seeds", "grid", "sbc")
THRESHOLDS = (0.5, 0.9)  # real-time probability a detection must pass
LO, HI = 0.05, 0.95  # the posterior quantiles of the bands and intervals of real-time dating


class Origins(Strict):
    """One fit per month from `start` to `end` (every `step` months): the fit window ends at the
    origin; `expanding` keeps the experiment's start, `rolling` keeps the last `length` months."""

    start: str
    end: str = Field(default="latest", description='a month "YYYY-MM" or "latest"')
    step: int = Field(default=1, ge=1, le=120)
    window: Literal["expanding", "rolling"] = "expanding"
    length: int | None = Field(default=None, ge=3)

    @field_validator("start")
    @classmethod
    def _month(cls, value: str) -> str:
        return parse_month(value).strftime("%Y-%m")

    @field_validator("end")
    @classmethod
    def _month_or_latest(cls, value: str) -> str:
        return value if value == "latest" else parse_month(value).strftime("%Y-%m")

    @model_validator(mode="after")
    def _consistent(self) -> Origins:
        if self.end != "latest" and parse_month(self.end) < parse_month(self.start):
            raise ValueError(f"origins end {self.end} is before start {self.start}")
        if self.window == "rolling" and self.length is None:
            raise ValueError('window = "rolling" needs length (months in each fit window)')
        if self.window == "expanding" and self.length is not None:
            raise ValueError('length applies only to window = "rolling"')
        return self


class Realtime(Strict):
    """What the real-time summary of an origins sweep reports: the regime whose arrival is dated
    (default: the last regime label) and the probability thresholds of a detection."""

    regime: str | None = None
    thresholds: list[float] = Field(default_factory=lambda: list(THRESHOLDS))

    @field_validator("thresholds")
    @classmethod
    def _probabilities(cls, value: list[float]) -> list[float]:
        if not value or any(not 0.0 < t < 1.0 for t in value):
            raise ValueError("thresholds must be probabilities strictly between 0 and 1")
        return sorted(set(value))


class Sbc(Strict):
    """Simulation-based calibration: `sims` tasks, each drawing parameters from the base
    experiment's own prior, simulating data of its fit window's length, fitting, and ranking
    each true scalar among `keep` evenly thinned posterior draws (ranks 0..keep). The fit is
    the run's own (the family's initialisation and the experiment's sampler settings)."""

    sims: int = Field(ge=1, le=100_000)
    seed: int = Field(default=1, ge=0)
    keep: int = Field(default=99, ge=1, description="L: posterior draws each rank is taken among")
    shift: float = Field(
        default=0.0,
        description="a constant added to every posterior draw: a deliberately miscalibrated fit "
        "(negative control: the uniformity check must flag it); 0 for real SBC",
    )
    band: float = Field(default=0.95, gt=0.0, lt=1.0, description="simultaneous ECDF band")


class Sweep(Strict):
    """A validated sweep: the base experiment and exactly one expansion."""

    name: str = ""
    description: str = ""
    experiment: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    origins: Origins | None = None
    seeds: list[int] | None = None
    grid: dict[str, list[Any]] | None = None
    sbc: Sbc | None = None
    realtime: Realtime = Field(default_factory=Realtime)
    path: str = ""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        problem = plain_name_problem(value) if value else None
        if problem:
            raise ValueError(f"sweep name {problem}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("seeds must list at least one seed")
            if any(s < 0 for s in value):
                raise ValueError("seeds must be non-negative integers")
            if len(set(value)) != len(value):
                raise ValueError("seeds must not repeat")
        return value

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            _check_key(key, "overrides")
        return value

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if value is not None:
            if not value:
                raise ValueError("grid must name at least one config key")
            for key, values in value.items():
                _check_key(key, "grid")
                if not values:
                    raise ValueError(f"grid key {key!r} lists no values")
        return value

    @model_validator(mode="after")
    def _one_expansion(self) -> Sweep:
        given = [e for e in EXPANSIONS if getattr(self, e) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(
                f"a sweep needs exactly one expansion of {', '.join(EXPANSIONS)} (found {found})"
            )
        return self

    @property
    def dim(self) -> str:
        """The combined dataset's new dimension: `origin`, `seed`, `grid` or `sim`."""
        return {"origins": "origin", "seeds": "seed", "grid": "grid", "sbc": "sim"}[self.expansion]

    @property
    def expansion(self) -> str:
        """Which expansion the sweep uses."""
        return next(e for e in EXPANSIONS if getattr(self, e) is not None)

    @property
    def experiment_path(self) -> Path:
        """The base experiment file (relative paths are relative to the sweep file)."""
        path = Path(self.experiment)
        return path if path.is_absolute() else Path(self.path).parent / path


def _check_key(key: str, table: str) -> None:
    """A dotted config key a sweep may set: non-empty parts, not the run's name."""
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"{table} key {key!r} must be a dotted config path like 'options.sticky'")
    if key.split(".")[0] in {"name", "path", "model"}:
        raise ValueError(
            f"{table} key {key!r} cannot be set by a sweep (it names the run or model)"
        )


def load_sweep(path: str | Path) -> Sweep:
    """Load and validate a sweep file; the base experiment must exist and be a valid config."""
    path = Path(path)
    raw = read_toml(path, "sweep")
    if "name" not in raw:
        raw["name"] = path.stem
    try:
        sweep = Sweep.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, {"__model__": Sweep})) from None
    if not sweep.experiment_path.is_file():
        raise ConfigError(
            f"{path}: key 'experiment': experiment file {sweep.experiment_path} does not exist "
            "(paths are relative to the sweep file)"
        )
    load_experiment(sweep.experiment_path)
    return sweep
