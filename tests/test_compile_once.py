"""Compile once: a model's log density compiled to JAX with its data containers as arguments
(`regimes.compiled`) equals PyMC's own, is reused for new data of the same shapes and never for
data it was not given, and a leave-future-out refit padded to the full window (weighted
likelihood) is the same posterior as the refit on the short window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimes import compiled
from regimes.dataset import FitFrame, pad_frame, truncate
from regimes.families import get_family
from regimes.spec import ModelSpec

MARKOV = {
    "level": {"k_regimes": 2, "switching": ["intercept", "x"]},
    "ar": {"k_regimes": 2, "ar_order": 2},
    "ecm": {"k_regimes": 2, "form": "ecm", "transform": "log"},
    "covariates": {"k_regimes": 2, "transition": "covariates", "transition_covariates": ["z"]},
    "changepoint": {"k_regimes": 3, "transition": "changepoint", "form": "ecm"},
}


def frame_of(seed: int, n: int = 48) -> FitFrame:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 0.3, n))
    z = np.sin(np.arange(n) / 5.0)
    y = 40.0 + 2.0 * x + 5.0 * (np.arange(n) > n // 2) + rng.normal(0, 1.0, n)
    index = pd.date_range("2010-01-01", periods=n, freq="MS")
    frame = pd.DataFrame({"y": y, "x": x, "z": z}, index=index)
    return FitFrame("y", ("x", "z"), frame, pd.Series(True, index=index, name="in_sample"))


def random_points(model, n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    start = model.initial_point()
    return [{k: v + rng.normal(0, 0.4, np.shape(v)) for k, v in start.items()} for _ in range(n)]


def flat(compiled_model, point: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(point[name]) for name in compiled_model.value_names])


def experiment_of(spec: ModelSpec, end: str = "2013-12", sampler: dict | None = None, **data):
    """An experiment of `spec` on `frame_of`'s series (y on x and z from 2010-01 to `end`), with
    more `[data]` keys and a `[sampler]` table where given."""
    from regimes.config import Experiment

    window = {"target": "y", "factors": ["x", "z"], "start": "2010-01", "end": end, **data}
    body = {"name": "t", "model": "t", "data": window, "spec": spec}
    return Experiment.model_validate(body | ({"sampler": sampler} if sampler else {}))


@pytest.mark.parametrize("case", ["static", *sorted(MARKOV)])
def test_compiled_log_density_equals_pymc(case: str) -> None:
    family, options = (
        ("static", {"transform": "level"}) if case == "static" else ("markov", MARKOV[case])
    )
    spec = ModelSpec(family=family, options=options, name="t")
    model = get_family(family).build(spec, frame_of(1, n=24))
    cm = compiled.CompiledModel.from_model(model)
    data = cm.data_of(model)
    logp_and_grad = pymc_log_density(model, cm.value_names)
    fn = cm.logp_and_grad()
    for point in random_points(model, 2, seed=2):
        value, grad = fn(flat(cm, point), data)
        expected, expected_grad = logp_and_grad(point)
        np.testing.assert_allclose(float(value), expected, rtol=1e-9)
        np.testing.assert_allclose(np.asarray(grad), expected_grad, rtol=1e-7, atol=1e-9)


def pymc_log_density(model, names: list[str]):
    """PyMC's own log density and its gradient (flat, in `names` order), from PyMC's graph with
    the data baked in, through PyTensor's JAX backend: its C and numba backends take one to
    three minutes to compile these scans on a cold cache (as in CI)."""
    import pytensor

    from regimes.graphs import compile_function

    by_name = {v.name: v for v in model.value_vars}
    values = [by_name[name] for name in names]
    logp = model.logp()
    fn = compile_function(values, [logp, *pytensor.grad(logp, values)])

    def call(point: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        value, *grads = fn(*[point[name] for name in names])
        return float(value), np.concatenate([np.ravel(g) for g in grads])

    return call


def pymc_logp(model):
    """PyMC's own log density of `model` at a point (a dict by value-variable name), through
    PyTensor's JAX backend (see `pymc_log_density`)."""
    from regimes.graphs import compile_function

    values = list(model.value_vars)
    fn = compile_function(values, model.logp())
    return lambda point: float(fn(*[point[v.name] for v in values]))


