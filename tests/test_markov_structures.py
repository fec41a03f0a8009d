"""Transition structures and forms of the Markov family: covariate-driven transitions (TVTP),
change points and the regime error-correction model, checked on simulated data.

TVTP is checked against statsmodels' MarkovRegression(exog_tvtp=...) maximum likelihood on the
same data: with vague priors, our posterior mode reaches the same log-likelihood and the same
monthly transition probabilities. Change points and the ECM are checked by recovering known
break dates and anchors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimes import hmm
from regimes.config import ModelSpec, PriorSpec, SamplerSection
from regimes.dataset import FitFrame
from regimes.errors import ConfigError
from regimes.families import markov
from regimes.families.base import Fit
from regimes.families.chain.derived import break_outputs
from regimes.sampling import multistart, sample

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


def frame_of(columns: dict[str, np.ndarray], target: str = "y") -> FitFrame:
    """A monthly FitFrame with every month in the fit window."""
    index = pd.date_range("1980-01-01", periods=len(columns[target]), freq="MS")
    frame = pd.DataFrame(columns, index=index)
    factors = tuple(c for c in columns if c != target)
    return FitFrame(target, factors, frame, pd.Series(True, index=index), units="u")


def spec_of(options: dict, priors: dict | None = None) -> ModelSpec:
    return ModelSpec(name="test", family="markov", options=options, priors=priors or {})


# ------------------------------------------------------------------ covariate-driven transitions


def simulate_tvtp(seed: int, t: int = 500):
    """Two regimes with means 0 and 2 (sd 0.6); staying probabilities move with covariate z_t,
    which governs the move from t to t+1 (known at t)."""
    rng = np.random.default_rng(seed)
    z = np.cumsum(rng.normal(0, 0.25, t))  # persistent covariate
    z = (z - z.mean()) / z.std()
    leave = np.stack([1 / (1 + np.exp(-(-3.0 + 1.5 * z))), 1 / (1 + np.exp(-(-2.5 - 1.5 * z)))])
    s = np.zeros(t, dtype=int)
    for i in range(1, t):
        s[i] = 1 - s[i - 1] if rng.random() < leave[s[i - 1], i - 1] else s[i - 1]
    y = np.array([0.0, 2.0])[s] + rng.normal(0, 0.6, t)
    return y, z, s


VAGUE = {
    "transition_bias": PriorSpec(dist="Normal", mu=0.0, sigma=20.0),
    "transition_coef": PriorSpec(dist="Normal", mu=0.0, sigma=20.0),
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=20.0),
    "sigma": PriorSpec(dist="HalfNormal", sigma=20.0),
}


def test_tvtp_mode_matches_statsmodels_mle() -> None:
    """Our optimum reaches statsmodels' maximum log-likelihood and the same P_t path."""
    sm = pytest.importorskip("statsmodels.api")
    y, z, _ = simulate_tvtp(3)
    frame = frame_of({"y": y, "z": z})
    spec = spec_of(
        {"k_regimes": 2, "transition": "covariates", "transition_covariates": ["z"]}, VAGUE
    )
    model = markov.FAMILY.build(spec, frame)
    best = multistart(model, 8, seed=1, compile_kwargs={"mode": "JAX"})["best"]
    fn, _, built = markov.FAMILY.compiled(spec, frame)
    model = built.model
    li, lt, ll, P_all = fn(*[best[rv.name] for rv in model.free_RVs])[:4]
    ll = ll.sum(axis=1)  # one series
    ours = float(hmm.forward_filter(li, lt, ll).log_marginal) - len(y) * np.log(
        built.data.scaling.y_sd_of()
    )

    # statsmodels: exog_tvtp[t] drives the move t-1 -> t; ours uses z_t for t -> t+1.
    exog = np.column_stack([np.ones_like(z), np.concatenate([[z[0]], z[:-1]])])
    res = sm.tsa.MarkovRegression(y, k_regimes=2, exog_tvtp=exog).fit(search_reps=20, disp=False)
    assert ours == pytest.approx(res.llf, abs=0.05), (ours, res.llf)
    sm_P = res.model.regime_transition_matrix(res.params, exog_tvtp=exog)  # (to, from, T)
    # our P_all[t] (from, to) moves t -> t+1: compare with statsmodels' matrix at t+1
    # our regimes are ordered by intercept; statsmodels' labels are arbitrary
    ours_stay = P_all[:-1, [0, 1], [0, 1]]
    sm_stay = np.stack([sm_P[0, 0, 1:], sm_P[1, 1, 1:]], axis=1)
    names = list(res.model.param_names)
    if res.params[names.index("const[0]")] > res.params[names.index("const[1]")]:
        sm_stay = sm_stay[:, ::-1]
    assert np.max(np.abs(ours_stay - sm_stay)) < 0.03


