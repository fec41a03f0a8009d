"""Model families: one module each, with `validate_spec`, `build` and `derive`.

A family module exposes:
- `OPTIONS`: a pydantic model of its options (validated on config load);
- `PRIORS`: default priors by parameter name (overridable from the spec or the experiment);
- `build(spec, frame) -> pm.Model`: the PyMC model for the fit window;
- `derive(posterior, frame, spec, quantiles) -> xr.Dataset`: the `derived.nc` quantities;
- optionally `log_likelihood(posterior, frame, spec) -> xr.Dataset`: pointwise log densities for
  models whose likelihood is a marginalised potential (PyMC cannot compute them itself);
  each must be the one-step-ahead conditional log p(y_t | y_<t, θ), so leave-future-out CV
  (`regimes.lfo`) can sum them and score months past a refit's window;
- `log_jacobian(frame, spec) -> xr.DataArray | np.ndarray`: per fit-window month (the times of
  the pointwise log-likelihood), log |dz_t/dy_t| of the modelled target z (transformed and
  standardised) — −log(y_sd), and −log(y_t) for a log target. `api.fit_frame` adds it, so every
  stored log_likelihood is log p(y_t in natural units | ...) and runs compare on one scale;
- optionally `INIT`: how to initialise chains ("multistart" runs a multi-start optimisation).
Adding a family is one module here plus one entry in `_FAMILIES`.
"""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

from pydantic import ValidationError

from regimes.errors import ConfigError

_FAMILIES = {"static": "regimes.families.static", "markov": "regimes.families.markov"}
_FAMILIES["random_walk"] = "regimes.families.random_walk"


def family_names() -> list[str]:
    """Names accepted by the `family` key of a model spec."""
    return sorted(_FAMILIES)


def get_family(name: str, where: str = "model spec: key 'family'") -> ModuleType:
    """Import a family module by name; an unknown name is a ConfigError with a suggestion."""
    if name not in _FAMILIES:
        hint = difflib.get_close_matches(name, list(_FAMILIES), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ConfigError(
            f"{where}: unknown model family {name!r}{suggestion}; known: {', '.join(family_names())}"
        )
    return importlib.import_module(_FAMILIES[name])


def validate_options(options_model: type, spec, where: str) -> object:
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


def validate_priors(known: dict, spec, where: str) -> None:
    """Reject priors for parameters the family does not have."""
    for name in spec.priors:
        if name not in known:
            hint = difflib.get_close_matches(name, list(known), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(
                f"{where}: key 'priors.{name}': family '{spec.family}' has no parameter {name!r}"
                f"{suggestion}; its parameters: {', '.join(sorted(known))}"
            )
