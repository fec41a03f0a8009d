"""The declared interface of a model family and the registry that finds families by name.

Generic code (runs, posterior predictive checks, leave-future-out, forecasts, figures) talks to
a family only through `Family`; it never probes a family module or branches on its name. A
family is a subclass that sets `name`, `options_model` and `priors` and implements the abstract
hooks; the hooks with defaults here are what most families want. Built-in families register
themselves by name; a third-party package adds one with `register(MyFamily())` or through the
`regimes.families` entry-point group (`name = "package.module:FAMILY"`).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ValidationError

from regimes.errors import ConfigError
from regimes.priors import prior_draws
from regimes.spec import ModelSpec, PriorSpec

# deferred to the functions that use them: PyMC, xarray (docs/modules.md#imports)

if TYPE_CHECKING:  # the registry and interface stay importable without PyMC (config, CLI)
    import pymc as pm
    import xarray as xr

    from regimes.dataset import FitFrame

NATURAL_SCALE = "natural units of the target"
# numba compiles the default log-likelihood's small graph in well under a second (PyTensor's C:
# several)
_LOG_LIKELIHOOD_BACKEND = "numba" if importlib.util.find_spec("numba") else None
ENTRY_POINT_GROUP = "regimes.families"


@dataclass
class Fit:
    """One posterior of a family's model on one frame — what every output hook reads — and a
    store for the passes several hooks of the same fit share (a chain family's filters over
    every draw), so they are computed once per fit and live exactly as long as it."""

    tree: xr.DataTree
    frame: FitFrame
    spec: ModelSpec
    _store: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as a Dataset."""
        return self.tree["posterior"].to_dataset()

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """`compute()` once for this fit, under `name`."""
        if name not in self._store:
            self._store[name] = compute()
        return self._store[name]


@dataclass(frozen=True)
class Simulation:
    """Data drawn from a family's model: `frame` is the source frame with its target series
    replaced over the fit window by simulated values (natural units) and its scaling pinned to
    the source frame's, so `params` (the free parameters it was drawn with, on the model's
    scale) are what a fit on it estimates; `latent` holds the drawn states (e.g. `regime`, one
    per fit-window month)."""

    frame: FitFrame
    params: dict[str, np.ndarray]
    latent: dict[str, np.ndarray] = field(default_factory=dict)


