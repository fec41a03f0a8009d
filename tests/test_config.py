"""Experiment and model-spec validation: every error names the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from regimes.config import (
    SHIPPED_MODELS,
    experiment_to_toml,
    load_experiment,
    load_model_spec,
    quick_version,
)
from regimes.errors import ConfigError

MODEL = """
family = "static"
[options]
transform = "log"
[priors]
beta = { dist = "Normal", mu = 0.0, sigma = 1.0 }
"""

EXPERIMENT = """
model = "m"
[data]
target = "gold"
factors = ["dollar", "real_rate"]
start = "2000-01"
end = "2021-12"
[sampler]
draws = 500
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.toml").write_text(MODEL)
    (tmp_path / "experiments").mkdir()
    return tmp_path


def write_exp(project: Path, text: str, name: str = "e.toml") -> Path:
    path = project / "experiments" / name
    path.write_text(text)
    return path


def test_valid_experiment_resolves_model_and_merges_overrides(project: Path) -> None:
    text = (
        EXPERIMENT
        + '\n[options]\nerrors = "iid"\n[priors]\nsigma = { dist = "HalfNormal", sigma = 0.5 }\n'
    )
    exp = load_experiment(write_exp(project, text))
    assert exp.name == "e"
    assert exp.spec is not None and exp.spec.family == "static"
    assert exp.spec.options == {"transform": "log", "errors": "iid"}
    assert exp.spec.priors["sigma"].params == {"sigma": 0.5}
    assert exp.spec.priors["beta"].params == {"mu": 0.0, "sigma": 1.0}
    assert exp.sampler.draws == 500 and exp.sampler.tune == 1000
    assert exp.data.start_ts.year == 2000


def test_round_trip_toml_keeps_resolved_model(project: Path) -> None:
    exp = load_experiment(write_exp(project, EXPERIMENT))
    body = tomllib.loads(experiment_to_toml(exp))
    assert body["resolved_model"]["family"] == "static"
    assert body["resolved_model"]["priors"]["beta"] == {"dist": "Normal", "mu": 0.0, "sigma": 1.0}
    assert body["data"]["factors"] == ["dollar", "real_rate"]


def test_quick_version_shrinks_draws(project: Path) -> None:
    exp = quick_version(load_experiment(write_exp(project, EXPERIMENT)))
    assert (exp.sampler.draws, exp.sampler.tune, exp.sampler.chains) == (150, 150, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            EXPERIMENT.replace("draws = 500", "drws = 500"),
            ["unknown key 'sampler.drws'", "did you mean 'draws'"],
        ),
        (
            EXPERIMENT.replace("draws = 500", 'draws = "many"'),
            ["key 'sampler.draws'", "integer", "'many'"],
        ),
        (
            EXPERIMENT.replace('end = "2021-12"', 'end = "1999-01"'),
            ["key 'data'", "must be before end"],
        ),
        (
            EXPERIMENT.replace('end = "2021-12"', 'end = "2021-12"\npad_to = "2021-06"'),
            ["key 'data'", "pad_to 2021-06 must not be before end 2021-12"],
        ),
        (
            EXPERIMENT.replace('end = "2021-12"', 'end = "2021-12"\npad_to = "2023-06"'),
            ["key 'data'", "pad_to needs predict_end = end", "set data.predict_end = '2021-12'"],
        ),
        (
            EXPERIMENT + "\n[sampler.quick]\ndrawz = 10\n",
            ["unknown key 'sampler.quick.drawz'", "did you mean 'draws'", "allowed here: chains"],
        ),
        (  # a table of named tables: the suggestion comes from the entry's own keys
            EXPERIMENT + '\n[data.series.mine]\nfile = "x.csv"\nfrequenzy = "D"\n',
            ["unknown key 'data.series.mine.frequenzy'", "did you mean 'frequency'"],
        ),
        (EXPERIMENT.replace('start = "2000-01"', 'start = "soon"'), ["key 'data.start'", "'soon'"]),
        (EXPERIMENT.replace('target = "gold"\n', ""), ["key 'data.target'", "Field required"]),
        (
            EXPERIMENT.replace('model = "m"', 'model = "nope"'),
            ["key 'model'", "'nope' not found", "known specs: changepoint, ecm_breaks, m, ms_anchor_ecm"],
        ),
        (EXPERIMENT + '\n[options]\nerors = "iid"\n', ["unknown key 'options.erors'", "allowed"]),
        (EXPERIMENT + '\n[options]\nerrors = "ar2"\n', ["key 'options.errors'", "'ar2'"]),
        (
            EXPERIMENT + '\n[priors]\nbeta = { dist = "Normall", sigma = 1 }\n',
            ["key 'priors.beta.dist'", "Normall"],
        ),
        (
            EXPERIMENT + '\n[priors]\nbeta = { dist = "Normal", sigma = "big" }\n',
            ["priors.beta", "number"],
        ),
        (
            EXPERIMENT + '\n[priors]\ngamma = { dist = "Normal", sigma = 1 }\n',
            ["priors.gamma", "no parameter"],
        ),
        ("model = ", ["not valid TOML"]),
    ],
)
def test_invalid_experiments_name_file_and_key(
    project: Path, text: str, expected: list[str]
) -> None:
    path = write_exp(project, text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_missing_experiment_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="experiment config file not found"):
        load_experiment(tmp_path / "nope.toml")


