"""Regime-specific anchor sets and short-run lags of the error-correction form (issue 15, items 1
and 3): options are validated with messages that name the key; a term outside a regime's anchor
set is structurally zero (not a parameter); on simulated data where the regimes differ *only* in
which factor prices the target, the anchor-set model recovers the path and the slopes; the lagged
changes of the error-correction form recover a known ψ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from regimes.config import ModelSpec, SamplerSection
from regimes.dataset import FitFrame
from regimes.families import markov
from regimes.families.base import Fit
from regimes.families.markov.options import Options
from regimes.graphs import compile_function
from regimes.sampling import sample

ANCHORS = {"rate_anchor": ["x1"], "fiscal_anchor": ["x2"]}
NAMES = ["rate_anchor", "fiscal_anchor"]
SAMPLER = SamplerSection(draws=300, tune=300, chains=2, seed=11, backend="auto")


def frame_of(columns: dict[str, np.ndarray], target: str = "y") -> FitFrame:
    """A monthly FitFrame with every month in the fit window."""
    index = pd.date_range("1990-01-01", periods=len(columns[target]), freq="MS")
    factors = tuple(c for c in columns if c != target)
    return FitFrame(target, factors, pd.DataFrame(columns, index=index),
                    pd.Series(True, index=index), units="u")  # fmt: skip


def anchor_options(**extra) -> dict:
    return {"k_regimes": 2, "regime_names": NAMES, "anchors": ANCHORS, "switching": [], **extra}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k_regimes": 2, "anchors": ANCHORS}, "regime_names"),
        ({**anchor_options(), "anchors": {"rate_anchor": ["x1"]}}, "every regime"),
        ({**anchor_options(), "switching": ["x1"]}, "switching"),
        ({**anchor_options(), "anchors": {**ANCHORS, "rate_anchor": ["x1", "x1"]}}, "once"),
        ({"short_run_lags": 2}, "form = 'ecm'"),
    ],
)
def test_bad_anchor_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Options.model_validate(options)


def test_anchor_term_that_is_not_a_factor_names_the_key() -> None:
    frame = frame_of({"y": np.zeros(30), "x1": np.arange(30.0), "x2": np.ones(30)})
    options = {**anchor_options(), "anchors": {**ANCHORS, "fiscal_anchor": ["debt"]}}
    spec = ModelSpec(name="a", family="markov", options=options)
    with pytest.raises(Exception, match=r"options\.anchors\.fiscal_anchor.*debt"):
        markov.FAMILY.assemble(spec, frame)


def simulate_anchor_switch(seed: int = 3, t: int = 300):
    """Two regimes with the same level and noise, told apart only by which factor prices y."""
    rng = np.random.default_rng(seed)
    x1 = np.cumsum(rng.normal(0, 0.3, t))
    x2 = np.cumsum(rng.normal(0, 0.3, t))
    x1, x2 = (x1 - x1.mean()) / x1.std(), (x2 - x2.mean()) / x2.std()
    s = np.zeros(t, dtype=int)
    for i in range(1, t):
        stay = 0.97
        s[i] = s[i - 1] if rng.random() < stay else 1 - s[i - 1]
    y = 1.0 + np.where(s == 0, 0.8 * x1, -0.8 * x2) + rng.normal(0, 0.15, t)
    return frame_of({"y": y, "x1": x1, "x2": x2}), s


def test_absent_terms_are_structural_zeros_and_the_path_is_recovered() -> None:
    frame, s = simulate_anchor_switch()
    spec = ModelSpec(name="anchors", family="markov", options=anchor_options())
    model = markov.FAMILY.build(spec, frame)
    free = {rv.name for rv in model.free_RVs}
    assert "beta_anchor" in free and not any(n.startswith("beta_x") for n in free)
    assert list(model.coords["anchor_coef"]) == ["rate_anchor:x1", "fiscal_anchor:x2"]
    tree = sample(model, SAMPLER, progress=False, init="multistart", n_starts=4)
    beta = np.asarray(tree["posterior"]["beta_switch"].values).reshape(-1, 2, 2)
    assert np.all(beta[:, 0, 1] == 0.0) and np.all(beta[:, 1, 0] == 0.0)  # by structure
    slope = np.asarray(tree["posterior"]["beta_anchor"].values).reshape(-1, 2)
    natural = frame.scaling("level").slope(slope, ["x1", "x2"])
    lo, hi = np.quantile(natural, [0.05, 0.95], axis=0)
    assert np.all((lo < [0.8, -0.8]) & (hi > [0.8, -0.8])), (lo, hi)
    derived = markov.FAMILY.derive(Fit(tree, frame, spec), [0.05, 0.5, 0.95])
    prob_fiscal = derived["regime_prob"].sel(regime="fiscal_anchor").values
    assert ((prob_fiscal > 0.5) == (s == 1)).mean() > 0.9


def test_short_run_lags_recover_psi() -> None:
    """Δy_t = −0.2 (y_{t−1} − x_{t−1}) + 0.4 Δy_{t−1} + 0.1 ε: ψ within its 90% interval."""
    rng = np.random.default_rng(5)
    t = 400
    x = np.cumsum(rng.normal(0, 0.2, t))
    y = np.zeros(t)
    y[:2] = x[:2]
    for i in range(2, t):
        dy = -0.2 * (y[i - 1] - x[i - 1]) + 0.4 * (y[i - 1] - y[i - 2]) + rng.normal(0, 0.1)
        y[i] = y[i - 1] + dy
    frame = frame_of({"y": y, "x": x})
    options = {"k_regimes": 1, "form": "ecm", "short_run_lags": 1}
    spec = ModelSpec(name="sr", family="markov", options=options)
    model = markov.FAMILY.build(spec, frame)
    assert Options.model_validate(options).n_conditioning == 2
    tree = sample(model, SAMPLER, progress=False, init="multistart", n_starts=2)
    psi = np.asarray(tree["posterior"]["psi"].values).ravel()
    lo, hi = np.quantile(psi, [0.05, 0.95])
    assert lo < 0.4 < hi and hi - lo < 0.4, (lo, hi)
    ll = markov.FAMILY.log_likelihood(Fit(tree, frame, spec))
    assert ll.sizes["time"] == t - 2  # the first two months are conditioned on


def simulate_factorial(seed: int = 8, t: int = 360, slope: float = 0.8, scales=(0.08, 0.35)):
    """Anchor regimes (which factor prices y, with |slope|) and volatility regimes (noise sd
    `scales`) switching independently."""
    rng = np.random.default_rng(seed)
    x1 = np.cumsum(rng.normal(0, 0.3, t))
    x2 = np.cumsum(rng.normal(0, 0.3, t))
    x1, x2 = (x1 - x1.mean()) / x1.std(), (x2 - x2.mean()) / x2.std()
    anchor, vol = np.zeros(t, dtype=int), np.zeros(t, dtype=int)
    for i in range(1, t):
        anchor[i] = anchor[i - 1] if rng.random() < 0.98 else 1 - anchor[i - 1]
        vol[i] = vol[i - 1] if rng.random() < 0.95 else 1 - vol[i - 1]
    noise = np.where(vol == 0, scales[0], scales[1]) * rng.standard_normal(t)
    y = 1.0 + np.where(anchor == 0, slope * x1, -slope * x2) + noise
    return frame_of({"y": y, "x1": x1, "x2": x2}), anchor, vol


def test_factorial_chains_recover_anchor_and_volatility_paths() -> None:
    frame, anchor, vol = simulate_factorial()
    options = anchor_options(volatility_regimes=2)
    spec = ModelSpec(name="factorial", family="markov", options=options)
    model = markov.FAMILY.build(spec, frame)
    assert list(model.coords["volatility"]) == ["calm", "turbulent"]
    tree = sample(model, SAMPLER, progress=False, init="multistart", n_starts=4)
    sigma = np.asarray(tree["posterior"]["sigma"].values).reshape(-1, 2)
    lo, hi = np.quantile(sigma * frame.scaling("level").y_sd_of(), [0.01, 0.99], axis=0)
    assert np.all((lo < [0.08, 0.35]) & (hi > [0.08, 0.35])), (lo, hi)
    derived = markov.FAMILY.derive(Fit(tree, frame, spec), [0.05, 0.5, 0.95])
    fiscal = derived["regime_prob"].sel(regime="fiscal_anchor").values
    turbulent = derived["volatility_prob"].sel(volatility="turbulent").values
    assert ((fiscal > 0.5) == (anchor == 1)).mean() > 0.9
    assert ((turbulent > 0.5) == (vol == 1)).mean() > 0.85


@pytest.mark.parametrize("form", ["level", "ecm"])
def test_volatility_chain_with_equal_scales_is_the_single_chain(form: str) -> None:
    """With both volatility regimes at the same σ, the product chain's likelihood equals the
    anchor chain's alone, whatever P_volatility: a check of the Kronecker construction."""
    frame, _, _ = simulate_factorial(t=80)
    extra = {"form": form, "short_run_lags": 1} if form == "ecm" else {}
    values = {"intercept": 0.3, "beta_anchor": np.array([0.5, -0.4]),
              "P": np.array([[0.9, 0.1], [0.2, 0.8]]), "speed": np.array([0.3, 0.1]),
              "gamma": np.array([0.1, -0.1]), "psi": np.array([0.2])}  # fmt: skip

    def loglik_fn(options: dict):
        spec = ModelSpec(name="v", family="markov", options=options)
        model = markov.FAMILY.build(spec, frame)
        fn = compile_function(model.free_RVs, model["hmm_loglik"])

        def at(sigma, **more) -> float:
            point = {**values, "sigma": sigma, **more}
            return float(fn(*[point[rv.name] for rv in model.free_RVs]))

        return at

    single = loglik_fn(anchor_options(**extra))(0.5)
    product = loglik_fn(anchor_options(volatility_regimes=2, **extra))
    pv = np.array([[0.7, 0.3], [0.4, 0.6]])
    both = product(np.array([0.5, 0.5]), P_volatility=pv)
    assert np.isfinite(single) and both == pytest.approx(single, rel=1e-9)
    assert product(np.array([0.3, 0.9]), P_volatility=pv) != pytest.approx(single, rel=1e-6)
