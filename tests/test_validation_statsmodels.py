"""Markov-switching family against the textbook fits that statsmodels ships (Stata / EViews references).

Exact checks (no sampling): at the published MLE, our likelihood graph gives the published
log-likelihood and statsmodels' smoothed regime probabilities. Posterior checks (sampling):
posterior means sit within about one posterior sd of the MLE, and posterior smoothed
probabilities within 0.02 mean absolute difference of statsmodels' at the MLE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimes import hmm
from regimes.config import load_experiment
from regimes.dataset import build_frame
from regimes.families import markov
from regimes.families.chain.space import state_space

sm = pytest.importorskip("statsmodels.api")
ROOT = Path(__file__).resolve().parents[1]

# Published references, as pinned in statsmodels' own tests (Stata manual; EViews for Hamilton).
FEDFUNDS = {"p00": 0.9820939, "p10": 0.0503587, "const": [3.70877, 9.556793], "sigma": 2.107562,
            "llf": -508.63592}  # fmt: skip
HAMILTON = {"p00": 0.754673, "p10": 0.095915, "const": [-0.358811, 1.163516],
            "sigma": float(np.exp(-0.262658)), "ar": [0.013486, -0.057521, -0.246983, -0.212923],
            "llf": -181.26339}  # fmt: skip


def _load(name: str, data_dir: Path):
    exp = load_experiment(ROOT / "experiments" / f"{name}.toml")
    frame = build_frame(exp.data.target, exp.data.factors, exp.data.start_ts, exp.data.end_ts,
                        data_dir, frequency=exp.data.frequency)  # fmt: skip
    return exp, frame


def _compiled(exp, frame):
    """(HMM inputs (log_init, log_trans, log_lik (n, J)) at one draw's values, the model, the
    scaling) from the family's own compiled graphs."""
    fn, _, built = markov.FAMILY.compiled(exp.spec, frame)

    def hmm_inputs(values: list) -> tuple:
        li, lt, ll = fn(*values)[:3]  # with AR lags: the regime matrices, expanded here
        return li, built.parts.space.dense_log_trans(lt), ll.sum(axis=1)  # one series

    return hmm_inputs, built.model, built.data.scaling


def _at(exp, frame, ref: dict, sigma: float | list[float]):
    """Our HMM inputs at natural-unit parameters; returns (components, scaling)."""
    hmm_inputs, model, s = _compiled(exp, frame)
    y_mean, y_sd = s.moments()
    std = {
        "intercept": (np.asarray(ref["const"]) - y_mean) / y_sd,
        "sigma": np.asarray(sigma) / y_sd,
        "P": np.array([[ref["p00"], 1 - ref["p00"]], [ref["p10"], 1 - ref["p10"]]]),
        "phi": np.asarray(ref.get("ar", [])),
    }
    return hmm_inputs([std[rv.name] for rv in model.free_RVs]), s


def _natural_llf(parts, s) -> float:
    """Log-likelihood in the data's units: standardising y by sd adds −n·log(sd)."""
    res = hmm.forward_filter(*parts)
    return float(res.log_marginal) - len(res.log_pred) * np.log(s.y_sd_of())


def test_fedfunds_likelihood_and_smoother_match_reference_at_mle(data_dir: Path) -> None:
    exp, frame = _load("textbook/fedfunds", data_dir)
    parts, d = _at(exp, frame, FEDFUNDS, FEDFUNDS["sigma"])
    assert _natural_llf(parts, d) == pytest.approx(FEDFUNDS["llf"], abs=1e-3)
    mod = sm.tsa.MarkovRegression(frame.y.to_numpy(), k_regimes=2)
    params = np.r_[FEDFUNDS["p00"], FEDFUNDS["p10"], FEDFUNDS["const"], FEDFUNDS["sigma"] ** 2]
    expected = mod.smooth(params).smoothed_marginal_probabilities
    np.testing.assert_allclose(hmm.smooth(*parts), expected, atol=1e-6)


