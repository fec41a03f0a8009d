"""Advice that helps when the gate fails: an ordering that cuts through overlapping regimes is
named (with the parameter that separates the regimes better) instead of "raise target_accept",
and R-hat/ESS-only failures say how many draws would do. Hand-made posteriors, no sampling."""

from __future__ import annotations

import numpy as np
import xarray as xr

from regimes.advice import draws_advice, with_advice
from regimes.diagnostics import DIVERGENCE_HINT

REGIMES = ["low", "mid", "high"]
DIVERGENT = {
    "converged": False,
    "divergences": 12,
    "reasons": [f"12 divergent transitions (1.0% of draws); the sampler missed part of the "
                f"posterior, {DIVERGENCE_HINT}"],
}  # fmt: skip


def tree_of(intercept: np.ndarray, sigma: np.ndarray) -> xr.DataTree:
    """A posterior of 2 chains x 200 draws with an intercept and a sigma per regime."""
    post = xr.Dataset(
        {
            "intercept": (("chain", "draw", "regime"), intercept.reshape(2, 200, 3)),
            "sigma": (("chain", "draw", "regime"), sigma.reshape(2, 200, 3)),
            "P": (("chain", "draw", "regime", "regime_to"), np.full((2, 200, 3, 3), 1 / 3)),
        },
        coords={"regime": REGIMES, "regime_to": REGIMES},
    )
    return xr.DataTree.from_dict({"posterior": post})


def ordered_overlapping(rng: np.random.Generator) -> np.ndarray:
    """Intercepts ordered in every draw, the two lower regimes overlapping."""
    base = np.array([0.0, 0.1, 3.0]) + 0.2 * rng.standard_normal((400, 3))
    return np.sort(base, axis=1)


def test_an_ordering_through_overlapping_regimes_is_named_with_a_better_one() -> None:
    rng = np.random.default_rng(0)
    sigma = np.array([0.5, 1.5, 3.0]) + 0.05 * rng.standard_normal((400, 3))
    out = with_advice(DIVERGENT, tree_of(ordered_overlapping(rng), sigma), "intercept")
    (advice,) = out["advice"]
    assert "ordered by intercept" in advice and "low [" in advice and "mid [" in advice
    assert "high [" not in advice  # mid and high are far apart
    assert "separates them best, sigma" in advice and "options.order_by" in advice
    assert DIVERGENCE_HINT not in out["reasons"][0]  # no longer told to raise target_accept
    assert DIVERGENT["reasons"][0].endswith(DIVERGENCE_HINT)  # the verdict given is unchanged


def test_no_identification_advice_without_an_ordering_or_an_overlap() -> None:
    rng = np.random.default_rng(1)
    sigma = np.array([0.5, 1.5, 3.0]) + 0.05 * rng.standard_normal((400, 3))
    unordered = np.array([0.0, 0.1, 3.0]) + 0.2 * rng.standard_normal((400, 3))  # crosses
    assert "advice" not in with_advice(DIVERGENT, tree_of(unordered, sigma), "intercept")
    apart = np.sort(np.array([0.0, 2.0, 4.0]) + 0.1 * rng.standard_normal((400, 3)), axis=1)
    assert "advice" not in with_advice(DIVERGENT, tree_of(apart, sigma), "intercept")
    assert "advice" not in with_advice(DIVERGENT, tree_of(apart, sigma), None)


def test_rhat_or_ess_alone_says_how_many_draws() -> None:
    verdict = {
        "converged": False, "divergences": 0, "bfmi": [0.9, 1.1], "chains_agree": True,
        "max_rhat": 1.0211, "min_ess_bulk": 289.6, "min_ess_tail": 180.0,
        "thresholds": {"rhat_max": 1.01, "ess_bulk_min_per_chain": 100, "bfmi_min": 0.3,
                       "divergences_max": 0},
    }  # fmt: skip
    text = draws_advice(verdict, chains=2, draws=150)
    # ESS: 180 / 300 = 0.60 per draw, 200 / (0.6 x 2) = 167 draws; R-hat: 150 x 0.0427 / 0.0201
    assert text is not None and "0.60 effective draws per draw" in text
    assert "about 319 draws per chain" in text and "draws = 400" in text
    assert draws_advice({**verdict, "divergences": 3}, chains=2, draws=150) is None
    assert draws_advice({**verdict, "chains_agree": False}, chains=2, draws=150) is None
    assert draws_advice({**verdict, "converged": True}, chains=2, draws=150) is None


def test_order_by_auto_picks_the_parameter_that_separates_the_regimes() -> None:
    """Two regimes with one intercept and opposite slopes on x: "auto" orders them by x (the
    intercepts coincide, so an intercept ordering would cut through the posterior); the run's
    manifest keeps every candidate's gap. A spec left at "auto" is refused outside a run."""
    import pandas as pd
    import pytest

    from regimes.api import optimum_of
    from regimes.dataset import FitFrame
    from regimes.errors import ConfigError
    from regimes.families import get_family
    from regimes.spec import ModelSpec

    rng = np.random.default_rng(3)
    n = 160
    x = rng.normal(size=n)
    regime = (np.arange(n) // 40) % 2  # spells of 40 months
    y = np.where(regime == 0, -1.5, 1.5) * x + 0.3 * rng.normal(size=n)
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    frame = FitFrame(
        "y", ("x",), pd.DataFrame({"y": y, "x": x}, index=index),
        pd.Series(True, index=index), units="u",
        attrs={"fit_start": "2000-01", "fit_end": f"{index[-1]:%Y-%m}"},
    )  # fmt: skip
    family = get_family("markov")
    options = {"k_regimes": 2, "switching": ["intercept", "x"], "order_by": "auto", "n_starts": 4}
    spec = ModelSpec(family="markov", options=options, name="auto")
    family.validate_spec(spec, where="test")
    with pytest.raises(ConfigError, match="order_by = 'auto'"):
        family.build(spec, frame)
    optimum = optimum_of(1)
    resolved, record = family.resolve_spec(spec, frame, optimum)
    assert resolved.options["order_by"] == "x"
    gaps = record["order_by"]["closest_gap_at_optimum"]
    assert set(gaps) == {"intercept", "x"} and gaps["x"] > 5 * gaps["intercept"]
    fixed = ModelSpec(family="markov", options={**options, "order_by": "intercept"}, name="f")
    assert family.resolve_spec(fixed, frame, optimum) == (fixed, {})


def test_a_run_records_its_automatic_ordering(tmp_path) -> None:
    """A quick run with order_by = "auto": the manifest keeps the choice, config.toml the spec
    as fitted (so a rerun of it or a leave-future-out refit fits the same model)."""
    import tomllib

    import pandas as pd

    from regimes.api import run_dataframe

    rng = np.random.default_rng(5)
    n = 96
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    y = np.where((np.arange(n) // 24) % 2 == 0, 0.0, 3.0) + rng.normal(0, 0.5, n)
    experiment = {
        "name": "auto_order",
        "model": "ms_mean",
        "options": {"order_by": "auto", "n_starts": 2},
        "data": {"target": "y", "start": "2000-01", "end": f"{index[-1]:%Y-%m}"},
        "sampler": {"draws": 40, "tune": 40, "chains": 2},
        "outputs": {"figures": False},
    }
    run = run_dataframe(pd.DataFrame({"y": y}, index=index), experiment, out=tmp_path)
    assert run.manifest["choices"]["order_by"]["chosen"] == "intercept"  # σ does not switch
    fitted = tomllib.loads((run.path / "config.toml").read_text(encoding="utf-8"))
    assert fitted["resolved_model"]["options"]["order_by"] == "intercept"
