"""Experiment configs and model specs: TOML files validated on load with errors that name the key.

An experiment (`experiments/*.toml`) says what to fit: data window, target, factors, which model
spec, prior and option overrides, sampler settings and outputs. A model spec (`models/*.toml`)
says how: the model family, its options and its priors, declared as data so that a run can store
the fully resolved spec next to its results.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import tomli_w
from pydantic import Field, ValidationError, field_validator, model_validator

from regimes import plugins
from regimes.errors import ConfigError
from regimes.families import get_family
from regimes.files import is_dir, missing_reason, shorten
from regimes.files import is_file as _is_file
from regimes.spec import (
    DEFAULT_QUANTILES,
    PRIOR_DISTRIBUTIONS,
    ModelSpec,
    PriorParamError,
    PriorSpec,
    Strict,
    plain_name_problem,
)

__all__ = ["PRIOR_DISTRIBUTIONS", "ModelSpec", "PriorSpec", "Strict"]

MAX_DEPTH = 32  # tables and arrays nested deeper than this are refused (no config needs it)


class TransformSpec(Strict):
    """A variable computed from another one: `of` (a factor, a catalog series or another
    transform), `op` and, for lags, differences, growth rates and rolling means, `periods`."""

    of: str
    op: Literal["lag", "diff", "log", "growth", "rolling_mean"]
    periods: int = Field(default=1, ge=1, le=120)


class UserSeries(Strict):
    """A series from the researcher's own file: CSV (or Parquet with pyarrow installed), one row
    per date. `file` is relative to the experiment file, else the data directory; dates in
    `date_column` (any unambiguous form: 2001-03, 2001-03-31, ...), values in `value_column`
    (default: the series' name); `frequency` as published: D (averaged to months), M or Q
    (a quarter's value known from the month after it ends, as for catalog series)."""

    file: str
    date_column: str = "date"
    value_column: str | None = None
    frequency: Literal["D", "M", "Q"] = "M"
    units: str = ""


class DataSection(Strict):
    """Which series to model and over which window."""

    target: str
    factors: list[str] = Field(default_factory=list)
    series: dict[str, UserSeries] = Field(default_factory=dict)
    transforms: dict[str, TransformSpec] = Field(default_factory=dict)
    start: str = Field(description='first month "YYYY-MM", or "earliest" for the longest sample')
    end: str
    predict_end: str = "latest"
    # sample on arrays padded to this month: the months after `end` enter the sampler's model
    # with no data and weight zero, so fits of windows ending at different months have the same
    # shapes and share one compiled sampler (an origins sweep sets it); the posterior and every
    # output are those of the window start..end
    pad_to: str | None = None
    min_obs: int = Field(default=24, ge=3)
    frequency: Literal["M", "Q"] = "M"
    # a panel of assets sharing one model (the `panel` family): empty means one target only
    assets: list[str] = Field(default_factory=list)
    asset_factors: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("start")
    @classmethod
    def _start_month(cls, value: str) -> str:
        return value if value == "earliest" else parse_month(value).strftime("%Y-%m")

    @field_validator("end")
    @classmethod
    def _month(cls, value: str) -> str:
        return parse_month(value).strftime("%Y-%m")

    @field_validator("predict_end")
    @classmethod
    def _month_or_latest(cls, value: str) -> str:
        return value if value == "latest" else parse_month(value).strftime("%Y-%m")

    @field_validator("pad_to")
    @classmethod
    def _pad_month(cls, value: str | None) -> str | None:
        return None if value is None else parse_month(value).strftime("%Y-%m")

    @field_validator("series")
    @classmethod
    def _series_names(cls, value: dict[str, UserSeries]) -> dict[str, UserSeries]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"series name {name!r} must be an identifier (letters, digits, _)")
        return value

    @field_validator("transforms")
    @classmethod
    def _transform_names(cls, value: dict[str, TransformSpec]) -> dict[str, TransformSpec]:
        for name, spec in value.items():
            if not name.isidentifier():
                raise ValueError(
                    f"transform name {name!r} must be an identifier (letters, digits, _)"
                )
            if spec.of == name:
                raise ValueError(f"transform {name!r} cannot be computed from itself")
        for name in value:  # no cycles: follow `of` through other transforms
            chain, current = [name], value[name].of
            while current in value:
                if current in chain:
                    raise ValueError(f"transforms form a cycle: {' -> '.join([*chain, current])}")
                chain.append(current)
                current = value[current].of
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DataSection:
        if self.start != "earliest" and parse_month(self.start) >= parse_month(self.end):
            raise ValueError(f"window start {self.start} must be before end {self.end}")
        if self.predict_end != "latest" and parse_month(self.predict_end) < parse_month(self.end):
            raise ValueError(f"predict_end {self.predict_end} must not be before end {self.end}")
        if self.pad_to is not None:
            if parse_month(self.pad_to) < parse_month(self.end):
                raise ValueError(f"pad_to {self.pad_to} must not be before end {self.end}")
            if self.predict_end != self.end:  # the padded months follow the fit window
                raise ValueError(
                    f"pad_to needs predict_end = end ({self.end}), found predict_end "
                    f"{self.predict_end!r}: set data.predict_end = {self.end!r} or drop pad_to"
                )
        problem = panel_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def start_ts(self) -> pd.Timestamp | None:
        """First month of the fit window; None for "earliest" (first month with all variables)."""
        return None if self.start == "earliest" else parse_month(self.start)

    @property
    def end_ts(self) -> pd.Timestamp:
        """Last month of the fit window."""
        return parse_month(self.end)


# Bounds on the sampler's sizes: beyond them a run asks for more memory than any machine has
# (draws = 1e9 requested 64 GB of JAX buffers; chains = 10000 passed 6 GB of RSS before sampling)
MAX_DRAWS = 100_000
MAX_CHAINS = 64
MAX_STARTS = 200  # as the families' own `n_starts` option
MAX_SEED = 2**32 - 1  # an unsigned 32-bit seed, what every backend accepts (and seed + offsets)


class QuickSampler(Strict):
    """Sampler settings used with `--quick` (smoke tests)."""

    draws: int = Field(default=150, ge=10, le=MAX_DRAWS)
    tune: int = Field(default=150, ge=10, le=MAX_DRAWS)
    chains: int = Field(default=2, ge=1, le=MAX_CHAINS)
    # cap on multi-start optimisations (model option)
    n_starts: int = Field(default=4, ge=1, le=MAX_STARTS)


class SamplerSection(Strict):
    """NUTS settings; `backend = "auto"` picks the fastest installed sampler."""

    backend: Literal["auto", "pymc", "numpyro", "nutpie"] = "auto"
    draws: int = Field(default=1000, ge=10, le=MAX_DRAWS)
    tune: int = Field(default=1000, ge=10, le=MAX_DRAWS)
    chains: int = Field(default=4, ge=1, le=MAX_CHAINS)
    cores: int | None = Field(default=None, ge=1, le=1024)
    target_accept: float = Field(default=0.9, gt=0.5, lt=1.0)
    seed: int = Field(default=20261125, ge=0, le=MAX_SEED)
    # "stack": distinct optima of the multi-start within `mode_gap` of the best each get chains,
    # and the modes are combined by stacking (`regimes.modes`); "best": every chain starts at
    # the best optimum; "smc": tempered sequential Monte Carlo from the prior (`regimes.smc`),
    # `chains` independent runs of `draws` particles, each mode weighted by its posterior mass
    # (for modes far apart; `tune`, `target_accept` and `backend` do not apply); "mass": chains
    # at each distinct optimum as for "stack", the modes weighted by their posterior mass
    # (bridge sampling over each mode's draws, `regimes.bridge`) instead of by stacking
    modes: Literal["best", "stack", "mass", "smc"] = "best"
    mode_gap: float = Field(default=10.0, gt=0)
    quick: QuickSampler = Field(default_factory=QuickSampler)


class OutputsSection(Strict):
    """What a run writes besides the netCDF files."""

    figures: bool = True
    log_scale: bool = False
    quantiles: list[float] = Field(default_factory=lambda: list(DEFAULT_QUANTILES))
    source_note: str = ""

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, value: list[float]) -> list[float]:
        if any(not 0.0 < q < 1.0 for q in value):
            raise ValueError("quantiles must lie strictly between 0 and 1")
        missing = [q for q in DEFAULT_QUANTILES if q not in value]
        if missing:
            raise ValueError(
                f"quantiles must include {list(DEFAULT_QUANTILES)} (missing {missing})"
            )
        return sorted(set(value))


