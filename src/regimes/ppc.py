"""Posterior predictive checks on one-step-ahead replicates, for every model family.

A family's `Family.posterior_predictive(tree, frame, spec, seed)` draws y_rep_t ~ p(y_t | y_1..t-1, θ)
in natural units. If the model is right, the probability integral transforms
PIT_t = P(y_rep_t <= y_t) are independent uniforms (Diebold, Gunther & Tay 1998), so their normal
scores have mean 0, sd 1 and no autocorrelation, and central intervals cover at their nominal
rate. Persistent errors the model ignores show up as autocorrelated PITs; over- or
under-confident bands as a normal-score sd away from 1 and wrong coverage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import stats

from regimes.families.base import Family, Fit

Z_FLAG = 4.0  # how many standard errors away from the ideal a check may be before it is flagged


@dataclass(frozen=True)
class PPCResult:
    """Calibration of the one-step predictive: PITs, summary checks and plain-English flags."""

    pit: np.ndarray  # (T,)
    checks: dict[str, dict[str, float]]  # name -> {"value", "ideal", "z"}
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check is more than Z_FLAG standard errors from its ideal."""
        return not self.reasons


def pit_values(y: np.ndarray, y_rep: np.ndarray) -> np.ndarray:
    """PIT per time: share of replicates below the observation (ties split), (S, T) -> (T,)."""
    below = (y_rep < y[None, :]).mean(axis=0)
    ties = (y_rep == y[None, :]).mean(axis=0)
    return below + 0.5 * ties


def check(y: np.ndarray, y_rep: np.ndarray) -> PPCResult:
    """Calibration checks of one-step replicates y_rep (S, T) against observations y (T,)."""
    y, y_rep = np.asarray(y, dtype=float), np.asarray(y_rep, dtype=float)
    n = len(y)
    s = y_rep.shape[0]
    pit = pit_values(y, y_rep)
    eps = 0.5 / s  # keep normal scores finite when y falls outside every replicate
    z = stats.norm.ppf(np.clip(pit, eps, 1 - eps))
    ac1 = float(np.corrcoef(z[:-1], z[1:])[0, 1]) if n > 2 else 0.0
    cover90 = float(np.mean((pit > 0.05) & (pit < 0.95)))
    cover50 = float(np.mean((pit > 0.25) & (pit < 0.75)))
    checks = {
        "PIT normal-score autocorrelation (lag 1)": _check(ac1, 0.0, 1 / np.sqrt(n)),
        "PIT normal-score sd": _check(float(z.std()), 1.0, 1 / np.sqrt(2 * n)),
        "PIT normal-score mean": _check(float(z.mean()), 0.0, 1 / np.sqrt(n)),
        "coverage of 90% one-step intervals": _check(cover90, 0.9, np.sqrt(0.09 / n)),
        "coverage of 50% one-step intervals": _check(cover50, 0.5, np.sqrt(0.25 / n)),
    }
    reasons = [
        f"{name} is {c['value']:.3f} (ideal {c['ideal']:g}, {c['z']:+.1f} standard errors)"
        for name, c in checks.items()
        if abs(c["z"]) > Z_FLAG
    ]
    return PPCResult(pit=pit, checks=checks, reasons=reasons)


def _check(value: float, ideal: float, se: float) -> dict[str, float]:
    return {"value": value, "ideal": ideal, "z": (value - ideal) / se}


def run_checks(
    family: Family, fit: Fit, quantiles: list[float], seed: int = 0
) -> tuple[xr.Dataset, xr.Dataset, PPCResult]:
    """Draw the family's one-step replicates of `fit` and check them; returns
    (posterior_predictive group, derived additions, result)."""
    frame = fit.frame
    pp = family.posterior_predictive(fit, seed=seed)
    rep = pp["y"].stack(sample=("chain", "draw")).transpose("sample", "time")
    times = rep["time"].values
    y = frame.y.reindex(times).to_numpy(dtype=float)
    result = check(y, rep.values)
    q = np.asarray(quantiles)
    band = np.quantile(rep.values, q, axis=0).T  # (T, Q)
    add = xr.Dataset(
        {
            "pit": ("time", result.pit, {"note": "P(y_rep_t <= y_t), one-step-ahead"}),
            "predictive_q": (
                ("time", "quantile"),
                band,
                {"units": frame.units, "note": "one-step-ahead posterior predictive quantiles"},
            ),
        },
        coords={"time": times, "quantile": q},
    ).reindex(time=frame.time.values)  # NaN outside the scored months
    add.attrs.update(
        {
            "ppc_ok": int(result.ok),
            "ppc_reasons": "; ".join(result.reasons),
            "ppc_checks": json.dumps(
                {k: {n: round(x, 4) for n, x in v.items()} for k, v in result.checks.items()}
            ),
        }
    )
    return pp, add, result