@pytest.mark.slow
def test_tvtp_recovers_covariate_effects() -> None:
    """Posterior of the covariate effects covers the truth and has the right signs."""
    y, z, s = simulate_tvtp(11, t=600)
    frame = frame_of({"y": y, "z": z})
    spec = spec_of({"k_regimes": 2, "transition": "covariates", "transition_covariates": ["z"]})
    tree = sample(
        markov.FAMILY.build(spec, frame),
        SamplerSection(draws=400, tune=400, chains=2, seed=5),
        progress=False,
        init="multistart",
        n_starts=8,
    )
    coef = np.asarray(tree["posterior"]["transition_coef"].values).reshape(
        -1, 2
    )  # moves 0->1, 1->0
    truth = np.array([1.5, -1.5])  # z is already standardised, so std-scale effects equal truth
    lo, hi = np.quantile(coef, [0.01, 0.99], axis=0)
    assert np.all((lo < truth) & (truth < hi)), (lo, hi)
    assert coef[:, 0].mean() > 0 > coef[:, 1].mean()
    derived = markov.FAMILY.derive(Fit(tree, frame, spec), QUANTILES)
    assert derived["expected_duration"].dims == ("time", "regime", "quantile")
    assert ((derived["regime_prob"].values.argmax(axis=1)) == s).mean() > 0.9


def test_tvtp_options_are_checked() -> None:
    with pytest.raises(ValueError, match="transition_covariates"):
        markov.Options.model_validate({"transition": "covariates"})
    frame = frame_of({"y": np.zeros(30), "z": np.arange(30.0)})
    spec = spec_of({"transition": "covariates", "transition_covariates": ["w"]})
    with pytest.raises(ConfigError, match=r"transition_covariates.*data\.factors"):
        markov.FAMILY.build(spec, frame)


# ------------------------------------------------------------------ change points


def test_break_outputs_from_left_to_right_probabilities() -> None:
    """break_prob is the increase of P(s_t >= m); break dates are read off its CDF."""
    prob = np.zeros((2, 5, 3))
    # draw 0: regime 0 until t=1, regime 1 at t=2..3, regime 2 at t=4; draw 1 breaks a month later
    prob[0, [0, 1], 0] = prob[0, [2, 3], 1] = prob[0, 4, 2] = 1.0
    prob[1, [0, 1, 2], 0] = prob[1, 3, 1] = prob[1, 4, 2] = 1.0
    time = pd.date_range("2000-01-01", periods=5, freq="MS")
    labels, at, dates = break_outputs(prob, ["a", "b", "c"], time, np.array([0.25, 0.75]))
    assert labels == ["a->b", "b->c"]
    np.testing.assert_allclose(at[:, 0], [0, 0, 0.5, 0.5, 0])
    np.testing.assert_allclose(at[:, 1], [0, 0, 0, 0, 1.0])
    assert list(pd.DatetimeIndex(dates[0])) == [time[2], time[3]]
    assert list(pd.DatetimeIndex(dates[1])) == [time[4], time[4]]


def test_changepoint_recovers_break_date() -> None:
    """A mean shift at month 120 of 200: the break date's 90% interval holds it and is narrow."""
    rng = np.random.default_rng(4)
    t, brk = 200, 120
    y = np.where(np.arange(t) < brk, 0.0, 1.5) + rng.normal(0, 1.0, t)
    frame = frame_of({"y": y})
    spec = spec_of(
        {"k_regimes": 2, "transition": "changepoint", "regime_names": ["before", "after"]}
    )
    tree = sample(
        markov.FAMILY.build(spec, frame),
        SamplerSection(draws=300, tune=300, chains=2, seed=3),
        progress=False,
        init="multistart",
        n_starts=6,
    )
    derived = markov.FAMILY.derive(Fit(tree, frame, spec), QUANTILES)
    assert derived["break_prob"].dims == ("time", "break")
    np.testing.assert_allclose(float(derived["break_prob"].sum()), 1.0, atol=1e-6)
    dates = pd.DatetimeIndex(derived["break_date"].sel(**{"break": "before->after"}).values)
    true_date = frame.time[brk]
    assert dates[0] <= true_date <= dates[-1], dates
    assert (dates[-1] - dates[0]).days < 20 * 31
    # left-to-right: regime probabilities never move back
    reached = derived["regime_prob"].sel(regime="after").values
    assert np.all(np.diff(reached) > -1e-9)


# ------------------------------------------------------------------ regime error correction


