"""The hierarchical panel family: panel configs and frames, masking of missing months, the
shared chain's emission sum, outputs, and recovery on simulated panels (bigger runs are slow)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from regimes import hmm
from regimes.anchoring import regime_anchor_check
from regimes.config import load_experiment
from regimes.dataset import build_frame
from regimes.errors import ConfigError, DataError
from regimes.families import get_family
from regimes.families.base import Fit
from regimes.families.panel.options import Options
from regimes.families.panel.simulate import simulate_panel
from regimes.families.schema import check_derived
from regimes.graphs import compile_function
from regimes.ppc import run_checks
from regimes.spec import ModelSpec

MODEL = """
family = "panel"
[options]
k_regimes = 2
order_by = "x1"
"""

EXPERIMENT = """
model = "m"
[data]
target = "gold"
factors = ["dollar", "real_rate"]
start = "2000-01"
end = "2021-12"
"""


def component_function(spec: ModelSpec, frame):
    """The family's compiled per-draw graphs, the model whose data they read, and its data."""
    fn, owner, built = get_family("panel").compiled(spec, frame)
    return fn, owner, built.data


def panel_data(frame, options: dict):
    """The data a panel spec with these options sees on `frame` (raises its config errors)."""
    return (
        get_family("panel")
        .assemble(ModelSpec(family="panel", options=options, name="t"), frame)
        .data
    )


def moments(d) -> tuple[np.ndarray, np.ndarray]:
    """Each asset's (mean, sd) of its transformed price, as arrays over assets."""
    pairs = [d.scaling.moments(a) for a in d.series]
    return np.array([m for m, _ in pairs]), np.array([s for _, s in pairs])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.toml").write_text(MODEL)
    return tmp_path


def load(project: Path, data_lines: str, options: str = ""):
    path = project / "e.toml"
    path.write_text(EXPERIMENT + data_lines + options)
    return load_experiment(path)


# ------------------------------------------------------------------ configs


def test_panel_config_loads(project: Path) -> None:
    exp = load(
        project,
        'assets = ["gold", "SILVER", "COPPER"]\n[data.asset_factors]\nCOPPER = ["dollar"]\n',
    )
    assert exp.data.assets == ["gold", "SILVER", "COPPER"]
    assert exp.data.asset_factors == {"COPPER": ["dollar"]}