class Experiment(Strict):
    """A validated experiment config with its model spec resolved."""

    name: str = ""
    description: str = ""
    model: str
    options: dict[str, Any] = Field(default_factory=dict)
    priors: dict[str, PriorSpec] = Field(default_factory=dict)
    data: DataSection
    sampler: SamplerSection = Field(default_factory=SamplerSection)
    outputs: OutputsSection = Field(default_factory=OutputsSection)
    path: str = ""
    spec: ModelSpec | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        problem = plain_name_problem(value)
        if problem:  # the name becomes a folder under the results root
            raise ValueError(f"experiment name {problem}")
        return value


def panel_problem(data: DataSection) -> str:
    """Why `data.assets` / `data.asset_factors` are inconsistent with the rest of `[data]`
    ("" when they are fine): the target must be one of the assets (the reference asset), assets
    are distinct and not factors, and each asset's anchor terms are factors of the experiment."""
    assets, by_asset = data.assets, data.asset_factors
    if by_asset and not assets:
        return "data.asset_factors needs data.assets (the panel's series, the target among them)"
    if not assets:
        return ""
    repeated = sorted({a for a in assets if assets.count(a) > 1})
    if repeated:
        return f"data.assets lists {repeated} more than once; name each asset once"
    if data.target not in assets:
        return (
            f"data.target {data.target!r} must be one of data.assets {assets} (the reference "
            "asset, whose window is the fit window); add it to data.assets"
        )
    clash = [a for a in assets if a in data.factors]
    if clash:
        return f"data.assets {clash} are also in data.factors; a series is an asset or a factor"
    unknown = [a for a in by_asset if a not in assets]
    if unknown:
        return f"data.asset_factors names {unknown}, which are not in data.assets {assets}"
    for asset, terms in by_asset.items():
        extra = [t for t in terms if t not in data.factors]
        if extra:
            return (
                f"data.asset_factors.{asset}: {extra} are not in data.factors {data.factors}; "
                "an asset's anchor terms are a subset of the experiment's factors"
            )
    return ""