def test_compiled_model_is_reused_for_new_data_of_the_same_shapes_only() -> None:
    spec = ModelSpec(family="markov", options=MARKOV["ar"], name="t")
    family = get_family("markov")
    a = family.build(spec, frame_of(1))
    b = family.build(spec, frame_of(2))  # other data, same shapes
    c = family.build(spec, frame_of(3, n=60))  # other shapes
    ca, cb, cc = (compiled.compiled_for(m, "key-ar") for m in (a, b, c))
    assert ca is cb and ca is not cc
    # the shared compilation evaluates each model's own data: equal to PyMC on b's data
    point = random_points(b, 1, seed=4)[0]
    value, _ = cb.logp_and_grad()(flat(cb, point), cb.data_of(b))
    np.testing.assert_allclose(float(value), pymc_logp(b)(point), rtol=1e-9)
    value_a, _ = ca.logp_and_grad()(flat(ca, point), ca.data_of(a))
    assert abs(float(value_a) - float(value)) > 1e-6  # a's data give another density


def test_constants_baked_into_a_graph_are_part_of_the_key() -> None:
    """An observed array given as a plain array is a constant of the graph: another array is
    another key (never a compilation that silently fits the old data)."""
    import pymc as pm

    def baked(y: np.ndarray):
        with pm.Model() as model:
            pm.Normal("y", pm.Normal("mu"), 1.0, observed=y)
        return model

    a, b = baked(np.arange(5.0)), baked(np.arange(5.0) + 1)
    assert compiled.constants_digest(a) != compiled.constants_digest(b)
    assert compiled.compiled_for(a, "key-baked") is not compiled.compiled_for(b, "key-baked")
    again = baked(np.arange(5.0))
    assert compiled.compiled_for(again, "key-baked") is compiled.compiled_for(a, "key-baked")


def test_static_refits_share_one_compilation() -> None:
    """The static family's target and factors are data containers: new data of the same shapes
    reuse the compilation and it evaluates the new data."""
    spec = ModelSpec(family="static", options={"transform": "level", "errors": "ar1"}, name="t")
    family = get_family("static")
    a, b = family.build(spec, frame_of(1)), family.build(spec, frame_of(2))
    ca, cb = compiled.compiled_for(a, "key-static"), compiled.compiled_for(b, "key-static")
    assert ca is cb
    point = random_points(b, 1, seed=4)[0]
    value, _ = cb.logp_and_grad()(flat(cb, point), cb.data_of(b))
    np.testing.assert_allclose(float(value), pymc_logp(b)(point), rtol=1e-9)


@pytest.mark.parametrize("case", sorted(MARKOV))
def test_padded_refit_has_the_short_windows_posterior(case: str) -> None:
    """Weighted months count zero: the padded model's log density equals the short window's
    at every point (so its posterior is the same), in the long window's shapes."""
    spec = ModelSpec(family="markov", options=MARKOV[case], name="t")
    family = get_family("markov")
    frame = frame_of(5)
    short = family.build(spec, truncate(frame, 30))
    padded = family.build(spec, truncate(frame, 30, score_until=48, padded=True))
    scoring = family.build(spec, truncate(frame, 30, score_until=48))
    assert compiled.data_shapes(padded) == compiled.data_shapes(scoring)
    logp_short, logp_padded, logp_scoring = (pymc_logp(m) for m in (short, padded, scoring))
    for point in random_points(short, 3, seed=6):
        np.testing.assert_allclose(logp_padded(point), logp_short(point), rtol=1e-10)
        assert abs(logp_scoring(point) - logp_short(point)) > 1e-3  # the later months do count