def test_unknown_family_is_named(project: Path) -> None:
    (project / "models" / "bad.toml").write_text('family = "statik"\n')
    with pytest.raises(ConfigError, match=r"unknown model family 'statik'.*did you mean 'static'"):
        load_model_spec(project / "models" / "bad.toml")


def test_model_found_from_nested_experiment_folder(project: Path) -> None:
    (project / "experiments" / "gold").mkdir()
    exp = load_experiment(write_exp(project, EXPERIMENT, name="gold/nested.toml"))
    assert exp.spec is not None and Path(exp.spec.path).name == "m.toml"


def test_shipped_experiments_validate(repo_root: Path) -> None:
    from regimes.study import STUDY_FILE, load_study

    paths = sorted((repo_root / "experiments").rglob("*.toml"))
    assert paths, "no experiment configs shipped"
    studies = [p for p in paths if p.name == STUDY_FILE]
    assert studies, "the gold study folder has no study.toml"
    for path in paths:
        if path.name == STUDY_FILE:
            assert load_study(path.parent).brief  # a study config, checked against its folder
            continue
        if path.parent.name == "sweeps":  # a sweep file: its base experiment is checked above
            from regimes.sweep.spec import load_sweep

            assert load_sweep(path).name
            continue
        exp = load_experiment(path)
        assert exp.spec is not None


SHIPPED_EXPERIMENT = {
    "model": "ms_mean",
    "data": {"target": "USMACRO_FEDFUNDS", "frequency": "Q", "start": "1960-01", "end": "2000-10"},
}


def test_shipped_specs_resolve_outside_any_project(tmp_path: Path) -> None:
    """An experiment far from the repository (no models/ above it) finds the shipped specs."""
    path = tmp_path / "mine.toml"
    path.write_text(
        'model = "ms_mean"\n[data]\ntarget = "USMACRO_FEDFUNDS"\nfrequency = "Q"\n'
        'start = "1960-01"\nend = "2000-10"\n'
    )
    exp = load_experiment(path)
    assert exp.spec is not None and exp.spec.family == "markov"
    assert Path(exp.spec.path) == SHIPPED_MODELS / "ms_mean.toml"


def test_a_models_folder_overrides_the_shipped_spec(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    shipped = (SHIPPED_MODELS / "ms_mean.toml").read_text()
    (tmp_path / "models" / "ms_mean.toml").write_text(
        shipped.replace("n_starts = 12", "n_starts = 2")
    )
    exp = load_experiment(SHIPPED_EXPERIMENT, base_dir=tmp_path)
    assert exp.spec is not None and exp.spec.path == str(tmp_path / "models" / "ms_mean.toml")
    assert exp.spec.options["n_starts"] == 2


def test_an_experiment_as_a_dict_or_an_experiment(tmp_path: Path) -> None:
    exp = load_experiment(SHIPPED_EXPERIMENT, base_dir=tmp_path)
    assert exp.name == "experiment" and exp.path == ""
    assert exp.spec is not None and exp.spec.options["k_regimes"] == 2
    assert load_experiment(exp) is exp  # already resolved: as it is
    bare = exp.model_copy(update={"spec": None})
    again = load_experiment(bare, base_dir=tmp_path)
    assert again.spec == exp.spec


def test_a_bad_dict_names_the_key_without_a_file() -> None:
    bad = {**SHIPPED_EXPERIMENT, "sampler": {"drws": 10}}
    with pytest.raises(ConfigError, match=r"^experiment \(dict\): unknown key 'sampler.drws'"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match=r"experiment \(dict\): key 'model'.*'nope' not found"):
        load_experiment({**SHIPPED_EXPERIMENT, "model": "nope"})
