"""Hamilton (1989) MS-AR(4) on US real GNP: the posterior of `experiments/textbook/hamilton_gnp.toml`
against the published MLE (EViews, as pinned in statsmodels' tests).

The switching model beats a linear AR(4) on this sample by only 2.4 log-likelihood points, so
the posterior mean is not the MLE even under the experiment's informative priors (persistent
regimes, recession mean below the expansion mean by about 1.4 percentage points): the posterior
keeps some mass on weakly separated regimes whose persistence the AR terms carry, which pulls
phi_1 up and sigma up by about one posterior sd (validation/README.md). The bound below is
therefore 1.5 posterior sd, not 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regimes.config import load_experiment
from regimes.dataset import build_frame
from regimes.families import markov
from regimes.families.chain.transitions import dirichlet_rows

ROOT = Path(__file__).resolve().parents[1]
HAMILTON = {"p00": 0.754673, "p11": 1 - 0.095915, "const": [-0.358811, 1.163516],
            "sigma": float(np.exp(-0.262658)), "ar": [0.013486, -0.057521, -0.246983, -0.212923]}  # fmt: skip
Z_MAX = 1.5


def test_experiment_priors_are_the_documented_ones() -> None:
    """Sticky Dirichlet(10, 2) rows and the recession/expansion mean priors (fast, no data)."""
    exp = load_experiment(ROOT / "experiments" / "textbook" / "hamilton_gnp.toml")
    opts = markov.Options.model_validate(exp.spec.options)
    rows = dirichlet_rows(opts.k_regimes, opts.transition_concentration, opts.sticky)
    np.testing.assert_allclose(rows, [[10, 2], [2, 10]])
    assert exp.spec.priors["intercept"].params == {"mu": [-1.0, 0.3], "sigma": 0.5}
    assert opts.regime_names == ["recession", "expansion"]


# the experiment's model and priors, 4 x 800 draws: 25-40 s on 2 busy cores with an empty compile
# cache, so by hand (-m validation); the likelihood and smoother at the published MLE are checked
# in CI (tests/test_validation_statsmodels.py)
@pytest.mark.validation
def test_hamilton_posterior_near_published_mle(data_dir: Path, tmp_path: Path) -> None:
    """The experiment as shipped but with 4 x 800 draws after 600 tuning steps (it asks for
    4 x 2000 after 1000: bulk ESS ~1800; 800 draws give ~700, a Monte Carlo error of a mean of
    ~0.04 sd, well inside the 1.5 sd bound)."""
    from regimes.api import run_experiment

    path = ROOT / "experiments" / "textbook" / "hamilton_gnp.toml"
    exp = load_experiment(path)
    sampler = exp.sampler.model_copy(update={"draws": 800, "tune": 600})
    shorter = exp.model_copy(update={"sampler": sampler})
    run = run_experiment(shorter, data_dir=data_dir, out=tmp_path, seed=1, progress=False,
                         figures=False)  # fmt: skip
    frame = build_frame(exp.data.target, exp.data.factors, exp.data.start_ts, exp.data.end_ts,
                        data_dir, frequency=exp.data.frequency)  # fmt: skip
    s = frame.scaling(markov.Options.model_validate(exp.spec.options).transform)
    post = run.posterior()["posterior"]
    P = post["P"].values.reshape(-1, 2, 2)
    draws = {
        "const": s.transformed(post["intercept"].values.reshape(-1, 2)),
        "sigma": s.y_sd_of() * post["sigma"].values.reshape(-1),
        "p00": P[:, 0, 0],
        "p11": P[:, 1, 1],
        "ar": post["phi"].values.reshape(-1, 4),
    }
    for key, values in draws.items():
        mean, sd = values.mean(axis=0), values.std(axis=0)
        z = np.abs(mean - np.asarray(HAMILTON[key])) / sd
        assert np.all(z < Z_MAX), f"{key}: posterior mean {mean} vs MLE {HAMILTON[key]} (sd {sd})"
    verdict = run.manifest["verdict"]
    assert verdict["divergences"] == 0, verdict
    assert verdict["max_rhat"] <= 1.01 and verdict["min_ess_bulk"] >= 400, verdict