def test_a_runs_stored_tuning_warm_starts_a_quick_refit(tmp_path) -> None:
    """The tuning a run stores (`tuning.npz`) round-trips, and a refit with fewer chains and
    another multi-start count (a quick LFO refit of a full run: the same compiled structure)
    starts from its first chains and samples what a cold fit samples."""
    from regimes.config import SamplerSection
    from regimes.fit import compile_key
    from regimes.sampling import sample

    family = get_family("markov")
    full = ModelSpec(family="markov", options={"k_regimes": 1, "n_starts": 6}, name="t")
    quick = family.quick_spec(full, 2)
    assert quick.options["n_starts"] == 2

    def key(spec: ModelSpec) -> str:
        return compile_key(experiment_of(spec), frame_of(1))

    assert key(full) == key(quick)  # init settings do not change the compiled structure
    copied = full.model_copy(update={"path": "/elsewhere/models/t.toml", "description": "copy"})
    assert key(copied) == key(full)  # a copy of the spec (a sweep's models/) shares it too
    other = full.model_copy(update={"options": {**full.options, "k_regimes": 2}})
    assert key(other) != key(full)
    run = compiled.Adaptation()
    sampler = SamplerSection(draws=300, tune=300, chains=4, seed=5)
    sample(family.build(full, frame_of(1)), sampler, compile_key=key(full), adaptation=run)
    run.save(tmp_path / "tuning.npz")
    loaded = compiled.Adaptation.load(tmp_path / "tuning.npz")
    assert loaded.structure == run.structure and loaded.step_size.shape == (4,)
    for a, b in zip(loaded.position, run.position, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.inverse_mass, run.inverse_mass)
    assert compiled.Adaptation.load(tmp_path / "missing.npz").step_size is None
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert compiled.Adaptation.load(tmp_path / "broken.npz").step_size is None  # a cold start

    two = sampler.model_copy(update={"chains": 2, "draws": 400})
    model = family.build(quick, frame_of(2))  # new data, same shapes
    warm = sample(model, two, compile_key=key(quick), adaptation=loaded)
    cold = sample(model, two, seed=11, compile_key=key(quick), init="multistart", n_starts=2)
    assert warm.attrs["init"].startswith("warm") and loaded.step_size.shape == (2,)
    post_w, post_c = warm["posterior"].to_dataset(), cold["posterior"].to_dataset()
    for name in post_c.data_vars:
        w, c = post_w[name].values, post_c[name].values
        sd = c.std(axis=(0, 1))
        assert np.all(np.abs(w.mean(axis=(0, 1)) - c.mean(axis=(0, 1))) < 0.3 * sd), name
        assert np.all(np.abs(w.std(axis=(0, 1)) / sd - 1) < 0.3), name


def test_a_warm_started_refit_samples_the_same_posterior() -> None:
    """A refit given the previous fit's `Adaptation` starts from its chains and tuning, re-tunes
    the step size only (a third of the warm-up) and draws the posterior a cold fit draws, within
    Monte Carlo error; an adaptation filled for other shapes is not used."""
    from regimes.config import SamplerSection
    from regimes.sampling import sample

    spec = ModelSpec(family="static", options={"transform": "level"}, name="t")
    family = get_family("static")
    sampler = SamplerSection(draws=400, tune=300, chains=2, seed=3)
    carry = compiled.Adaptation()
    sample(family.build(spec, frame_of(1)), sampler, compile_key="warm-test", adaptation=carry)
    n_values = sum(compiled.compiled_for(family.build(spec, frame_of(1)), "warm-test").sizes)
    assert carry.step_size.shape == (2,) and np.all(carry.step_size > 0)
    assert carry.inverse_mass.shape == (2, n_values) and np.all(carry.inverse_mass > 0)

    model = family.build(spec, frame_of(2))  # new data, same shapes
    warm = sample(model, sampler, compile_key="warm-test", adaptation=carry)
    cold = sample(model, sampler, seed=11, compile_key="warm-test")
    assert warm.attrs["init"].startswith("warm") and not cold.attrs["init"].startswith("warm")
    assert warm["posterior"].attrs["tuning_steps"] == compiled.warm_tune(300) == 100
    post_w, post_c = warm["posterior"].to_dataset(), cold["posterior"].to_dataset()
    for name in ("intercept", "beta", "sigma"):
        if name not in post_w:
            continue
        w, c = post_w[name].values, post_c[name].values
        sd = c.std(axis=(0, 1))
        assert np.all(np.abs(w.mean(axis=(0, 1)) - c.mean(axis=(0, 1))) < 0.25 * sd), name
        assert np.all(np.abs(w.std(axis=(0, 1)) / sd - 1) < 0.3), name
    assert int(warm["sample_stats"]["diverging"].sum()) == 0

    other = family.build(spec, frame_of(2, n=40))  # other shapes: another compiled structure
    assert (
        not sample(other, sampler, compile_key="warm-test", adaptation=carry)
        .attrs["init"]
        .startswith("warm")
    )