def test_single_asset_config_unchanged(project: Path) -> None:
    exp = load(project, "")
    assert exp.data.assets == [] and exp.data.asset_factors == {}


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        ('assets = ["SILVER", "COPPER"]\n', "data.target"),
        ('assets = ["gold", "SILVER", "SILVER"]\n', "data.assets"),
        ('assets = ["gold", "dollar"]\n', "data.assets"),
        ('[data.asset_factors]\ngold = ["dollar"]\n', "data.asset_factors"),
        ('assets = ["gold", "SILVER"]\n[data.asset_factors]\nCOPPER = ["dollar"]\n', "COPPER"),
        (
            'assets = ["gold", "SILVER"]\n[data.asset_factors]\nSILVER = ["ddri"]\n',
            "data.asset_factors.SILVER",
        ),
    ],
)
def test_panel_config_errors_name_the_key(project: Path, lines: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(project, lines)
    assert named in str(err.value) and "e.toml" in str(err.value)


def test_independent_chain_needs_constant_transitions(project: Path) -> None:
    with pytest.raises(ConfigError, match="independent"):
        load(
            project,
            'assets = ["gold", "SILVER"]\n',
            '[options]\nchain = "independent"\ntransition = "changepoint"\n',
        )


# ------------------------------------------------------------------ frames


_NOISE = np.random.default_rng(2)  # every series its own wiggle: a target never collinear


def _series(start: str, n: int, value: float = 10.0) -> pd.Series:
    idx = pd.date_range(start, periods=n, freq="MS")
    return pd.Series(value + np.arange(n, dtype=float) + _NOISE.normal(0, 0.1, n), index=idx)


def test_panel_frame_keeps_late_and_gappy_assets_missing(tmp_path: Path) -> None:
    late = _series("2001-01", 36)
    gappy = _series("2000-01", 48)
    gappy.iloc[[5, 6, 7]] = np.nan  # a three-month gap: not filled
    supplied = {"ref": _series("2000-01", 48), "x": _series("2000-01", 50, 0.0),
                "late": late, "gappy": gappy}  # fmt: skip
    frame = build_frame(
        "ref",
        ["x"],
        pd.Timestamp("2000-01-01"),
        pd.Timestamp("2003-12-01"),
        tmp_path,
        supplied=supplied,
        assets=["late", "ref", "gappy"],
        asset_factors={"late": ["x"]},
    )
    assert frame.panel_assets == ("ref", "late", "gappy")
    assert list(frame.frame.columns) == ["ref", "x", "late", "gappy"]
    fit = frame.fit.to_numpy()
    assert frame.frame["late"][fit].isna().sum() == 12
    assert frame.frame["gappy"][fit].isna().sum() == 3
    assert frame.attrs["asset_months"] == "late:36,ref:48,gappy:45"
    assert frame.anchor_terms("late") == ("x",) and frame.anchor_terms("gappy") == ("x",)

    single = build_frame(
        "ref", ["x"], pd.Timestamp("2000-01-01"), pd.Timestamp("2003-12-01"), tmp_path,
        supplied=supplied,
    )  # fmt: skip
    assert list(single.frame.columns) == ["ref", "x"] and "asset_months" not in single.attrs
    assert single.assets == () and single.panel_assets == ("ref",)


def test_panel_asset_without_data_in_window_is_named(tmp_path: Path) -> None:
    supplied = {"ref": _series("2000-01", 48), "x": _series("2000-01", 48, 0.0),
                "empty": _series("2010-01", 12)}  # fmt: skip
    with pytest.raises(DataError, match=r"data.assets: \['empty'\]"):
        build_frame(
            "ref", ["x"], pd.Timestamp("2000-01-01"), pd.Timestamp("2003-12-01"), tmp_path,
            supplied=supplied, assets=["ref", "empty"],
        )  # fmt: skip


# ------------------------------------------------------------------ likelihood


def _fixed_values(model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Constrained values for every free variable of a 2-regime panel model."""
    values = {}
    for rv in model.free_RVs:
        shape = tuple(int(s) for s in model.initial_point()[model.rvs_to_values[rv].name].shape)
        name = rv.name
        if name == "P":
            values[name] = np.array([[0.9, 0.1], [0.2, 0.8]])
        elif name.startswith("mu_") or name == "intercept":
            values[name] = np.sort(rng.normal(size=shape))
        elif name in ("tau", "tau_anchor", "intercept_sd", "sigma"):
            values[name] = 0.3 + rng.random(shape)
        elif name == "speed":
            values[name] = 0.05 + 0.3 * rng.random(shape)
        else:
            values[name] = rng.normal(size=shape)
    return values


def test_emission_sum_and_masking_match_a_hand_computed_sum() -> None:
    frame, _ = simulate_panel(1, n_months=60, late_by=20)
    spec = ModelSpec(family="panel", options={"k_regimes": 2}, name="t")
    fn, model, d = component_function(spec, frame)
    rng = np.random.default_rng(0)
    values = _fixed_values(model, rng)
    args = [values[rv.name] for rv in model.free_RVs]
    log_init, log_trans, log_lik, *_ = fn(*args)

    # by hand: each asset's Normal log density per regime, summed over the observed assets
    alpha = values["intercept"][None, :] + values["intercept_sd"] * values["intercept_z"]
    mu = np.column_stack([values["mu_x1"], values["mu_x2"]])  # (K, P)
    beta = mu[None] + values["tau"][None] * values["beta_z"]  # (A, K, P)
    mean = alpha[None] + np.einsum("tp,akp->tak", d.x, beta)
    sigma = values["sigma"][None, :, None]
    observed = np.isfinite(frame.Y.to_numpy()[frame.fit.to_numpy()])
    dens = stats.norm.logpdf(d.y[:, :, None], mean, sigma)
    by_hand = np.where(observed[:, :, None], dens, 0.0)
    np.testing.assert_allclose(log_lik, by_hand, rtol=1e-10, atol=1e-12)
    missing = ~observed
    assert missing.sum() == 2 * 20
    assert np.all(log_lik[missing] == 0.0)  # a missing month contributes exactly zero

    # the model's marginal likelihood is the forward filter on the (T, K) sum over assets
    joint = by_hand.sum(axis=1)
    P = values["P"]
    expected = hmm.forward_filter(log_init, np.log(P), joint).log_marginal
    stationary = hmm.stationary_distribution(P)
    np.testing.assert_allclose(np.exp(log_init), stationary, rtol=1e-10)
    potential = compile_function(model.free_RVs, model.potentials[0])(*args)
    np.testing.assert_allclose(potential, expected, rtol=1e-10)
    np.testing.assert_allclose(log_trans, np.log(P), rtol=1e-12)


def test_error_correction_form_matches_a_hand_computed_sum() -> None:
    """Δy = −speed (y[t−1] − anchor[t−1]) + Δx'γ + σε per asset; a month counts only where the
    asset is observed in it and the month before (a gap also drops the month after it)."""
    frame, _ = simulate_panel(7, n_months=50, late_by=15)
    gappy = frame.frame.copy()
    gappy.iloc[30, gappy.columns.get_loc("asset1")] = np.nan  # one hole: months 30 and 31 drop
    frame = dataclasses.replace(frame, frame=gappy)
    spec = ModelSpec(family="panel", options={"k_regimes": 2, "form": "ecm"}, name="t")
    fn, model, d = component_function(spec, frame)
    values = _fixed_values(model, np.random.default_rng(3))
    args = [values[rv.name] for rv in model.free_RVs]
    log_lik = fn(*args)[2]
    alpha = values["intercept"][None, :] + values["intercept_sd"] * values["intercept_z"]
    mu = np.column_stack([values["mu_x1"], values["mu_x2"]])
    beta = mu[None] + values["tau"][None] * values["beta_z"]
    anchor = alpha[None] + np.einsum("tp,akp->tak", d.x, beta)
    prev = d.y[:-1, :, None]
    mean = prev - values["speed"][None] * (prev - anchor[:-1])
    mean = mean + (np.diff(d.x, axis=0) @ values["gamma"].T)[:, :, None]
    obs = np.isfinite(frame.Y.to_numpy()[frame.fit.to_numpy()])
    scored = obs[1:] & obs[:-1]
    dens = stats.norm.logpdf(d.y[1:, :, None], mean, values["sigma"][None, :, None])
    np.testing.assert_allclose(log_lik, np.where(scored[:, :, None], dens, 0.0), rtol=1e-10)
    assert log_lik.shape == (49, 5, 2)
    assert np.all(log_lik[29:31, 1] == 0.0) and np.all(log_lik[:15, 3:] == 0.0)
    assert np.all(log_lik[15:, 3:] != 0.0)  # the first observed month is conditioned on

    # outputs: scored months start one month into the fit window
    tree = _point_tree(model, values)
    family = get_family("panel")
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    derived = family.derive(Fit(tree, frame, spec), q)
    derived = derived.merge(
        run_checks(family, Fit(tree, frame, spec), q)[1], combine_attrs="override"
    )
    assert check_derived(derived, require_run_attrs=False) == []
    ll = family.natural_log_likelihood(family.log_likelihood(Fit(tree, frame, spec)), frame, spec)
    assert ll["y"].sizes["time"] == 49 and np.isfinite(ll["y"].values).all()
    assert list(family.log_jacobian(frame, spec)["time"].values) == list(ll["time"].values)


def test_masked_values_never_reach_the_likelihood() -> None:
    """Whatever sits in the data container where an asset is missing, nothing changes."""
    import pymc as pm

    frame, _ = simulate_panel(2, n_months=48, late_by=12)
    spec = ModelSpec(family="panel", options={"k_regimes": 2}, name="t")
    fn, model, d = component_function(spec, frame)
    values = _fixed_values(model, np.random.default_rng(1))
    args = [values[rv.name] for rv in model.free_RVs]
    before = fn(*args)[2]
    assert (d.mask == 0).sum() == 2 * 12
    y = d.y.copy()
    y[d.mask == 0] = 1e6
    with model:
        pm.set_data({"y": y})
    np.testing.assert_array_equal(fn(*args)[2], before)
    y[d.mask == 1] += 1.0  # (while an observed value does change it)
    with model:
        pm.set_data({"y": y})
    assert not np.allclose(fn(*args)[2], before)


def test_independent_chains_sum_each_assets_own_marginal() -> None:
    frame, _ = simulate_panel(6, n_months=40, late_by=10)
    spec = ModelSpec(family="panel", options={"k_regimes": 2, "chain": "independent"}, name="t")
    fn, model, _ = component_function(spec, frame)
    values = _fixed_values(model, np.random.default_rng(2))
    stay = np.linspace(0.6, 0.95, 5)
    values["P"] = np.stack([[[p, 1 - p], [0.3, 0.7]] for p in stay])  # one matrix per asset
    args = [values[rv.name] for rv in model.free_RVs]
    log_init, log_trans, log_lik, *_ = fn(*args)
    assert log_init.shape == (5, 2) and log_trans.shape == (5, 2, 2)
    expected = sum(
        hmm.forward_filter(log_init[a], np.log(values["P"][a]), log_lik[:, a]).log_marginal
        for a in range(5)
    )
    potential = compile_function(model.free_RVs, model.potentials[0])(*args)
    np.testing.assert_allclose(potential, expected, rtol=1e-10)

    # outputs: the reference asset's chain as regime_prob, every asset's own beside it
    tree = _point_tree(model, values)
    family = get_family("panel")
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    derived = family.derive(Fit(tree, frame, spec), q)
    derived = derived.merge(
        run_checks(family, Fit(tree, frame, spec), q)[1], combine_attrs="override"
    )
    assert check_derived(derived, require_run_attrs=False) == []
    assert derived["regime_prob_asset"].dims == ("asset", "time", "regime")
    np.testing.assert_allclose(
        derived["regime_prob_asset"].sel(asset="asset0"), derived["regime_prob"], rtol=1e-12
    )


def test_asset_factors_drop_terms_from_an_asset() -> None:
    frame, _ = simulate_panel(3, n_months=40, late_assets=0)
    frame = dataclasses.replace(frame, asset_factors={"asset2": ("x2",)})
    d = panel_data(frame, {"k_regimes": 2})
    np.testing.assert_array_equal(d.term_mask[2], [0.0, 1.0])
    assert d.term_mask[[0, 1, 3, 4]].all()


def test_order_by_must_be_an_anchor_term() -> None:
    frame, _ = simulate_panel(4, n_months=30)
    with pytest.raises(ConfigError, match=r"options\.order_by"):
        panel_data(frame, {"k_regimes": 2, "order_by": "nope"})


# ------------------------------------------------------------------ regime-specific anchor sets

ANCHORS = {
    "k_regimes": 2,
    "regime_names": ["on_x1", "on_x2"],
    "anchors": {"on_x1": ["x1"], "on_x2": ["x2"]},
}
SETS = np.array([[1.0, 0.0], [0.0, 1.0]])  # (regime, term) of ANCHORS


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({**ANCHORS, "anchors": {"on_x1": ["x1"], "on_x2": ["debt"]}}, r"options\.anchors\.on_x2"),
        ({**ANCHORS, "anchors": {"on_x1": ["x1"], "on_x2": []}}, r"\['x2'\] price no regime"),
    ],
)
def test_anchor_sets_name_unknown_and_unused_terms(options: dict, named: str) -> None:
    frame, _ = simulate_panel(4, n_months=30)
    with pytest.raises(ConfigError, match=named):
        panel_data(frame, options)


def test_anchor_sets_need_regime_names() -> None:
    with pytest.raises(ValueError, match="regime_names"):
        Options(k_regimes=2, anchors={"a": ["x1"], "b": ["x2"]})
    assert not Options.model_validate(ANCHORS).ordered  # told apart by their sets
    same = {**ANCHORS, "anchors": {"on_x1": ["x1", "x2"], "on_x2": ["x1", "x2"]}}
    assert Options.model_validate(same).ordered  # identical sets: ordered by intercept
    with pytest.raises(ValueError, match="order the regimes by 'intercept'"):
        Options.model_validate({**same, "order_by": "x1"})


@pytest.mark.parametrize("form", ["level", "ecm"])
def test_a_term_outside_a_regimes_anchor_set_is_structurally_zero(form: str) -> None:
    """No parameter exists for a (regime, term) pair outside the sets; β is exactly zero there
    and the log density is the hand-computed one with those slopes zero."""
    frame, _ = simulate_panel(9, n_months=50, late_by=15, regime_mask=SETS)
    spec = ModelSpec(family="panel", options={**ANCHORS, "form": form}, name="t")
    fn, model, d = component_function(spec, frame)
    free = {
        rv.name: model.initial_point()[model.rvs_to_values[rv].name].shape for rv in model.free_RVs
    }
    assert free["mu_anchor"] == (2,) and free["beta_z"] == (5, 2)
    assert not any(name.startswith("mu_x") for name in free)
    values = _fixed_values(model, np.random.default_rng(5))
    args = [values[rv.name] for rv in model.free_RVs]
    log_lik = fn(*args)[2]
    beta_fn = compile_function(model.free_RVs, model["beta"])
    beta = beta_fn(*args)
    assert np.all(beta[:, 0, 1] == 0.0) and np.all(beta[:, 1, 0] == 0.0)
    # by hand: regime 0 priced by x1 alone, regime 1 by x2 alone
    alpha = values["intercept"][None, :] + values["intercept_sd"] * values["intercept_z"]
    mu, tau, z = values["mu_anchor"], values["tau_anchor"], values["beta_z"]
    slope = mu[None] + tau[None] * z  # (A, pair): on_x1:x1, on_x2:x2
    anchor = alpha[None] + np.stack(
        [d.x[:, :1] * slope[None, :, 0], d.x[:, 1:] * slope[None, :, 1]], -1
    )
    sigma = values["sigma"][None, :, None]
    obs = np.isfinite(frame.Y.to_numpy()[frame.fit.to_numpy()])
    if form == "ecm":
        prev = d.y[:-1, :, None]
        mean = prev - values["speed"][None] * (prev - anchor[:-1])
        mean = mean + (np.diff(d.x, axis=0) @ values["gamma"].T)[:, :, None]
        y, scored = d.y[1:], obs[1:] & obs[:-1]
    else:
        mean, y, scored = anchor, d.y, obs
    dens = stats.norm.logpdf(y[:, :, None], mean, sigma)
    np.testing.assert_allclose(log_lik, np.where(scored[:, :, None], dens, 0.0), rtol=1e-10)


def test_anchor_sets_at_the_truth_recover_regimes_and_leave_absent_terms_out() -> None:
    """At the true parameters of a panel simulated with regime-specific anchor sets, the shared
    chain's regimes come back, and `coef`/`coef_pop` are NaN (not zero) outside the sets."""
    frame, truth = simulate_panel(
        12, n_months=200, late_by=60, n_after=3, sigma=0.03, regime_mask=SETS
    )
    spec = ModelSpec(family="panel", options=ANCHORS, name="t")
    _, model, d = component_function(spec, frame)
    y_mean, y_sd = moments(d)
    sd = y_sd[:, None]
    shift = (np.log(np.linspace(20, 2000, 5)) - y_mean)[:, None]
    x_sd = np.array([d.scaling.x_sd["x1"], d.scaling.x_sd["x2"]])
    x_mean = np.array([d.scaling.x_mean["x1"], d.scaling.x_mean["x2"]])
    beta_std = truth.beta * x_sd[None, None] / sd[:, :, None]  # per standardised x, std y
    alpha_std = (truth.alpha + shift + np.einsum("akp,p->ak", truth.beta, x_mean)) / sd
    pairs = [(0, 0), (1, 1)]
    slope = np.stack([beta_std[:, k, p] for k, p in pairs], axis=1)  # (A, pair)
    mu = slope.mean(axis=0)
    tau = slope.std(axis=0) + 1e-3
    a_pop = alpha_std.mean(axis=0)
    a_sd = alpha_std.std(axis=0).mean() + 1e-3
    values = {
        "intercept": a_pop,
        "intercept_sd": np.full(2, a_sd),
        "intercept_z": (alpha_std - a_pop) / a_sd,
        "mu_anchor": mu,
        "tau_anchor": tau,
        "beta_z": (slope - mu) / tau,
        "sigma": truth.sigma / y_sd,
        "P": np.array([[0.98, 0.02], [0.02, 0.98]]),
    }
    tree = _point_tree(model, {rv.name: values[rv.name] for rv in model.free_RVs})
    derived = get_family("panel").derive(Fit(tree, frame, spec), [0.05, 0.5, 0.95])
    fit = frame.fit.to_numpy()
    prob = derived["regime_prob"].values[fit]
    assert np.mean(prob.argmax(axis=1) == truth.regimes) > 0.97
    coef = derived["coef"].sel(quantile=0.5)
    assert np.isnan(coef.sel(term="x2", regime="on_x1")).all()
    assert np.isnan(coef.sel(term="x1", regime="on_x2")).all()
    np.testing.assert_allclose(
        coef.sel(term="x1", regime="on_x1").values, truth.beta[:, 0, 0], rtol=1e-6
    )
    # each asset's price reverts to its regime's fair value while the regime holds (iid noise)
    check = regime_anchor_check(derived)["anchor_identified_by_regime"]
    assert check.dims == ("asset", "regime") and (check == 1).all(), check.attrs["notes"]
    assert check.attrs["notes"].startswith("asset0 on_x1: deviations revert")
    pop = derived["coef_pop"].sel(quantile=0.5)
    assert np.isnan(pop.sel(term="x2", regime="on_x1")) and np.isfinite(
        pop.sel(term="x1", regime="on_x1")
    )


# ------------------------------------------------------------------ outputs at known parameters


def _point_tree(model, values: dict[str, np.ndarray], n_draws: int = 4) -> xr.DataTree:
    """A 'posterior' that sits at the given values (every draw equal), with deterministics."""
    names = [rv.name for rv in model.free_RVs]
    dets = {v.name: v for v in model.deterministics}
    fn = compile_function(model.free_RVs, list(dets.values()))
    det_values = dict(zip(dets, fn(*[values[n] for n in names]), strict=True))
    data = {}
    for name, value in {**values, **det_values}.items():
        arr = np.broadcast_to(np.asarray(value), (1, n_draws, *np.shape(value)))
        dims = ("chain", "draw", *[f"{name}_dim_{i}" for i in range(np.ndim(value))])
        data[name] = (dims, np.array(arr))
    coords = {"chain": [0], "draw": np.arange(n_draws)}
    return xr.DataTree.from_dict({"posterior": xr.Dataset(data, coords=coords)})


def test_outputs_at_the_true_parameters_recover_the_regimes() -> None:
    frame, truth = simulate_panel(5, n_months=200, late_by=60, n_after=3, sigma=0.03)
    family = get_family("panel")
    spec = ModelSpec(family="panel", options={"k_regimes": 2, "order_by": "x1"}, name="t")
    _, model, d = component_function(spec, frame)
    # the truth on the model's standardised scale (log price standardised per asset)
    y_mean, y_sd = moments(d)
    sd = y_sd[:, None]
    shift = (np.log(np.linspace(20, 2000, 5)) - y_mean)[:, None]
    alpha = (truth.alpha + shift) / sd
    x_sd = np.array([d.scaling.x_sd["x1"], d.scaling.x_sd["x2"]])
    beta = truth.beta * x_sd / y_sd[:, None, None]
    values = {
        "intercept": alpha.mean(axis=0),
        "intercept_sd": np.full(2, 0.5),
        "intercept_z": (alpha - alpha.mean(axis=0)) / 0.5,
        "mu_x1": beta[:, :, 0].mean(axis=0),
        "mu_x2": beta[:, :, 1].mean(axis=0),
        "tau": np.full((2, 2), 0.1),
        "beta_z": (beta - beta.mean(axis=0)) / 0.1,
        "sigma": truth.sigma / y_sd,
        "P": np.array([[0.98, 0.02], [0.02, 0.98]]),
    }
    tree = _point_tree(model, {rv.name: values[rv.name] for rv in model.free_RVs})
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    derived = family.derive(Fit(tree, frame, spec), q)
    _, additions, _ = run_checks(family, Fit(tree, frame, spec), q)  # the reference asset's PPC
    derived = derived.merge(additions, combine_attrs="override")
    derived.attrs.update({a: 0 for a in ("experiment", "model", "family", "sample_start",
                                          "sample_end", "converged")})  # fmt: skip
    assert check_derived(derived) == []
    fit = frame.fit.to_numpy()
    prob = derived["regime_prob"].values[fit]
    assert np.mean(prob.argmax(axis=1) == truth.regimes) > 0.97
    # coefficients in natural units (log price per unit of the factor) are the true ones
    coef = derived["coef"].sel(quantile=0.5).transpose("asset", "regime", "term").values
    np.testing.assert_allclose(coef, truth.beta, rtol=1e-8)
    assert derived["asset_months"].values.tolist() == [200, 200, 200, 140, 140]
    # fair value of an asset before it is observed still exists; its price is missing
    assert np.isnan(derived["price"].sel(asset="asset4").values[:60]).all()
    assert np.isfinite(derived["fair_value"].sel(asset="asset4").values[:60]).all()
    # the schema checks the asset dimension (and still the single-asset dims without one)
    broken = derived.drop_vars("coef_pop")
    broken["price"] = broken["price"].transpose("time", "asset")
    broken.attrs.pop("reference_asset")
    problems = " | ".join(check_derived(broken))
    assert "missing variable 'coef_pop'" in problems and "'price' has dims" in problems
    assert "reference_asset" in problems
    single = derived.sel(asset="asset0", drop=True).drop_vars(["coef", "coef_std"])
    assert check_derived(single) == []
    single["fair_value"] = single["fair_value"].expand_dims(extra=1)
    assert any("'fair_value' has dims" in x for x in check_derived(single))
    # per-asset log densities: NaN exactly where the asset is missing
    ll = family.log_likelihood(Fit(tree, frame, spec))
    missing = np.isnan(ll["y_asset"].isel(chain=0, draw=0).values)
    np.testing.assert_array_equal(missing, ~np.isfinite(frame.Y.to_numpy()[fit]))


# ------------------------------------------------------------------ recovery by sampling


def _fit(frame, options: dict, draws: int, seed: int = 7):
    from regimes.config import Experiment
    from regimes.fit import fit_frame

    spec = ModelSpec(family="panel", options=options, name="sim")
    get_family("panel").validate_spec(spec, where="test")
    exp = Experiment.model_validate(
        {
            "name": "sim",
            "model": "sim",
            "data": {"target": frame.target, "start": "1990-01", "end": "2020-12"},
            "sampler": {"draws": draws, "tune": draws, "chains": 2, "seed": seed},
            "spec": spec,
        }
    )
    return exp, fit_frame(exp, frame, progress=False)


def test_short_run_recovers_the_shared_regimes() -> None:
    """A short run on 5 assets, T = 300, K = 2, two assets missing their first 100 months: the
    shared chain's regimes and the population real-rate-like sensitivity come back."""
    frame, truth = simulate_panel(21, n_months=300, k=2, late_by=100)
    options = {"k_regimes": 2, "order_by": "x1", "n_starts": 2, "sticky": 10.0}
    exp, tree = _fit(frame, options, draws=40)
    derived = get_family("panel").derive(Fit(tree, frame, exp.spec), [0.05, 0.25, 0.5, 0.75, 0.95])
    prob = derived["regime_prob"].values[frame.fit.to_numpy()]
    assert np.mean(prob.argmax(axis=1) == truth.regimes) > 0.9
    coef = derived["coef"].sel(quantile=0.5).transpose("asset", "regime", "term").values
    assert np.abs(coef - truth.beta).max() < 0.1  # log points per unit of the factor
    assert derived["asset_months"].values.tolist() == [300, 300, 300, 200, 200]


@pytest.mark.validation  # 1-2.5 min each on 2 cores: outside CI's 15-minute budget
@pytest.mark.parametrize("k", [2, 3])
def test_recovery_on_a_simulated_panel(k: int) -> None:
    """5 assets, T = 300, two of them missing their first 100 months: the shared chain's
    regimes and each asset's sensitivities come back."""
    frame, truth = simulate_panel(11 + k, n_months=300, k=k, late_by=100)
    options = {"k_regimes": k, "order_by": "x1", "n_starts": 4, "sticky": 10.0}
    exp, tree = _fit(frame, options, draws=300)
    derived = get_family("panel").derive(Fit(tree, frame, exp.spec), [0.05, 0.25, 0.5, 0.75, 0.95])
    prob = derived["regime_prob"].values[frame.fit.to_numpy()]
    assert np.mean(prob.argmax(axis=1) == truth.regimes) > 0.9
    coef = derived["coef"].transpose("asset", "regime", "term", "quantile")
    inside = (coef.sel(quantile=0.05).values <= truth.beta) & (
        truth.beta <= coef.sel(quantile=0.95).values
    )
    assert inside.mean() > 0.75


@pytest.mark.slow  # ~15-30 s of JAX compilation: kept out of the fast default run
def test_one_compiled_log_density_fits_panels_with_other_gaps() -> None:
    """Observations and masks are `pm.Data`: the log density compiled once to JAX for one panel
    equals PyMC's own for another panel of the same shapes with other missing months (PyMC's
    graph through PyTensor's JAX backend: its C and Python backends take about a minute to
    compile this scan)."""
    from regimes import compiled

    spec = ModelSpec(family="panel", options={"k_regimes": 2, "form": "ecm"}, name="t")
    family = get_family("panel")
    first, _ = simulate_panel(8, n_months=36, late_by=10)
    other, _ = simulate_panel(9, n_months=36, late_by=20)
    model = family.build(spec, first)
    cm = compiled.CompiledModel.from_model(model)
    fn = cm.logp_and_grad()
    rng = np.random.default_rng(4)
    for frame in (first, other):
        m = family.build(spec, frame)
        logp_fn = compile_function(m.value_vars, m.logp())
        start = m.initial_point()
        for _ in range(2):
            point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in start.items()}
            x = np.concatenate([np.ravel(point[name]) for name in cm.value_names])
            value, _ = fn(x, cm.data_of(m))
            reference = logp_fn(*[point[v.name] for v in m.value_vars])
            np.testing.assert_allclose(float(value), float(reference), rtol=1e-9)


def test_lfo_scores_one_assets_own_density() -> None:
    """`lfo.score(..., asset=A)`: a panel run's natural-scale density of asset A's own month given
    every asset's past (`y_asset`), not the joint density of all assets, so a panel can be ranked
    against single-asset models of A; an asset the panel does not hold is named."""
    from types import SimpleNamespace

    from regimes.lfo import LFOError, score, scored_asset

    frame, _ = simulate_panel(4, n_months=40, late_by=10)
    spec = ModelSpec(family="panel", options={"k_regimes": 2}, name="t")
    _, model, _ = component_function(spec, frame)
    tree = _point_tree(model, _fixed_values(model, np.random.default_rng(5)))
    family = get_family("panel")
    ll = family.natural_log_likelihood(family.log_likelihood(Fit(tree, frame, spec)), frame, spec)
    run = SimpleNamespace(spec=spec)
    own = score(run, tree, frame, "asset0")
    np.testing.assert_allclose(own.values, ll["y_asset"].sel(asset="asset0").values)
    joint = score(run, tree, frame)
    np.testing.assert_allclose(joint.values, ll["y"].values)
    assert np.all(own.values > joint.values)  # one asset's density, not five assets' joint one
    late = score(run, tree, frame, "asset4")  # missing its first 10 months: not scored there
    assert np.isnan(late.values[..., :10]).all() and np.isfinite(late.values[..., 10:]).all()
    panel = SimpleNamespace(name="p", data=SimpleNamespace(assets=["asset0", "asset1"]))
    single = SimpleNamespace(name="s", data=SimpleNamespace(assets=[]))
    assert scored_asset(panel, "asset1") == "asset1" and scored_asset(single, "asset1") is None
    with pytest.raises(LFOError, match="'gold' is not one of the panel's assets"):
        scored_asset(panel, "gold")


def test_correlated_shocks_match_a_multivariate_normal_by_hand() -> None:
    """noise = "factor": each month's joint log density of the observed assets (missing ones
    dropped) equals a multivariate Normal with covariance diag(σ)(diag(1 − ρ²) + ρρ')diag(σ);
    each asset's own density stays its Normal marginal; and the filter runs on the joint."""
    frame, _ = simulate_panel(3, n_months=40, late_by=12)
    spec = ModelSpec(family="panel", options={"k_regimes": 2, "noise": "factor"}, name="t")
    fn, model, _ = component_function(spec, frame)
    values = _fixed_values(model, np.random.default_rng(4))
    values["shock_loading_ref"] = np.array(0.8)
    values["shock_loading"] = np.array([0.7, 0.6, 0.3, -0.2])
    args = [values[rv.name] for rv in model.free_RVs]
    out = fn(*args)
    e, sig, per_series, joint = out[4], out[5], out[2], out[8]  # (n, A, J), (A, J), ..., (n, J)
    rho = np.array([0.8, 0.7, 0.6, 0.3, -0.2])
    corr = np.diag(1 - rho**2) + np.outer(rho, rho)
    observed = np.isfinite(frame.Y.to_numpy()[frame.fit.to_numpy()])
    for t in (0, 5, 20, 39):  # months with and without the late assets
        seen = observed[t]
        for j in range(2):
            cov = np.outer(sig[:, j], sig[:, j]) * corr
            expected = stats.multivariate_normal.logpdf(e[t, seen, j], cov=cov[np.ix_(seen, seen)])
            np.testing.assert_allclose(joint[t, j], expected, rtol=1e-10)
            marginal = stats.norm.logpdf(e[t, seen, j], scale=sig[seen, j])
            np.testing.assert_allclose(per_series[t, seen, j], marginal, rtol=1e-10)
    # the model's likelihood is the filter on the joint, not on the sum of the marginals
    expected = hmm.forward_filter(out[0], out[1], joint).log_marginal
    potential = compile_function(model.free_RVs, model.potentials[0])(*args)
    np.testing.assert_allclose(potential, expected, rtol=1e-10)
    assert (
        abs(expected - hmm.forward_filter(out[0], out[1], per_series.sum(axis=1)).log_marginal) > 1
    )