def parse_month(value: str) -> pd.Timestamp:
    """Parse 'YYYY-MM' or 'YYYY-MM-DD' to the first day of that month."""
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"expected a month like '2003-01', found {value!r}") from exc
    return pd.Timestamp(year=ts.year, month=ts.month, day=1)


def format_errors(path: Path | str, exc: ValidationError, fields: dict[str, Any]) -> str:
    """Turn pydantic's errors into lines naming the file, the key, what was expected and found."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) if loc else "(top level)"
        if err["type"] == "extra_forbidden":
            known = known_keys(fields, loc[:-1])
            hint = difflib.get_close_matches(loc[-1], known, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            lines.append(
                f"{path}: unknown key '{key}'{suggestion}; allowed here: {', '.join(known)}"
            )
            continue
        msg = err["msg"].removeprefix("Value error, ")
        found = f"; found {err['input']!r}" if err["type"] != "missing" else ""
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, PriorParamError):  # one parameter of a prior: name its key
            key, found = f"{key}.{cause.param}", f"; found {cause.value!r}"
        lines.append(f"{path}: key '{key}': {msg}{found}")
    return "\n".join(lines)


def _table_type(annotation: Any) -> Any:
    """The model class a field's annotation holds (`X`, `X | None`), else the annotation."""
    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in typing.get_args(annotation):
        if hasattr(arg, "model_fields"):
            return arg
    return annotation