class Family(ABC):
    """A model family: every question the generic code may ask of one.

    `frame` is the experiment's `FitFrame` (fit window plus any months after it), `spec` the
    resolved model spec, `fit` one posterior of the model on a frame (`Fit`). Per-draw outputs
    are labelled xarray objects with a `sample` dimension (chain and draw flattened,
    chain-major) and natural units of the target.
    """

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]]
    priors: ClassVar[dict[str, PriorSpec]]
    # whether `build` honours `frame.train` (months outside it count zero in the likelihood):
    # leave-future-out then refits on windows padded to one shape and reuses one compilation
    weighted_likelihood: ClassVar[bool] = False

    # ------------------------------------------------------------------ configuration

    def options(self, spec: ModelSpec) -> Any:
        """The spec's options as this family's typed options model (already validated)."""
        return self.options_model.model_validate(spec.options)

    def validate_spec(self, spec: ModelSpec, where: str) -> Any:
        """Check option keys and values and prior names when a config is read; return the
        typed options. Errors are ConfigErrors naming the file (`where`) and the key."""
        validate_priors(self.priors, spec, where)
        return validate_options(self.options_model, spec, where)

    def sampling_init(self, spec: ModelSpec) -> tuple[str, int]:
        """How chains start: ("jitter", 0) or ("multistart", number of optimisation starts)."""
        return "jitter", 0

    def quick_spec(self, spec: ModelSpec, n_starts: int) -> ModelSpec:
        """The spec for a quick smoke run: at most `n_starts` optimisation starts where the
        family has them (default: unchanged)."""
        return spec

    def graph_spec(self, spec: ModelSpec) -> ModelSpec:
        """The spec as the model graph sees it: without the settings that only choose where
        chains start, so a quick refit and a full run of one model share a compiled structure."""
        return spec

    # ------------------------------------------------------------------ model and simulation

    @abstractmethod
    def build(self, spec: ModelSpec, frame: FitFrame) -> pm.Model:
        """The PyMC model of the fit window, on the scale `frame.scaling(...)` gives."""

    @abstractmethod
    def simulate(
        self,
        spec: ModelSpec,
        frame: FitFrame,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        latent: dict[str, np.ndarray] | None = None,
    ) -> Simulation:
        """Draw the target over `frame`'s fit window from the model with free parameters
        `params` (by name, constrained, model scale; e.g. one `draw_params` draw), given the
        frame's factors and the months the model conditions on; `latent` plants latent states
        instead of drawing them (a switching family's `regime` path: a planted shift)."""

    def draw_params(
        self, spec: ModelSpec, frame: FitFrame, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """One draw of the free parameters from the model's own prior (sorted where ordered)."""
        return prior_draws(self.build(spec, frame), 1, rng)[0]

    # ------------------------------------------------------------------ outputs of a fit

    @abstractmethod
    def derive(self, fit: Fit, quantiles: list[float]) -> xr.Dataset:
        """The `derived.nc` quantities over every month of `fit.frame` (`families.schema`)."""

    @abstractmethod
    def log_jacobian(self, frame: FitFrame, spec: ModelSpec) -> xr.DataArray:
        """log |dz_t/dy_t| per scored fit-window month (dim `time`), z the modelled (transformed,
        standardised) target: added to the model-scale log-likelihood it gives log p(y_t) in
        natural units, so runs with other transforms or windows compare on one scale."""

    def log_likelihood(self, fit: Fit) -> xr.Dataset:
        """Pointwise one-step-ahead log p(z_t | z_<t, θ) per draw over the fit window on the
        model scale (variables over chain, draw, time). Default: PyMC's pointwise
        log-likelihood of the observed variable of the model rebuilt on the frame; families
        whose likelihood is a marginalised potential override it."""
        import pymc as pm  # (the interface module stays importable without PyMC)
        import xarray as xr

        post = xr.DataTree.from_dict({"posterior": fit.tree["posterior"].to_dataset()})
        out = pm.compute_log_likelihood(
            post,
            model=self.build(fit.spec, fit.frame),
            extend_inferencedata=False,
            progressbar=False,
            backend=_LOG_LIKELIHOOD_BACKEND,
        )
        return out["log_likelihood"].to_dataset() if isinstance(out, xr.DataTree) else out

    def natural_log_likelihood(
        self, ll: xr.Dataset, frame: FitFrame, spec: ModelSpec
    ) -> xr.Dataset:
        """Model-scale pointwise log-likelihoods turned into log densities of y_t in natural
        units with `log_jacobian`, so LOO and LFO compare runs with different transforms."""
        out = ll.copy()
        jac = self.log_jacobian(frame, spec)
        for name, da in ll.data_vars.items():
            if "time" in da.dims:
                out[name] = da + jac.sel(time=da["time"].values).drop_vars("time")
        out.attrs["scale"] = NATURAL_SCALE
        return out

    @abstractmethod
    def posterior_predictive(self, fit: Fit, seed: int = 0) -> xr.Dataset:
        """One-step-ahead replicates y_rep_t ~ p(y_t | y_<t, θ) in natural units: `y` over
        (chain, draw, time) for the scored fit-window months."""

    def resolve_spec(
        self,
        spec: ModelSpec,
        frame: FitFrame,
        optimum: Callable[[Any, int], dict[str, Any] | None],
    ) -> tuple[ModelSpec, dict[str, Any]]:
        """The spec as a run fits it, with choices left to the data made once on `frame` (e.g.
        `order_by = "auto"`; `optimum(model, n_starts)` gives a model's multi-start optimum,
        supplied by the caller so families need no sampler), and a record of each choice for
        the manifest. Default: nothing to choose."""
        return spec, {}

    def natural_posterior(self, fit: Fit) -> xr.Dataset:
        """The fitted parameters in natural units, per draw over (chain, draw, ...), each with
        `units` and `long_name` (posterior.nc's `posterior_natural` group, which `summary`
        reads). Default: none (an empty dataset; the summary then reads derived.nc)."""
        import xarray as xr

        return xr.Dataset()

    @abstractmethod
    def fair_value_draws(self, fit: Fit) -> xr.Dataset:
        """Per-draw fair value over every month of `fit.frame`, natural units: `fair_value`
        (sample, time) and, for switching families, `fair_value_by_regime` and `regime_prob`
        (sample, time, regime). Standardised on the frame's scaling, so a frame extended by
        factor paths gives the fitted model's fair value along them."""

    def forecast_draws(self, fit: Fit, extended: FitFrame) -> xr.Dataset:
        """Per-draw fair value (and regime probabilities) over `extended`: the fitted frame
        with factor paths appended after its last month. Default: `fair_value_draws` on it."""
        return self.fair_value_draws(Fit(fit.tree, extended, fit.spec))

    # ------------------------------------------------------------------ presentation

    def figures(
        self, derived: xr.Dataset, folder: Path, *, log_scale: bool, source: str
    ) -> list[Path]:
        """The family's own figures (beyond fair value and the predictive check), saved into
        `folder` as PNG and SVG; returns the paths written."""
        return []


# ------------------------------------------------------------------ validation helpers


def validate_options(options_model: type[BaseModel], spec: ModelSpec, where: str) -> Any:
    """Validate a spec's options against a family's options model, naming the offending key."""
    try:
        return options_model.model_validate(spec.options)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = "options." + ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                known = ", ".join(sorted(options_model.model_fields))
                lines.append(
                    f"{where}: unknown key '{key}' for family '{spec.family}'; allowed: {known}"
                )
            else:
                msg = err["msg"].removeprefix("Value error, ")
                lines.append(f"{where}: key '{key}': {msg}; found {err['input']!r}")
        raise ConfigError("\n".join(lines)) from None


def validate_priors(known: dict[str, PriorSpec], spec: ModelSpec, where: str) -> None:
    """Reject priors for parameters the family does not have."""
    for name in spec.priors:
        if name not in known:
            hint = difflib.get_close_matches(name, list(known), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(
                f"{where}: key 'priors.{name}': family '{spec.family}' has no parameter {name!r}"
                f"{suggestion}; its parameters: {', '.join(sorted(known))}"
            )


# ------------------------------------------------------------------ registry

_BUILTIN = {
    "static": "regimes.families.static:FAMILY",
    "markov": "regimes.families.markov:FAMILY",
    "random_walk": "regimes.families.random_walk:FAMILY",
    "panel": "regimes.families.panel:FAMILY",
}
_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Make a family available by its `name` (a later registration replaces an earlier one)."""
    if not isinstance(family, Family):
        raise TypeError(f"register() needs a Family instance; got {type(family).__name__}")
    _REGISTRY[family.name] = family
    return family


def _load(target: str) -> Family:
    module, _, attr = target.partition(":")
    family = getattr(importlib.import_module(module), attr)
    return register(family)


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def family_names() -> list[str]:
    """Names accepted by the `family` key of a model spec."""
    return sorted({*_BUILTIN, *_REGISTRY, *_entry_points()})


def get_family(name: str, where: str = "model spec: key 'family'") -> Family:
    """The family registered as `name`; an unknown name is a ConfigError with a suggestion."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    target = _BUILTIN.get(name) or _entry_points().get(name)
    if target is None:
        names = family_names()
        hint = difflib.get_close_matches(name, names, n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ConfigError(
            f"{where}: unknown model family {name!r}{suggestion}; known: {', '.join(names)}"
        )
    return _load(target)