def simulate_ecm(seed: int, t: int = 400):
    """Δy = −speed_s (y_{t−1} − a_s − b_s x_{t−1}) + ε, regime 0 anchored on x (b = −1, fast),
    regime 1 on a different anchor (b = +1), the switch half-way through."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 0.3, t))
    s = (np.arange(t) >= t // 2).astype(int)
    a, b, speed = np.array([0.0, 1.0]), np.array([-1.0, 1.0]), np.array([0.3, 0.3])
    y = np.zeros(t)
    y[0] = a[0] + b[0] * x[0]
    for i in range(1, t):
        k = s[i]
        gap = y[i - 1] - (a[k] + b[k] * x[i - 1])
        y[i] = y[i - 1] - speed[k] * gap + rng.normal(0, 0.1)
    return y, x, s


def test_ecm_mode_recovers_regime_anchors() -> None:
    """The posterior mode of the regime ECM puts each regime's anchor slope near the truth."""
    y, x, _ = simulate_ecm(2)
    frame = frame_of({"y": y, "x": x})
    spec = spec_of(
        {
            "k_regimes": 2,
            "form": "ecm",
            "switching": ["intercept", "x"],
            "order_by": "x",
            "transition": "changepoint",
        }
    )
    model = markov.FAMILY.build(spec, frame)
    best = multistart(model, 8, seed=2, compile_kwargs={"mode": "JAX"})["best"]
    slope = frame.scaling("level").slope(np.asarray(best["beta_x"]), ["x"])
    np.testing.assert_allclose(slope, [-1.0, 1.0], atol=0.15)
    assert np.all(np.asarray(best["speed"]) > 0.1)


def test_ecm_rejects_ar_terms() -> None:
    with pytest.raises(ValueError, match="ecm"):
        markov.Options.model_validate({"form": "ecm", "ar_order": 1})


@pytest.mark.parametrize("k", [2, 3])
def test_uniform_breaks_put_a_uniform_prior_on_the_dates(k: int) -> None:
    """transition = "breaks": with a flat likelihood the chain's own matrices give every set of
    k − 1 break months the same probability (one break: 1/m per move; two: P(first break at
    move i) = (m − 1 − i) / C(m, 2)), and exactly k − 1 breaks happen."""
    from math import comb

    n = 30
    frame = frame_of({"y": np.random.default_rng(0).normal(size=n)})
    spec = spec_of({"k_regimes": k, "transition": "breaks", "switching_variance": True})
    fn, owner, _ = markov.FAMILY.compiled(spec, frame)
    values = markov.FAMILY.draw_params(spec, frame, np.random.default_rng(1))
    li, lt = fn(*[values[rv.name] for rv in owner.free_RVs])[:2]  # (K,), (n, K, K)
    m = n - 1  # moves between the scored months
    state = np.exp(li)
    first = np.zeros(m)
    for r in range(m):
        step = np.exp(lt[r])
        first[r] = state[0] * step[0, 1]  # leaving regime 0 at move r
        state = state @ step
    if k == 2:
        np.testing.assert_allclose(first, np.full(m, 1 / m), rtol=1e-10)
    else:
        expected = np.array([(m - 1 - i) / comb(m, 2) for i in range(m)])
        np.testing.assert_allclose(first, expected, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(state[-1], 1.0, rtol=1e-10)  # every path ends in the last regime
    assert [rv.name for rv in owner.free_RVs] == ["intercept", "sigma"]  # no stay parameter
    # a certain break (hazard 1) leaves no −inf in the filter: the gradient NUTS follows (the
    # compiled JAX one: PyTensor's numba backend took 15-30 s to compile it on an empty cache)
    from regimes.compiled import CompiledModel

    model = markov.FAMILY.build(spec, frame)
    cm = CompiledModel.from_model(model)
    point = model.initial_point()
    start = np.concatenate([np.ravel(point[name]) for name in cm.value_names])
    value, grad = cm.logp_and_grad()(start, cm.data_of(model))
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("transition", ["breaks", "changepoint"])
def test_left_to_right_filters_skip_only_impossible_moves(
    transition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A left-to-right chain's filter sums over the moves it can make (`Transitions.allowed`):
    the model's log density and gradient are those of the filter over every move."""
    from regimes.families.chain import transitions as tr

    frame = frame_of({"y": np.random.default_rng(5).normal(size=40)})
    options = {"k_regimes": 3, "transition": transition, "switching_variance": True}
    spec = spec_of(options)
    point = markov.FAMILY.build(spec, frame).initial_point()
    rng = np.random.default_rng(2)
    point = {
        name: value + rng.normal(scale=0.3, size=np.shape(value)) for name, value in point.items()
    }

    def density(model):  # Python ops: no C compilation of four scan graphs
        fast = {"mode": "FAST_COMPILE"}
        return model.compile_logp(**fast)(point), model.compile_dlogp(**fast)(point)

    masked = markov.FAMILY.build(spec, frame)
    with monkeypatch.context() as m:
        m.setattr(tr.Transitions, "allowed", lambda self: None)
        every = density(markov.FAMILY.build(spec, frame))
    logp, dlogp = density(masked)
    np.testing.assert_allclose(logp, every[0], rtol=1e-12)
    np.testing.assert_allclose(dlogp, every[1], rtol=1e-9, atol=1e-12)
