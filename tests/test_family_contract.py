"""The contract every model family passes: build → tiny sample → derive → posterior predictive
check → one leave-future-out refit → a forecast, with `derived.nc` checked against the declared
schema (`regimes.families.schema`). Every registered family and every Markov structure
(constant, covariate-driven, change point) and form (level, AR, error correction) runs here, and
so does the example family of docs/adding-a-family.md, built from the doc's own code; a new
family is done when it passes this test.

The posteriors are tiny (2 chains × 40 draws): this checks shapes, names, units and that every
hook works together, not statistical quality (the recovery and SBC tests do that).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from doc_family import doc_module
from regimes.api import cf_attributes
from regimes.calibration import fit_simulation, scalar_names, scalars
from regimes.cf import cf_problems
from regimes.config import Experiment
from regimes.dataset import FitFrame
from regimes.families import family_names, get_family
from regimes.families.base import NATURAL_SCALE, Family, Fit
from regimes.families.schema import check_derived
from regimes.figures import reference_view
from regimes.fit import derive_checked, fit_frame
from regimes.forecast import held_scenario, scenario_draws
from regimes.lfo import lfo_frame
from regimes.results import write_netcdf
from regimes.spec import ModelSpec

N_FIT, N_AFTER = 60, 6  # fit-window months, then months with factors only (out of sample)

CASES: dict[str, tuple[str, dict]] = {
    "static": ("static", {"transform": "level", "errors": "ar1"}),
    "random_walk": ("random_walk", {"transform": "level", "rolling_window": 12}),
    "markov-constant-level": (
        "markov",
        {"k_regimes": 2, "switching": ["intercept", "x"], "n_starts": 2},
    ),
    "markov-constant-ar": ("markov", {"k_regimes": 2, "ar_order": 1, "n_starts": 2}),
    "markov-constant-ecm": (
        "markov",
        {"k_regimes": 2, "form": "ecm", "transform": "log", "n_starts": 2},
    ),
    "markov-student-t-level": ("markov", {"k_regimes": 2, "noise": "student_t", "n_starts": 2}),
    "markov-covariates-level": (
        "markov",
        {"k_regimes": 2, "transition": "covariates", "transition_covariates": ["z"], "n_starts": 2},
    ),
    "markov-changepoint-ecm": (
        "markov",
        {"k_regimes": 2, "transition": "changepoint", "form": "ecm", "n_starts": 2},
    ),
    "markov-breaks-level": (
        "markov",
        {"k_regimes": 2, "transition": "breaks", "switching_variance": True, "n_starts": 2},
    ),
    "markov-anchors-volatility-ecm": (
        "markov",
        {
            "k_regimes": 2,
            "regime_names": ["on_x", "off_x"],
            "anchors": {"on_x": ["x"], "off_x": []},
            "switching": [],
            "form": "ecm",
            "transform": "log",
            "volatility_regimes": 2,
            "short_run_lags": 1,
            "n_starts": 2,
        },
    ),
    "markov-signed-loadings-volatility": (
        "markov",
        {
            "k_regimes": 2,
            "regime_names": ["down_x", "up_x"],
            "form": "loadings",
            "signs": {"down_x": {"x": "negative"}, "up_x": {"x": "positive"}},
            "volatility_regimes": 2,
            "transform": "log",
            "n_starts": 2,
        },
    ),
    "panel-shared-level": (
        "panel",
        {"k_regimes": 2, "order_by": "x", "noise": "factor", "n_starts": 2},
    ),
    "panel-anchors-ecm": (
        "panel",
        {
            "k_regimes": 2,
            "regime_names": ["on_x", "on_z"],
            "anchors": {"on_x": ["x"], "on_z": ["z"]},
            "form": "ecm",
            "n_starts": 2,
        },
    ),
    # the example family of docs/adding-a-family.md, built and registered by the doc's own code
    # (the simulated level shift is at 2003-10)
    "doc-known-break": ("known_break", {"transform": "level", "break_month": "2003-10"}),
}
DOC_FAMILY = doc_module().FAMILY


def test_every_registered_family_has_a_case() -> None:
    covered = {family for family, _ in CASES.values()}
    assert set(family_names()) <= covered, (
        f"add a contract case for {set(family_names()) - covered}"
    )


def simulated_frame(seed: int = 0) -> FitFrame:
    """A positive target with a level shift half way, one anchor factor x and one covariate z;
    the last N_AFTER months have factors but lie outside the fit window."""
    rng = np.random.default_rng(seed)
    n = N_FIT + N_AFTER
    x = np.cumsum(rng.normal(0, 0.3, n))
    z = np.sin(np.arange(n) / 6.0)
    regime = (np.arange(n) >= n // 2).astype(float)
    y = 50.0 + 3.0 * x + 6.0 * regime + rng.normal(0, 1.0, n)
    index = pd.date_range("2001-01-01", periods=n, freq="MS")
    fit = pd.Series(np.arange(n) < N_FIT, index=index, name="in_sample")
    frame = pd.DataFrame({"y": y, "x": x, "z": z}, index=index)
    attrs = {"fit_start": f"{index[0]:%Y-%m}", "fit_end": f"{index[N_FIT - 1]:%Y-%m}"}
    return FitFrame("y", ("x", "z"), frame, fit, units="u", attrs=attrs)


def panel_frame(seed: int = 0) -> FitFrame:
    """`simulated_frame` with two more assets sharing its regimes: `w` missing its first 12
    months and `v` anchored on `x` only (the target `y` is the reference asset)."""
    base = simulated_frame(seed)
    rng = np.random.default_rng(seed + 1)
    n = len(base.frame)
    frame = base.frame.copy()
    shift = (np.arange(n) >= n // 2).astype(float)
    frame["w"] = 20.0 + 1.5 * frame["x"] + 3.0 * shift + rng.normal(0, 0.5, n)
    frame["v"] = 80.0 - 2.0 * frame["x"] + 5.0 * shift + rng.normal(0, 1.0, n)
    frame.iloc[:12, frame.columns.get_loc("w")] = np.nan
    frame.iloc[N_FIT:, [frame.columns.get_loc("w"), frame.columns.get_loc("v")]] = np.nan
    return dataclasses.replace(
        base, frame=frame, assets=("y", "w", "v"), asset_factors={"v": ("x",)}
    )


# cases whose data are not `simulated_frame`'s (a panel of several assets)
FRAMES = {"panel-shared-level": panel_frame, "panel-anchors-ecm": panel_frame}


def assert_cf_on_disk(ds: xr.Dataset, path) -> None:
    """`ds` written as derived.nc and read back: no departure from the CF-style rules
    (`regimes.cf.cf_problems`), and cf_xarray finds the time axis and decodes every flag."""
    import cf_xarray  # noqa: F401  (registers the .cf accessor)

    write_netcdf(ds, path)
    with xr.open_dataset(path, engine="h5netcdf") as back:
        assert cf_problems(back) == []
        assert back.cf.axes["T"] == ["time"] and back.cf.standard_names["time"] == ["time"]
        flagged = [n for n in back.data_vars if back[n].cf.is_flag_variable]
        assert "in_sample" in flagged
        for name in flagged:
            for meaning in str(back[name].attrs["flag_meanings"]).split():
                _ = back[name].cf == meaning  # every meaning decodes
        assert (back["in_sample"].cf == "inside_fit_window").sum() == N_FIT
        if "regime" in back.dims:
            assert list(np.atleast_1d(back.attrs["regime_names"])) == list(back["regime"].values)
            assert back["most_likely_regime"].cf.is_flag_variable
        assert (
            back["expected_duration"].attrs["units"] == "months" if "regime" in back.dims else True
        )


def assert_arviz_ready(tree: xr.DataTree, frame: FitFrame, path) -> None:
    """observed_data beside posterior_predictive and log_likelihood (same name, months and
    natural units: the observations are the frame's own values, and the replicates sit around
    them), every natural-units parameter with units; then ArviZ's summary, LOO, PPC and LOO-PIT
    plots run on the file as written."""
    import arviz as az
    import matplotlib.pyplot as plt

    write_netcdf(tree, path)
    back = xr.open_datatree(path, engine="h5netcdf").load()
    obs, rep = back["observed_data"]["y"], back["posterior_predictive"]["y"]
    ll = back["log_likelihood"]["y"]
    assert obs.dims == ("time",) and rep.dims == ("chain", "draw", "time") == ll.dims
    np.testing.assert_array_equal(obs["time"].values, rep["time"].values)
    np.testing.assert_array_equal(obs["time"].values, ll["time"].values)
    np.testing.assert_allclose(obs.values, frame.y.reindex(obs["time"].values).to_numpy())
    assert obs.attrs["units"] == rep.attrs["units"] == frame.units
    gap = np.abs(rep.median(("chain", "draw")).values - obs.values)
    assert np.median(gap) < 3 * float(obs.std()), "replicates not on the observations' scale"
    for name in back["constant_data"].data_vars:  # every dimension named, none `*_dim_0`
        assert not any(str(d).endswith("_dim_0") for d in back["constant_data"][name].dims)
    natural = back["posterior_natural"].to_dataset()
    assert natural.data_vars and all("units" in v.attrs for v in natural.data_vars.values())
    table = az.summary(back, group="posterior_natural", fmt="xarray", round_to="none")
    assert np.isfinite(table.sel(summary="mean").to_array()).any()
    assert np.isfinite(az.loo(back, var_name="y").elpd)
    az.plot_ppc_dist(back, var_names=["y"])
    az.plot_loo_pit(back, var_names=["y"])
    plt.close("all")


def experiment(family: str, options: dict) -> Experiment:
    spec = ModelSpec(family=family, options=options, name="contract")
    get_family(family).validate_spec(spec, where="contract case")
    return Experiment.model_validate(
        {
            "name": "contract",
            "model": "contract",
            "data": {"target": "y", "factors": ["x", "z"], "start": "2001-01", "end": "2005-12"},
            "sampler": {"draws": 40, "tune": 40, "chains": 2, "seed": 3},
            "spec": spec,
        }
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_family_contract(case: str, tmp_path) -> None:
    family_name, options = CASES[case]
    family = get_family(family_name)
    assert isinstance(family, Family) and family.name == family_name
    exp = experiment(family_name, options)
    spec = exp.spec
    assert spec is not None
    frame = FRAMES.get(case, simulated_frame)()
    fit_time = frame.time[frame.fit.to_numpy()]

    # build and sample: a log-likelihood in natural units over (a suffix of) the fit window
    tree = fit_frame(exp, frame, progress=False)
    lp = tree["sample_stats"]["lp"].values  # every chain moves (a NaN gradient freezes it)
    assert all(len(np.unique(chain)) > lp.shape[1] // 4 for chain in lp), "a chain is stuck"
    ll = tree["log_likelihood"].to_dataset()
    assert ll.attrs["scale"] == NATURAL_SCALE
    y_ll = ll["y"] if "y" in ll else next(iter(ll.data_vars.values()))
    scored = pd.DatetimeIndex(y_ll["time"].values)
    assert scored.isin(fit_time).all() and scored[-1] == fit_time[-1]
    assert np.isfinite(y_ll.values).all()
    jac = family.log_jacobian(frame, spec)
    assert list(pd.DatetimeIndex(jac["time"].values)) == list(scored)

    # derive + posterior predictive check: the declared schema, values where they must be
    derived, verdict = derive_checked(exp, tree, frame)
    assert check_derived(derived) == []
    full, derived = derived, reference_view(derived)  # a panel: values at its reference asset
    assert list(pd.DatetimeIndex(derived["time"].values)) == list(frame.time)
    np.testing.assert_array_equal(derived["in_sample"].values, frame.fit.to_numpy().astype(int))
    np.testing.assert_allclose(derived["price"].values, frame.y.to_numpy())
    fv = derived["fair_value"]
    assert np.isfinite(fv.values).all()
    assert (fv.sel(quantile=0.05) <= fv.sel(quantile=0.95)).all()
    pit = derived["pit"].sel(time=scored)
    assert ((pit >= 0) & (pit <= 1)).all()
    assert (
        derived.attrs["ppc_ok"]
        == int(not derived.attrs["ppc_reasons"])
        == int(verdict["ppc"]["ok"])
    )
    assert tree["posterior_predictive"]["y"].sizes["time"] == len(scored)
    if "regime" in derived.dims:
        np.testing.assert_allclose(derived["regime_prob"].sum("regime"), 1.0, atol=1e-9)

    # posterior.nc as a run writes it, read back and used by ArviZ as its users would
    assert_arviz_ready(tree, frame, tmp_path / "posterior.nc")

    # derived.nc as a run writes it: CF-style attributes, read back by a CF parser (cf_xarray)
    assert_cf_on_disk(cf_attributes(exp, full, frame, []), tmp_path / "derived.nc")

    # the family's own figures are written where asked
    paths = family.figures(full, tmp_path, log_scale=False, source="simulated")
    assert all(p.is_file() and p.parent == tmp_path for p in paths)

    # one leave-future-out refit: fitted on all but the last fit month, scoring that month
    lfo = lfo_frame(exp, frame, min_train=len(fit_time) - 1, k_threshold=0.0)
    assert lfo.attrs["n_refits"] == 1
    assert np.isfinite(lfo["elpd"].values).all() and lfo.sizes["time"] == 1

    # a forecast along factors held at their last values
    horizon = 3
    draws = scenario_draws(tree, frame, spec, held_scenario(frame, horizon))
    assert isinstance(draws, xr.Dataset)
    assert draws["fair_value"].dims == ("sample", "time")
    assert draws.sizes["time"] == horizon and draws.sizes["sample"] == 80
    assert np.isfinite(draws["fair_value"].values).all()
    if "regime_prob" in draws:
        assert draws["regime_prob"].dims == ("sample", "time", "regime")
        np.testing.assert_allclose(draws["regime_prob"].sum("regime"), 1.0, atol=1e-9)
        mixed = (draws["regime_prob"] * draws["fair_value_by_regime"]).sum("regime")
        np.testing.assert_allclose(mixed, draws["fair_value"], rtol=1e-10)
    # in-sample fair value draws agree with derive's quantiles (one code path for both)
    fv_draws = family.fair_value_draws(Fit(tree, frame, spec))["fair_value"]
    np.testing.assert_allclose(
        fv_draws.quantile(0.5, dim="sample").values, fv.sel(quantile=0.5).values, rtol=1e-6
    )

    # simulate -> fit: data drawn from the model at a central posterior draw come back from a
    # fit by the run's own path (the same compiled model, scaling pinned to the frame's)
    model = family.build(spec, frame)
    assert_recovered(exp, frame, central_draw(tree, model), model)


def central_draw(tree, model) -> dict:
    """The posterior draw nearest the posterior median (in sd units over every free scalar): a
    typical parameter set, and a valid one (a simplex stays a simplex)."""
    post = tree["posterior"].to_dataset().stack(sample=("chain", "draw"))
    values = {rv.name: post[rv.name].transpose("sample", ...).values for rv in model.free_RVs}
    first = {n: v[0] for n, v in values.items()}
    flat = scalars(model, first, values)  # (sample, scalar)
    z = (flat - np.median(flat, axis=0)) / (flat.std(axis=0) + 1e-12)
    best = int(np.argmin((z**2).sum(axis=1)))
    return {n: v[best] for n, v in values.items()}


def assert_recovered(exp: Experiment, frame: FitFrame, truth: dict, model) -> None:
    """Every free scalar of `truth` within 4 posterior sd of the posterior mean of a fit to data
    simulated from it (tiny posteriors of 80 draws, seeded). A simulation on
    the wrong scale misses by tens of sd."""
    family = get_family(exp.spec.family)
    sim = family.simulate(exp.spec, frame, truth, np.random.default_rng(11))
    assert sim.frame.fixed_scaling is not None
    fit_time = frame.time[frame.fit.to_numpy()]
    assert np.isfinite(sim.frame.y.reindex(fit_time).to_numpy()).all()
    if "regime" in sim.latent:
        assert len(sim.latent["regime"]) == len(fit_time)
    # the contract fit's sampler settings: its compiled sampler is reused, nothing compiles
    fitted = fit_simulation(exp, frame, None, truth, sim)
    post = fitted.tree["posterior"]
    values = {
        rv.name: post[rv.name].transpose("chain", "draw", ...).values for rv in model.free_RVs
    }
    names = scalar_names(model, truth)
    draws = scalars(model, truth, values).reshape(-1, len(names))
    z = np.abs(scalars(model, truth, truth) - draws.mean(axis=0)) / (draws.std(axis=0) + 1e-9)
    missed = {n: round(float(v), 1) for n, v in zip(names, z, strict=True) if v > 4}
    assert not missed, missed
