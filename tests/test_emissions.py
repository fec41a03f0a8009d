"""The chain parts' emission densities against hand computations: a Student-t noise law on the
level form (one class, `StudentTNoise`), and the Normal one it replaces, per regime and month."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regimes.dataset import FitFrame
from regimes.families import get_family
from regimes.spec import ModelSpec


def frame_of(n: int = 40, seed: int = 0) -> FitFrame:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 0.3, n))
    y = 5.0 + 2.0 * x + rng.standard_t(4, n)
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    frame = pd.DataFrame({"y": y, "x": x}, index=index)
    return FitFrame("y", ("x",), frame, pd.Series(True, index=index, name="in_sample"))


@pytest.mark.parametrize("noise", ["normal", "student_t"])
def test_level_emission_density_matches_scipy(noise: str) -> None:
    frame = frame_of()
    options = {"k_regimes": 2, "switching": ["intercept", "x"], "noise": noise,
               "switching_variance": True}  # fmt: skip
    spec = ModelSpec(name="t", family="markov", options=options)
    fn, owner, built = get_family("markov").compiled(spec, frame)
    values = {
        "intercept": np.array([-0.4, 0.6]),
        "beta_x": np.array([0.3, 0.9]),
        "sigma": np.array([0.5, 1.2]),
        "P": np.array([[0.9, 0.1], [0.2, 0.8]]),
        "nu": np.array(3.5),
    }
    names = [rv.name for rv in owner.free_RVs]
    assert ("nu" in names) == (noise == "student_t")
    log_lik = fn(*[values[n] for n in names])[2][:, 0, :]  # (T, K): one series
    s = built.data.scaling
    y = s.target(frame.y.to_numpy())
    x = s.factors(frame.X.to_numpy(), ["x"])[:, 0]
    for k in range(2):
        mean = values["intercept"][k] + values["beta_x"][k] * x
        scale = values["sigma"][k]
        if noise == "student_t":
            expected = stats.t.logpdf(y, df=3.5, loc=mean, scale=scale)
        else:
            expected = stats.norm.logpdf(y, loc=mean, scale=scale)
        np.testing.assert_allclose(log_lik[:, k], expected, rtol=1e-10)


def test_student_t_draws_follow_the_declared_law() -> None:
    """Simulated from a one-regime Student-t model with a zero anchor and unit scale, the
    target on the model's scale is t(5): a KS test accepts t(5) and rejects the Normal."""
    frame = frame_of(n=3000, seed=1)
    spec = ModelSpec(name="t", family="markov", options={"k_regimes": 1, "noise": "student_t"})
    family = get_family("markov")
    params = {"intercept": np.array(0.0), "beta_shared": np.array([0.0]),
              "sigma": np.array(1.0), "nu": np.array(5.0)}  # fmt: skip
    sim = family.simulate(spec, frame, params, np.random.default_rng(3))
    z = sim.frame.fixed_scaling.target(sim.frame.y.to_numpy())
    assert stats.kstest(z, stats.t(5).cdf).pvalue > 0.01
    assert stats.kstest(z, stats.norm(0, np.sqrt(5 / 3)).cdf).pvalue < 1e-3  # same variance
