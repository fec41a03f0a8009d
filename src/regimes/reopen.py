"""A finished run's experiment and data, rebuilt from its directory and checked against it
(used by leave-future-out refits and forecasts)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from regimes.config import Experiment
from regimes.data import resolve_data_dir
from regimes.dataset import FitFrame
from regimes.errors import RunError
from regimes.families import get_family
from regimes.results import Run
from regimes.spec import ModelSpec
from regimes.userdata import experiment_frame


def run_config(run: Run) -> Experiment:
    """The experiment exactly as run, from the run's config.toml (with its resolved model)."""
    try:
        body = tomllib.loads(run.config_text)
    except tomllib.TOMLDecodeError as exc:
        raise RunError(
            f"{run.path}/config.toml: not valid TOML ({exc}); the run directory is damaged; "
            "re-run the experiment"
        ) from None
    resolved = body.pop("resolved_model", None)
    if resolved is None:
        raise RunError(f"{run.path}/config.toml has no [resolved_model]; re-run the experiment")
    spec = ModelSpec.model_validate(resolved)
    get_family(spec.family).validate_spec(spec, where=f"{run.path}/config.toml")
    return Experiment.model_validate({**body, "spec": spec})


def run_frame(run: Run, exp: Experiment, data_dir: str | Path | None = None) -> FitFrame:
    """Rebuild the run's data frame and check it is the data the run used (its data_hash)."""
    where = data_dir or run.manifest.get("data_dir")
    path = resolve_data_dir(where)
    experiment_dir = Path(run.manifest.get("config_path", ".")).parent
    frame = experiment_frame(exp, path, experiment_dir=experiment_dir)
    stored = run.manifest.get("data_hash")
    if stored and frame.data_hash() != stored:
        raise RunError(
            f"{run.path}: the data in {path} differ from the data this run used (data_hash "
            f"{frame.data_hash()[:12]} vs {stored[:12]}); pass data_dir= with the snapshot the "
            "run used, or re-run the experiment on the current data"
        )
    return frame
