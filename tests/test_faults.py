"""Faults handled (issue 17, item 4): bad experiment names, invalid priors, unreadable configs and
run directories that are corrupt or were changed after they were written. Each case is one
`regimes: error:` line and exit 2, never a traceback, a wrong answer or a file outside `--out`.

Runs are built by hand with `write_run` (no sampling), so every test here takes well under a
second except the one that writes a report into a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import xarray as xr

from handmade_runs import derived_of, make_run
from regimes.cli import main
from regimes.config import load_experiment, load_model_spec
from regimes.errors import ConfigError, RunError
from regimes.results import (
    CONFIG,
    DERIVED,
    MANIFEST,
    POSTERIOR,
    add_file_to_run,
    load_derived,
    load_posterior,
    open_run,
    sha256_file,
    write_netcdf,
    write_run,
)

MODIFIED = "the run directory was modified after it was written"

MODEL = """
family = "static"
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
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.toml").write_text(MODEL)
    (tmp_path / "experiments").mkdir()
    return tmp_path


def _exp(project: Path, text: str, file: str = "e.toml") -> Path:
    path = project / "experiments" / file
    path.write_text(text, encoding="utf-8")
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a command that failed with a user error (no traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("regimes: error: "), err
    return err[0]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# ------------------------------------------------------------------ experiment names


BAD_NAMES = [
    "../escape",
    "../../etc/passwd",
    "a/b",
    "a\\\\b",  # TOML escape: the name is a\b
    "..",
    ".",
    ".hidden",
    "a..b",
    "",
    "tab\\there",  # TOML escape: a control character
    "nul\\u0000",
    "line\\nbreak",
    "/abs",
    "x" * 101,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_experiment_name_must_be_a_plain_file_name(project: Path, name: str) -> None:
    path = _exp(project, f'name = "{name}"\n' + EXPERIMENT)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: key 'name': experiment name ")
    assert "letters, digits, '_', '-' and '.' (not first, no '..')" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("name", ["gold", "gold_ms2", "ms-2.v3", "-x", "A1"])
def test_plain_experiment_names_are_accepted(project: Path, name: str) -> None:
    assert load_experiment(_exp(project, f'name = "{name}"\n' + EXPERIMENT)).name == name


@pytest.mark.parametrize("file", [".hidden.toml", "my run.toml", "a..b.toml"])
def test_experiment_name_from_the_file_stem_is_checked(project: Path, file: str) -> None:
    path = _exp(project, EXPERIMENT, file)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: key 'name': experiment name ")
    assert "the file name" in message and "letters, digits" in message


def test_run_with_a_path_name_writes_nothing_outside_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _exp(project, 'name = "../../escaped"\n' + EXPERIMENT)
    out = project / "deep" / "out"
    before = _files_under(project)
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert f"{path}: key 'name'" in line and "'../../escaped'" in line
    assert _files_under(project) == before  # not even --out was created


@pytest.mark.parametrize(
    ("experiment", "run_id"), [("../x", "r1"), ("a/b", "r1"), ("", "r1"), ("e", "../r1")]
)
def test_write_run_refuses_a_path_as_name(tmp_path: Path, experiment: str, run_id: str) -> None:
    root = tmp_path / "out"
    with pytest.raises(RunError, match=r"must be|must not be empty"):
        write_run(root, experiment, run_id, lambda tmp: {})
    assert not tmp_path.joinpath("x").exists() and not root.exists()


# ------------------------------------------------------------------ priors


BAD_PRIORS = [
    # (prior line under [priors], key in the message, fragment giving the valid range)
    ('sigma = { dist = "HalfNormal", sigma = -1.0 }', "priors.sigma.sigma", "must be a number > 0"),
    ('beta = { dist = "Normal", mu = 0.0, sigma = 0.0 }', "priors.beta.sigma", "> 0"),
    ('beta = { dist = "Normal", mu = 0.0, tau = -2 }', "priors.beta.tau", "> 0"),
    ('beta = { dist = "StudentT", nu = 0, mu = 0.0, sigma = 1.0 }', "priors.beta.nu", "> 0"),
    ('beta = { dist = "StudentT", nu = 3, lam = -1.0 }', "priors.beta.lam", "> 0"),
    ('sigma = { dist = "HalfStudentT", nu = 3, sigma = -0.1 }', "priors.sigma.sigma", "> 0"),
    ('sigma = { dist = "Gamma", alpha = -2.0, beta = 1.0 }', "priors.sigma.alpha", "> 0"),
    ('sigma = { dist = "Gamma", alpha = 2.0, beta = 0 }', "priors.sigma.beta", "> 0"),
    ('sigma = { dist = "InverseGamma", alpha = 2.0, beta = -1 }', "priors.sigma.beta", "> 0"),
    ('sigma = { dist = "Exponential", lam = -1.0 }', "priors.sigma.lam", "> 0"),
    ('sigma = { dist = "Exponential", scale = 0.0 }', "priors.sigma.scale", "> 0"),
    ('sigma = { dist = "LogNormal", mu = 0.0, sigma = -1 }', "priors.sigma.sigma", "> 0"),
    ('rho = { dist = "Beta", alpha = 0.0, beta = 1.0 }', "priors.rho.alpha", "> 0"),
    ('rho = { dist = "Beta", mu = 1.5, nu = 2.0 }', "priors.rho.mu", "strictly between 0 and 1"),
    ('rho = { dist = "Beta", mu = 0.5, sigma = 0.6 }', "priors.rho.sigma", "sqrt(mu * (1 - mu))"),
    (
        'rho = { dist = "Uniform", lower = 0.5, upper = 0.5 }',
        "priors.rho.upper",
        "must be greater than lower = 0.5",
    ),
    (
        'rho = { dist = "Uniform", lower = 0.9, upper = -0.9 }',
        "priors.rho.upper",
        "must be greater than lower = 0.9",
    ),
    ('rho = { dist = "Uniform", lower = 2.0 }', "priors.rho.lower", "less than upper = 1.0"),
    (
        'rho = { dist = "TruncatedNormal", mu = 0.0, sigma = 1.0, lower = 1.0, upper = 0.0 }',
        "priors.rho.upper",
        "greater than lower = 1.0",
    ),
    (
        'rho = { dist = "TruncatedNormal", sigma = -1.0, lower = 0.0, upper = 1.0 }',
        "priors.rho.sigma",
        "> 0",
    ),
    ('beta = { dist = "Dirichlet", a = [1.0, 0.0] }', "priors.beta.a", "each element must be"),
    ('beta = { dist = "Dirichlet", a = 1.0 }', "priors.beta.a", "list of at least two numbers"),
    ('beta = { dist = "Normal", mu = nan, sigma = 1.0 }', "priors.beta.mu", "a finite number"),
    ('sigma = { dist = "HalfNormal", sigma = inf }', "priors.sigma.sigma", "> 0"),
    ('sigma = { dist = "HalfNormal", sigma = [1.0, -1.0] }', "priors.sigma.sigma", "each element"),
    ('beta = { dist = "Normal", mu = 0.0, scale = 1.0 }', "priors.beta.scale", "mu, sigma, tau"),
    ('sigma = { dist = "Gamma", alpha = 2.0 }', "priors.sigma", "alpha and beta, or mu and sigma"),
    ('beta = { dist = "Normal", sigma = 1.0, tau = 1.0 }', "priors.beta", "any of (mu, tau)"),
    ('beta = { dist = "StudentT", mu = 0.0 }', "priors.beta", "nu with any of"),
]


@pytest.mark.parametrize(("line", "key", "valid"), BAD_PRIORS)
def test_invalid_prior_in_experiment_is_refused_at_load(
    project: Path, line: str, key: str, valid: str
) -> None:
    path = _exp(project, EXPERIMENT + f"\n[priors]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: key '{key}': "), message
    assert valid in message and "found" in message


@pytest.mark.parametrize(("line", "key", "valid"), BAD_PRIORS[:3] + BAD_PRIORS[15:17])
def test_invalid_prior_in_model_spec_is_refused_at_load(
    project: Path, line: str, key: str, valid: str
) -> None:
    path = project / "models" / "bad.toml"
    path.write_text(f'family = "static"\n[priors]\n{line}\n')
    with pytest.raises(ConfigError) as info:
        load_model_spec(path)
    assert str(info.value).startswith(f"{path}: key '{key}': ") and valid in str(info.value)


def test_negative_scale_is_one_line_from_the_cli(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _exp(project, EXPERIMENT + '\n[priors]\nsigma = { dist = "HalfNormal", sigma = -1 }\n')
    assert main(["run", str(path), "--out", str(project / "out"), "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert f"{path}: key 'priors.sigma.sigma'" in line and "must be a number > 0" in line
    assert "found -1" in line
    assert not (project / "out").exists()


def test_valid_priors_pass_and_match_pymc_signatures() -> None:
    """Every parameter the table allows is a keyword of the PyMC distribution (so the table
    never accepts what PyMC would refuse by name), and typical priors validate."""
    import inspect

    import pymc as pm

    from regimes.spec import PRIOR_PARAMS, PriorSpec

    for dist, table in PRIOR_PARAMS.items():
        accepted = set(inspect.signature(getattr(pm, dist).dist).parameters)
        assert set(table.params) <= accepted, (dist, set(table.params) - accepted)
    for spec in (
        {"dist": "Normal", "mu": [-1.0, 0.3], "sigma": 0.5},
        {"dist": "Uniform", "lower": -0.999, "upper": 0.999},
        {"dist": "Uniform"},
        {"dist": "Beta", "alpha": 100.0, "beta": 1.0},
        {"dist": "Beta", "mu": 0.5, "sigma": 0.2},
        {"dist": "InverseGamma", "alpha": 3.0},
        {"dist": "TruncatedNormal", "mu": 0.0, "sigma": 1.0, "lower": [0.0, 1.0], "upper": 2.0},
        {"dist": "Dirichlet", "a": [1.0, 1.0, 2.0]},
        {"dist": "Exponential"},
    ):
        assert PriorSpec(**spec).params == {k: v for k, v in spec.items() if k != "dist"}


# ------------------------------------------------------------------ unreadable configs


def test_binary_config_is_a_config_error(project: Path, capsys) -> None:
    path = project / "experiments" / "e.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ConfigError, match=r"not a UTF-8 text file \(byte 0 is 0x89\)"):
        load_experiment(path)
    assert main(["run", str(path), "--out", str(project / "out")]) == 2
    line = _one_error_line(capsys)
    assert str(path) in line and "not a UTF-8 text file" in line


def test_binary_model_spec_is_a_config_error(project: Path) -> None:
    (project / "models" / "m.toml").write_bytes(b'family = "static"\n\xc3\x28\n')
    with pytest.raises(ConfigError, match=r"m\.toml: not a UTF-8 text file \(byte 18 is 0xc3\)"):
        load_experiment(_exp(project, EXPERIMENT))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = " + "[" * 50000 + "]" * 50000 + "\n", "nested too deeply"),  # RecursionError
        ("x = " + "{a = " * 50000 + "1" + "}" * 50000 + "\n", "nested too deeply"),
        ("[options]\n" + "a." * 2000 + "b = 1\n", "key 'options.a.a.a.a"),
        ("[options]\nx = " + "[" * 60 + "]" * 60 + "\n", "nested 61 levels deep"),
    ],
)
def test_deeply_nested_config_is_a_config_error(
    project: Path, text: str, fragment: str, capsys
) -> None:
    path = _exp(project, EXPERIMENT + text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and fragment in message and len(message) < 400
    assert main(["run", str(path), "--out", str(project / "out")]) == 2
    assert str(path) in _one_error_line(capsys)


# ------------------------------------------------------------------ run directories


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    return make_run(tmp_path, "a", 1.0), make_run(tmp_path, "b", 2.0)


def _run_cli(verb: str, run_dir: Path, capsys) -> str:
    argv = {
        "diagnose": ["diagnose", str(run_dir)],
        "report": ["report", str(run_dir)],
        "forecast": ["forecast", str(run_dir), "--no-figures"],
        "lfo": ["lfo", str(run_dir), "--quick"],
    }[verb]
    assert main(argv) == 2
    return _one_error_line(capsys)


VERBS = ["diagnose", "report", "forecast", "lfo"]


def test_intact_runs_open_and_load(runs: tuple[Path, Path]) -> None:
    a, _ = runs
    run = open_run(a)
    assert set(run.manifest["files"]) == {DERIVED, POSTERIOR, CONFIG, "figures/fair_value.png"}
    assert float(run.derived()["price"][0]) == 1.0
    assert float(load_derived(a)["price"][0]) == 1.0
    assert "posterior" in load_posterior(a).children


@pytest.mark.parametrize("verb", VERBS)
def test_derived_swapped_in_from_another_run_is_refused(
    runs: tuple[Path, Path], verb: str, capsys
) -> None:
    a, b = runs
    shutil.copyfile(b / DERIVED, a / DERIVED)
    line = _run_cli(verb, a, capsys)
    assert f"{a / DERIVED}: content differs from {MANIFEST}" in line and MODIFIED in line
    with pytest.raises(RunError, match="content differs"):
        load_derived(a)


@pytest.mark.parametrize("verb", VERBS)
def test_deleted_derived_is_refused(runs: tuple[Path, Path], verb: str, capsys) -> None:
    a, _ = runs
    (a / DERIVED).unlink()
    line = _run_cli(verb, a, capsys)
    assert f"{a / DERIVED}: missing (listed in {MANIFEST})" in line and MODIFIED in line


@pytest.mark.parametrize("name", [POSTERIOR, CONFIG, "figures/fair_value.png"])
def test_any_changed_or_missing_file_is_refused(runs: tuple[Path, Path], name: str) -> None:
    a, _ = runs
    data = (a / name).read_bytes()
    (a / name).write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(RunError, match="content differs") as info:
        open_run(a)
    assert str(a / name) in str(info.value)
    (a / name).unlink()
    with pytest.raises(RunError, match=r"missing \(listed in manifest.json\)"):
        open_run(a)


def test_data_file_added_after_the_run_is_refused(tmp_path: Path) -> None:
    """A run written without derived.nc that later has one copied in."""
    bare = write_run(tmp_path, "exp", "bare", lambda tmp: {})
    other = make_run(tmp_path, "other", 3.0)
    assert open_run(bare).manifest["files"] == {}
    with pytest.raises(RunError, match=r"this run has no derived\.nc"):
        load_derived(bare)
    shutil.copyfile(other / DERIVED, bare / DERIVED)
    with pytest.raises(RunError, match=r"not listed in manifest\.json"):
        open_run(bare)
    with pytest.raises(RunError, match=r"not listed in manifest\.json"):
        load_derived(bare)


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated mid-write
        lambda data: b"",
        lambda data: b"\x00\xff\xfe garbage",
        lambda data: b"[1, 2]",
        lambda data: json.dumps({"status": "complete"}).encode(),  # no files map
        lambda data: json.dumps({"status": "complete", "files": {"../../x": "0" * 64}}).encode(),
    ],
    ids=["truncated", "empty", "binary", "not-object", "no-files", "path-outside"],
)
def test_corrupt_manifest_is_one_line(runs: tuple[Path, Path], verb: str, damage, capsys) -> None:
    a, _ = runs
    path = a / MANIFEST
    path.write_bytes(damage(path.read_bytes()))
    line = _run_cli(verb, a, capsys)
    assert f"{path}: " in line and ("corrupt" in line or "unreadable" in line)


@pytest.mark.parametrize("verb", ["diagnose", "report", "forecast"])
def test_corrupt_netcdf_written_with_the_run_is_one_line(tmp_path: Path, verb: str, capsys) -> None:
    """posterior.nc that was already corrupt when the run was written (its hash matches)."""
    good = make_run(tmp_path, "good", 1.0)
    half = (good / POSTERIOR).read_bytes()
    bad = make_run(tmp_path, "bad", 1.0, posterior=half[: len(half) // 2])
    assert open_run(bad).manifest["files"][POSTERIOR] == sha256_file(bad / POSTERIOR)
    if verb == "forecast":  # forecast reads config.toml first; load the posterior directly
        with pytest.raises(RunError, match="not a readable netCDF file") as info:
            open_run(bad).posterior()
        assert str(bad / POSTERIOR) in str(info.value)
        return
    line = _run_cli(verb, bad, capsys)
    assert f"{bad / POSTERIOR}: not a readable netCDF file" in line


def write_report_interrupted_with_new_figures(run_dir: Path, monkeypatch) -> None:
    """Rewrite a run's report with figures that differ from the first ones, interrupted (Ctrl-C)
    while the page is rendered, after the figures were moved into the run."""
    from regimes.report import write as report_write

    draw = report_write.report_figures

    def changed(tree: xr.DataTree, out: Path, mark: str) -> list[Path]:
        paths = draw(tree, out, mark)
        for path in paths:
            path.write_bytes(path.read_bytes() + b"\0")
        return paths

    def interrupted(*args: object) -> str:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(report_write, "report_figures", changed)
        m.setattr(report_write, "render_report", interrupted)
        with pytest.raises(KeyboardInterrupt):
            report_write.write_report(run_dir)


def test_adding_files_and_writing_a_report_keep_the_run_openable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The legitimate writers into a finished run (add_files_to_run, the report) keep every
    file listed with its sha256, so the run still opens; then tampering is still caught."""
    from regimes.report import write_report

    run_dir = make_run(tmp_path, "r", 1.0)
    add_file_to_run(run_dir, "lfo.nc", lambda tmp: write_netcdf(derived_of(5.0), tmp))
    add_file_to_run(run_dir, "lfo.nc", lambda tmp: write_netcdf(derived_of(6.0), tmp))  # rewrite
    report = write_report(run_dir)
    write_report_interrupted_with_new_figures(run_dir, monkeypatch)
    run = open_run(run_dir)  # the new figures were listed before the page was rendered
    files = run.manifest["files"]
    assert {"lfo.nc", report.name, "figures/trace.png"} <= set(files)
    for name, digest in files.items():
        assert sha256_file(run_dir / name) == digest, name
    assert not [p for p in run_dir.rglob(".*")]  # no temporary leftovers
    (run_dir / "lfo.nc").write_bytes(b"x")
    with pytest.raises(RunError, match=r"lfo\.nc: content differs"):
        open_run(run_dir)
    with pytest.raises(RunError, match="not a file path inside the run"):
        add_file_to_run(make_run(tmp_path, "s", 2.0), "../evil.nc", lambda tmp: None)


def test_every_line_of_a_multi_problem_error_is_prefixed(project: Path, capsys) -> None:
    text = EXPERIMENT.replace('end = "2021-12"', 'end = "2021-12"\nendd = 1\nmin_obs = 1')
    path = _exp(project, text)
    assert main(["run", str(path), "--out", str(project / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith(f"regimes: error: {path}: ") for line in err)
