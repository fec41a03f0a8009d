"""The loadings form (regimes that switch how the target moves with its drivers' changes each
month), regimes told apart by declared signs, and the date of the current spell read from
sampled paths: the density against a hand computation, the signs in every draw, and a planted
switch found by the dating code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regimes.config import Experiment
from regimes.dataset import FitFrame
from regimes.families import get_family
from regimes.families.base import Fit
from regimes.fit import fit_frame
from regimes.spec import ModelSpec
from regimes.spells import current_spell_starts, spell_start_probability, spell_start_quantiles

NAMES = ["rate_anchor", "fiscal_anchor"]
SIGNS = {"rate_anchor": {"rate": "negative"}, "fiscal_anchor": {"rate": "positive", "fiscal": "positive"}}  # fmt: skip
OPTIONS = {"k_regimes": 2, "regime_names": NAMES, "form": "loadings", "signs": SIGNS,
           "transform": "log", "sticky": 30.0, "n_starts": 4}  # fmt: skip


def frame_of(n: int = 120, seed: int = 0) -> FitFrame:
    rng = np.random.default_rng(seed)
    rate = np.cumsum(rng.normal(0, 0.2, n))
    fiscal = np.cumsum(rng.normal(0, 0.2, n))
    y = np.exp(5.0 + np.cumsum(rng.normal(0, 0.03, n)))
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    frame = pd.DataFrame({"y": y, "rate": rate, "fiscal": fiscal}, index=index)
    return FitFrame("y", ("rate", "fiscal"), frame, pd.Series(True, index=index, name="in_sample"))


def spec() -> ModelSpec:
    return ModelSpec(name="loadings", family="markov", options=OPTIONS)


def test_loadings_density_matches_a_hand_computation() -> None:
    frame = frame_of(40)
    family = get_family("markov")
    fn, owner, built = family.compiled(spec(), frame)
    names = [rv.name for rv in owner.free_RVs]
    assert "beta_signed" in names and "beta_free" in names  # rate in both, fiscal in one set
    values = {
        "intercept": np.array([0.1, -0.2]),
        "beta_signed": np.array([0.7, 0.2, 0.5]),  # rate_anchor:rate, fiscal:rate, fiscal:fiscal
        "beta_free": np.array([0.3]),  # rate_anchor:fiscal
        "sigma": np.array(0.4),
        "P": np.array([[0.95, 0.05], [0.1, 0.9]]),
    }
    out = fn(*[values[n] for n in names])
    beta = out[7][0]  # (K, P): the signs applied
    np.testing.assert_allclose(beta, [[-0.7, 0.3], [0.2, 0.5]])
    s = built.data.scaling
    y = s.target(frame.y.to_numpy())
    x = s.factors(frame.X.to_numpy(), ["rate", "fiscal"])
    dy, dx = np.diff(y), np.diff(x, axis=0)
    for k in range(2):
        mean = values["intercept"][k] + dx @ beta[k]
        expected = stats.norm.logpdf(dy, mean, 0.4)
        np.testing.assert_allclose(out[2][:, 0, k], expected, rtol=1e-10)


def test_signs_must_tell_the_regimes_apart() -> None:
    from pydantic import ValidationError

    same = {"rate_anchor": {"rate": "negative"}, "fiscal_anchor": {"rate": "negative"}}
    with pytest.raises(ValidationError, match="differ"):
        get_family("markov").options(
            ModelSpec(name="s", family="markov", options={**OPTIONS, "signs": same})
        )
    with pytest.raises(ValidationError, match="form = 'loadings'"):
        get_family("markov").options(
            ModelSpec(name="s", family="markov", options={**OPTIONS, "form": "level"})
        )


def test_spell_starts_from_paths() -> None:
    paths = np.array([[0, 0, 1, 1, 1], [0, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(current_spell_starts(paths), [2, 2, 0, 4])
    prob = spell_start_probability(paths, 2)
    assert prob.sum() == pytest.approx(1.0)
    assert prob[2, 1] == prob[2, 0] == prob[0, 1] == prob[4, 1] == 0.25
    time = pd.date_range("2000-01-01", periods=5, freq="MS")
    dates = spell_start_quantiles(prob, time, np.array([0.5]))
    assert dates[0, 0] == time[2]  # the one path ending in regime 0 began at t = 2


@pytest.mark.slow
def test_a_planted_switch_is_dated_from_the_draws() -> None:
    """Data simulated from the loadings model with the rate anchor until month 80 and the fiscal
    anchor after it: the fit puts most of the current spell's start mass within 6 months of the
    switch, in the fiscal regime, and the signs hold in every draw."""
    frame = frame_of(120, seed=4)
    family = get_family("markov")
    params = {
        "intercept": np.array([0.0, 0.05]),
        "beta_signed": np.array([1.2, 0.1, 1.0]),
        "beta_free": np.array([0.0]),
        "sigma": np.array(0.35),
        "P": np.array([[0.98, 0.02], [0.02, 0.98]]),
    }
    path = (np.arange(120) >= 80).astype(int)
    sim = family.simulate(spec(), frame, params, np.random.default_rng(1), {"regime": path})
    np.testing.assert_array_equal(sim.latent["regime"], path)
    exp = Experiment.model_validate({
        "name": "planted", "model": "loadings",
        "data": {"target": "y", "factors": ["rate", "fiscal"], "start": "2000-01", "end": "2009-12"},
        "sampler": {"draws": 300, "tune": 300, "chains": 2, "seed": 2}, "spec": spec(),
    })  # fmt: skip
    tree = fit_frame(exp, sim.frame, progress=False, log_likelihood=False)
    beta = tree["posterior"]["beta_switch"].values.reshape(-1, 2, 2)
    assert (beta[:, 0, 0] < 0).all() and (beta[:, 1, 0] > 0).all() and (beta[:, 1, 1] > 0).all()
    derived = family.derive(Fit(tree, sim.frame, spec()), [0.05, 0.5, 0.95])
    prob = derived["spell_start_prob"].sel(regime="fiscal_anchor").values
    near = prob[74:87].sum()  # months 74..86: the switch at 80 ± 6
    assert near > 0.6, (near, prob.sum())
    start = pd.Timestamp(derived["spell_start"].sel(regime="fiscal_anchor", quantile=0.5).values)
    assert abs((start - frame.time[80]).days) < 200