def window_of(frame: FitFrame, n: int) -> FitFrame:
    """The frame's first `n` months as a run ending there sees them (fit window = frame)."""
    rows = frame.frame.iloc[:n]
    return FitFrame("y", frame.factors, rows, pd.Series(True, index=rows.index, name="in_sample"))


@pytest.mark.parametrize("case", sorted(MARKOV))
def test_a_padded_window_has_its_own_posterior_in_the_longer_shapes(case: str) -> None:
    """`pad_frame` (an origins sweep's `data.pad_to`): the months after the window carry no
    data (target unobserved, factors held), so the padded model's log density equals the
    window's at every point, in the shapes of the longest window: one compilation for all."""
    spec = ModelSpec(family="markov", options=MARKOV[case], name="t")
    family = get_family("markov")
    frame = frame_of(5)
    short = window_of(frame, 30)
    padded = pad_frame(short, frame.time[-1])
    assert padded.attrs["padded_to"] == f"{frame.time[-1]:%Y-%m}"
    assert padded.frame["y"].iloc[30:].isna().all()  # nothing after the window is read
    assert (padded.frame[["x", "z"]].iloc[30:] == short.frame[["x", "z"]].iloc[-1]).all().all()
    assert padded.train.sum() == 30 and padded.scale.sum() == 30 and padded.fit.all()
    models = {
        n: family.build(spec, pad_frame(window_of(frame, n), frame.time[-1])) for n in (30, 41)
    }
    assert compiled.data_shapes(models[30]) == compiled.data_shapes(family.build(spec, frame))
    assert compiled.data_shapes(models[30]) == compiled.data_shapes(models[41])
    logp_short, logp_padded = pymc_logp(family.build(spec, short)), pymc_logp(models[30])
    for point in random_points(models[30], 3, seed=6):
        np.testing.assert_allclose(logp_padded(point), logp_short(point), rtol=1e-10)
    with pytest.raises(ValueError, match="end with its fit window"):
        pad_frame(truncate(frame, 30), frame.time[-1])  # months after the fit window: refused


def test_padded_fits_of_two_windows_compile_once_and_record_their_own_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`fit_frame` with `data.pad_to`: two windows ending at different months share one
    compiled model (built once), and each tree holds its own window's data and pointwise
    log-likelihood, not the padded arrays."""
    from regimes.fit import fit_frame

    made = []
    from_model = compiled.CompiledModel.from_model.__func__
    monkeypatch.setattr(
        compiled.CompiledModel,
        "from_model",
        classmethod(lambda cls, model: made.append(1) or from_model(cls, model)),
    )
    spec = ModelSpec(family="markov", options={**MARKOV["level"], "n_starts": 2}, name="pad")
    frame = frame_of(7)
    for n in (30, 37):
        end = f"{frame.time[n - 1]:%Y-%m}"
        sampler = {"draws": 30, "tune": 30, "chains": 2, "seed": 2}
        pad_to = f"{frame.time[-1]:%Y-%m}"
        exp = experiment_of(spec, end, sampler, predict_end=end, pad_to=pad_to)
        tree = fit_frame(exp, window_of(frame, n), progress=False)
        assert tree["log_likelihood"]["y"].sizes["time"] == n
        assert np.isfinite(tree["log_likelihood"]["y"].values).all()
        for group in tree.children:  # every month dimension is the window's, none the padding's
            months = {d: size for d, size in tree[group].sizes.items() if "time" in d}
            assert all(size in (n, n - 1) for size in months.values()), (group, months)
            assert group != "posterior" or not months  # parameters only, no per-month variable
        assert tree["constant_data"].sizes["fit_time"] == n
    assert len(made) == 1  # the second window reused the first's compiled model


def test_a_family_without_likelihood_weights_refuses_padded_arrays() -> None:
    """`data.pad_to` on a family whose likelihood counts every month: an error naming the key,
    before anything is built or sampled."""
    from regimes.errors import ConfigError
    from regimes.fit import fit_frame

    frame = frame_of(3)
    spec = ModelSpec(family="static", options={"transform": "level"}, name="s")
    exp = experiment_of(spec, "2011-12", predict_end="2011-12", pad_to="2013-12")
    with pytest.raises(ConfigError, match=r"key 'data\.pad_to': the static family does not weight"):
        fit_frame(exp, window_of(frame, 24), progress=False)