def known_keys(fields: dict[str, Any], loc: list[str]) -> list[str]:
    """The keys allowed at a nested location of the schema (for 'did you mean'), through
    optional tables (`X | None`) and tables of named tables (`dict[str, X]`)."""
    model: Any = _table_type(fields.get("__model__"))
    parts = iter(loc)
    for part in parts:
        if model is None or not hasattr(model, "model_fields") or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        if typing.get_origin(annotation) is dict:  # the next part names an entry
            next(parts, None)
            annotation = typing.get_args(annotation)[1]
        model = _table_type(annotation)
    if model is None or not hasattr(model, "model_fields"):
        return []
    return sorted(k for k in model.model_fields if k not in {"path", "spec"})


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's tables; any file that is not a readable UTF-8 TOML text of modest nesting
    is a ConfigError naming the file."""
    if not _is_file(path):
        reason = missing_reason(path)
        if reason == "does not exist":
            raise ConfigError(f"{what} file not found: {shorten(str(path))}")
        raise ConfigError(f"{what} file {shorten(str(path))} {reason}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {exc.start} is {data[exc.start]:#04x}); "
            "configs must be TOML text"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(
            f"{path}: not valid TOML: tables or arrays nested too deeply "
            f"(at most {MAX_DEPTH} levels)"
        ) from None
    depth, where = _nesting(raw)
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"{path}: key '{where}': tables or arrays nested {depth} levels deep "
            f"(at most {MAX_DEPTH})"
        )
    return raw


def _nesting(value: Any) -> tuple[int, str]:
    """The deepest nesting of tables and arrays in parsed TOML and the key path to it (without
    recursion, so any depth is measured)."""
    deepest, where = 0, ""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        node, depth, key = stack.pop()
        if depth > deepest:
            deepest, where = depth, key
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = ((f"[{i}]", v) for i, v in enumerate(node))
        else:
            continue
        for k, v in items:
            sub = f"{key}{k}" if k.startswith("[") or not key else f"{key}.{k}"
            stack.append((v, depth + 1, sub))
    if len(where) > 60:  # a key path thousands of levels long is shortened
        where = f"{where[:40]}...{where[-16:]}"
    return deepest, where or "(top level)"


SHIPPED_MODELS = Path(__file__).with_name("models")  # the model specs the package ships


def shipped_model_folders() -> list[Path]:
    """The folders of shipped model specs: the core's, then each installed plugin's (the
    `regimes.models` entry-point group)."""
    return [SHIPPED_MODELS, *(folder for _, folder in plugins.load_group(plugins.MODELS, Path))]


def find_model_spec(name: str, experiment_path: Path, *, where: str | None = None) -> Path:
    """Locate model spec `name`: `models/<name>.toml` in the experiment's folder or any folder
    above it (a researcher's own spec, or an edited copy of a shipped one, wins), else a spec
    the package or a plugin ships (`regimes/models/<name>.toml`, `shipped_model_folders`); a name
    ending in .toml or holding a `/` is a path relative to the experiment's folder. Errors name
    `where` (default: the path)."""
    where = str(experiment_path) if where is None else where
    candidate = Path(name)
    if candidate.suffix == ".toml" or "/" in name:
        path = candidate if candidate.is_absolute() else experiment_path.parent / candidate
        if _is_file(path):
            return path.resolve()
        raise ConfigError(
            f"{where}: key 'model': model spec file {shorten(str(path))} {missing_reason(path)}"
        )
    searched = []
    for folder in [experiment_path.parent.resolve(), *experiment_path.parent.resolve().parents]:
        models = folder / "models"
        path = models / f"{name}.toml"
        if _is_file(path):
            return path
        if is_dir(models):
            searched.append(models)
    for shipped in shipped_model_folders():
        if plain_name_problem(name) is None and _is_file(shipped / f"{name}.toml"):
            return shipped / f"{name}.toml"
        searched.append(shipped)
    known = sorted({p.stem for m in searched for p in m.glob("*.toml")})
    folders = ", ".join(str(s) for s in searched)
    hint = difflib.get_close_matches(name, known, n=1)
    suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
    raise ConfigError(
        f"{where}: key 'model': model spec '{name}' not found (searched {folders}; "
        f"known specs: {', '.join(known) or 'none'}).{suggestion}"
    )


def load_model_spec(path: str | Path) -> ModelSpec:
    """Load and validate one model spec file."""
    path = Path(path)
    raw = read_toml(path, "model spec")
    try:
        spec = ModelSpec.model_validate(
            {**raw, "name": raw.get("name", path.stem), "path": str(path)}
        )
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, {"__model__": ModelSpec})) from None
    get_family(spec.family, where=f"{path}: key 'family'")
    return spec


ExperimentSource = str | Path | Mapping[str, Any] | Experiment  # what an experiment is given as
DICT_LABEL = "experiment (dict)"  # how errors name an experiment given as a dict


def load_experiment(source: ExperimentSource, *, base_dir: str | Path | None = None) -> Experiment:
    """Load an experiment config, resolve its model spec and merge option and prior overrides.

    `source` is a TOML file's path, a dict with the same tables (in a notebook; its `name`
    defaults to "experiment"), or an `Experiment` (returned as is once its spec is resolved).
    A dict's model spec and `[data.series]` files are looked up from `base_dir` (default: the
    working directory) as a file's are from the file's folder."""
    if isinstance(source, Experiment):
        if source.spec is not None:
            return source
        folder = Path(source.path).parent if source.path else Path(base_dir or Path.cwd())
        return _resolved(source, folder / "experiment.toml", source.path or DICT_LABEL)
    if isinstance(source, Mapping):
        raw = {"name": "experiment", **source}
        folder = Path(base_dir or Path.cwd()).resolve()
        try:
            exp = Experiment.model_validate({**raw, "path": ""})
        except ValidationError as exc:
            raise ConfigError(format_errors(DICT_LABEL, exc, {"__model__": Experiment})) from None
        return _resolved(exp, folder / "experiment.toml", DICT_LABEL)
    path = Path(source)
    raw = read_toml(path, "experiment config")
    if "name" not in raw:  # the file name names the results folder: it must be a plain name
        problem = plain_name_problem(path.stem)
        if problem:
            raise ConfigError(
                f"{path}: key 'name': experiment name {problem}; found {path.stem!r} (the file "
                'name, used when the config sets no name: add name = "..." or rename the file)'
            )
        raw["name"] = path.stem
    try:
        exp = Experiment.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, {"__model__": Experiment})) from None
    return _resolved(exp, path, str(path))


def _resolved(exp: Experiment, path: Path, where: str) -> Experiment:
    """`exp` with its model spec found from `path`'s folder (or shipped), options and priors
    merged in and checked by the family; errors name `where`."""
    spec = load_model_spec(find_model_spec(exp.model, path, where=where))
    resolved = spec.model_copy(
        update={"options": {**spec.options, **exp.options}, "priors": {**spec.priors, **exp.priors}}
    )
    family = get_family(resolved.family)
    family.validate_spec(resolved, where=where)
    return exp.model_copy(update={"spec": resolved})


def experiment_to_toml(exp: Experiment) -> str:
    """Serialise an experiment exactly as run, with the resolved model spec under [resolved_model]."""
    body = exp.model_dump(mode="json", exclude={"path", "spec"}, exclude_none=True)
    body["priors"] = {k: {"dist": v.dist, **v.params} for k, v in exp.priors.items()}
    if exp.spec is not None:
        spec = exp.spec.model_dump(mode="json", exclude={"priors"})
        spec["priors"] = {k: {"dist": v.dist, **v.params} for k, v in exp.spec.priors.items()}
        body["resolved_model"] = spec
    return tomli_w.dumps(body)


def run_version(exp: Experiment, *, quick: bool = False, seed: int | None = None) -> Experiment:
    """The experiment as a run executes and stores it: `--quick` draw counts and a `--seed`
    override applied (so a stored config.toml can be compared with what would run now)."""
    if quick:
        exp = quick_version(exp)
    if seed is not None:  # validated as the config's own seed would be (model_copy checks nothing)
        try:
            sampler = SamplerSection.model_validate({**exp.sampler.model_dump(), "seed": seed})
        except ValidationError:
            raise ConfigError(
                f"--seed {seed}: the seed must be a whole number from 0 to {MAX_SEED}"
            ) from None
        exp = exp.model_copy(update={"sampler": sampler})
    return exp


def quick_version(exp: Experiment) -> Experiment:
    """The same experiment with the small `[sampler.quick]` draw counts (for smoke runs)."""
    q = exp.sampler.quick
    sampler = exp.sampler.model_copy(update={"draws": q.draws, "tune": q.tune, "chains": q.chains})
    update: dict = {"sampler": sampler}
    if exp.spec is not None:  # fewer multi-start optimisations where the family has them
        update["spec"] = get_family(exp.spec.family).quick_spec(exp.spec, q.n_starts)
    return exp.model_copy(update=update)