def test_hamilton_ar4_likelihood_and_smoother_match_reference_at_mle(data_dir: Path) -> None:
    exp, frame = _load("textbook/hamilton_gnp", data_dir)
    parts, d = _at(exp, frame, HAMILTON, HAMILTON["sigma"])
    assert _natural_llf(parts, d) == pytest.approx(HAMILTON["llf"], abs=1e-3)
    mod = sm.tsa.MarkovAutoregression(frame.y.to_numpy(), k_regimes=2, order=4, switching_ar=False)
    params = np.r_[HAMILTON["p00"], HAMILTON["p10"], HAMILTON["const"], HAMILTON["sigma"] ** 2,
                   HAMILTON["ar"]]  # fmt: skip
    expected = mod.smooth(params).smoothed_marginal_probabilities
    space = state_space(2, 4)
    ours = hmm.smooth(*parts) @ space.to_regime()
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def _msv_llf_at_best_start(exp, frame, seed: int) -> float:
    """Natural-unit log-likelihood at the best multi-start optimum (flat-prior check of the mode)."""
    from regimes.sampling import multistart

    hmm_inputs, model, s = _compiled(exp, frame)
    best = multistart(model, exp.spec.options.get("n_starts", 12), seed, {"mode": "JAX"})["best"]
    return _natural_llf(hmm_inputs([best[rv.name] for rv in model.free_RVs]), s)


def test_fedfunds_msv_multistart_finds_the_better_mode(data_dir: Path) -> None:
    """statsmodels' default fit stops at −505.70; the better mode is near −496.15."""
    exp, frame = _load("fedfunds_msv", data_dir)
    default_fit = sm.tsa.MarkovRegression(
        frame.y.to_numpy(), k_regimes=2, switching_variance=True
    ).fit()
    assert default_fit.llf == pytest.approx(-505.70, abs=0.05)  # the trap is real on this data
    for seed in (1, 2, 3):
        llf = _msv_llf_at_best_start(exp, frame, seed)
        # the posterior mode includes weak priors, so its likelihood sits a hair below the MLE's
        assert -497.0 < llf <= -496.0, (
            f"seed {seed}: log-likelihood {llf:.2f} (local optimum is -505.70)"
        )


# Hamilton's MS-AR(4) posterior is far flatter than its MLE suggests (the regimes are weakly
# separated under vague priors), so only its likelihood and smoother are pinned above; the
# posterior comparison for it is open work.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["fedfunds"])
def test_posterior_agrees_with_published_mle(name: str, data_dir: Path, tmp_path: Path) -> None:
    from regimes.api import run_experiment

    ref = FEDFUNDS if name == "fedfunds" else HAMILTON
    run = run_experiment(ROOT / "experiments" / "textbook" / f"{name}.toml", data_dir=data_dir,
                         out=tmp_path, progress=False, figures=False)  # fmt: skip
    exp, frame = _load(f"textbook/{name}", data_dir)
    s = frame.scaling(markov.Options.model_validate(exp.spec.options).transform)
    post = run.posterior()["posterior"]
    draws = {
        "const": s.transformed(post["intercept"].values.reshape(-1, 2)),
        "sigma": s.y_sd_of() * post["sigma"].values.reshape(-1),
        "p00": post["P"].values.reshape(-1, 2, 2)[:, 0, 0],
        "p10": post["P"].values.reshape(-1, 2, 2)[:, 1, 0],
    }
    if "phi" in post:
        draws["ar"] = post["phi"].values.reshape(-1, 4)
    for key, values in draws.items():
        mean, sd = values.mean(axis=0), values.std(axis=0)
        z = np.abs(mean - np.asarray(ref[key])) / sd
        assert np.all(z < 1.0), f"{name} {key}: posterior mean {mean} vs MLE {ref[key]} (sd {sd})"
    assert run.manifest["verdict"]["converged"], run.manifest["verdict"]
    # posterior smoothed probabilities vs statsmodels' at the MLE
    if name == "fedfunds":
        mod = sm.tsa.MarkovRegression(frame.y.to_numpy(), k_regimes=2)
        params = np.r_[ref["p00"], ref["p10"], ref["const"], ref["sigma"] ** 2]
        n_skip = 0
    else:
        mod = sm.tsa.MarkovAutoregression(
            frame.y.to_numpy(), k_regimes=2, order=4, switching_ar=False
        )
        params = np.r_[ref["p00"], ref["p10"], ref["const"], ref["sigma"] ** 2, ref["ar"]]
        n_skip = 4
    expected = mod.smooth(params).smoothed_marginal_probabilities
    ours = run.derived()["regime_prob"].values[n_skip:]
    mad = float(np.mean(np.abs(ours - expected)))
    assert mad < 0.02, f"{name}: mean absolute difference of smoothed probabilities {mad:.4f}"
    pd.testing.assert_index_equal(
        pd.Index(run.derived()["regime"].values), pd.Index(exp.spec.options["regime_names"])
    )


TAYLOR_LLF = -229.25614  # Stata's published fit, as pinned in statsmodels' tests


def user_series(exp, data_dir: Path):
    from regimes.userdata import user_series as read

    return read(exp, data_dir)


def test_taylor_rule_config_matches_statsmodels_mle(data_dir: Path) -> None:
    """The textbook model as a config (fedfunds on its declared lag, the output gap and
    inflation; everything switching): statsmodels' MLE reaches the published log-likelihood on
    our frame, and our likelihood and smoother at that MLE equal statsmodels'."""
    exp = load_experiment(ROOT / "experiments" / "fedfunds_taylor.toml")
    d = exp.data
    frame = build_frame(d.target, d.factors, d.start_ts, d.end_ts, data_dir,
                        frequency=d.frequency, transforms=d.transforms,
                        supplied=user_series(exp, data_dir))  # fmt: skip
    y, x = frame.y.to_numpy(), frame.X.to_numpy()
    np.testing.assert_array_equal(x[1:, 0], y[:-1])  # the lag transform is the lagged target
    res = sm.tsa.MarkovRegression(y, k_regimes=2, exog=x).fit(search_reps=20, disp=False)
    assert res.llf == pytest.approx(TAYLOR_LLF, abs=1e-3)
    p = res.params
    const, beta = p[2:4], p[4:10].reshape(3, 2).T  # (regime, term)
    order = np.argsort(const)  # our regimes are ordered by intercept
    hmm_inputs, model, s = _compiled(exp, frame)
    y_mean, y_sd = s.moments()
    xm = np.array([s.x_mean[t] for t in frame.factors])
    xs = np.array([s.x_sd[t] for t in frame.factors])
    values = {
        "intercept": ((const + beta @ xm - y_mean) / y_sd)[order],
        "sigma": np.sqrt(p[10]) / y_sd,
        "P": np.array([[p[0], 1 - p[0]], [p[1], 1 - p[1]]])[np.ix_(order, order)],
    }
    for j, term in enumerate(frame.factors):
        values[f"beta_{term}"] = (beta[:, j] * xs[j] / y_sd)[order]
    parts = hmm_inputs([values[rv.name] for rv in model.free_RVs])
    assert _natural_llf(parts, s) == pytest.approx(res.llf, abs=1e-6)
    expected = res.smoothed_marginal_probabilities[:, order]
    np.testing.assert_allclose(hmm.smooth(*parts), expected, atol=1e-6)


def test_taylor_rule_posterior_mode_reaches_the_published_fit(data_dir: Path) -> None:
    """Our multi-start posterior mode (default weak priors) sits within 0.1 of the published
    log-likelihood, below it only by what the priors cost."""
    from regimes.sampling import multistart

    exp = load_experiment(ROOT / "experiments" / "fedfunds_taylor.toml")
    d = exp.data
    frame = build_frame(d.target, d.factors, d.start_ts, d.end_ts, data_dir,
                        frequency=d.frequency, transforms=d.transforms,
                        supplied=user_series(exp, data_dir))  # fmt: skip
    hmm_inputs, model, s = _compiled(exp, frame)
    best = multistart(model, 12, seed=1)["best"]
    llf = _natural_llf(hmm_inputs([best[rv.name] for rv in model.free_RVs]), s)
    assert TAYLOR_LLF - 0.1 < llf <= TAYLOR_LLF + 1e-6
