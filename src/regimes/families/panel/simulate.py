"""Simulated panels with known parameters: recovery tests, SBC and the break-date comparison."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from regimes.dataset import FitFrame


@dataclass(frozen=True)
class PanelTruth:
    """The parameters and regime path a simulated panel was drawn from (log-price units)."""

    regimes: np.ndarray  # (T,) regime of each fit month
    alpha: np.ndarray  # (A, K)
    beta: np.ndarray  # (A, K, P) d log price / d factor
    mu: np.ndarray  # (K, P) population mean of beta
    tau: np.ndarray  # (K, P) spread of beta across assets
    sigma: np.ndarray  # (A,)


def simulate_panel(
    seed: int = 0,
    *,
    n_assets: int = 5,
    n_months: int = 300,
    k: int = 2,
    late_assets: int = 2,
    late_by: int = 100,
    n_after: int = 0,
    stay: float = 0.98,
    tau: float = 0.1,
    sigma: float = 0.05,
    regimes: np.ndarray | None = None,
    regime_mask: np.ndarray | None = None,
) -> tuple[FitFrame, PanelTruth]:
    """A panel of `n_assets` log-normal prices on two factors sharing one K-regime chain (a
    sticky chain, or the given `regimes` path); the last `late_assets` assets are missing their
    first `late_by` months. Sensitivities are drawn around well-separated regime means; a
    (K, 2) `regime_mask` zeroes the terms outside each regime's anchor set."""
    rng = np.random.default_rng(seed)
    n = n_months + n_after
    x = np.column_stack([np.cumsum(rng.normal(0, 0.15, n)), np.cumsum(rng.normal(0, 0.15, n))])
    x = (x - x[:n_months].mean(axis=0)) / x[:n_months].std(axis=0)
    if regimes is None:
        P = np.full((k, k), (1 - stay) / max(k - 1, 1)) + np.eye(k) * (
            stay - (1 - stay) / max(k - 1, 1)
        )
        s = np.zeros(n_months, dtype=int)
        for t in range(1, n_months):
            s[t] = rng.choice(k, p=P[s[t - 1]])
    else:
        s = np.asarray(regimes, dtype=int)
    mu = np.column_stack([np.linspace(-0.4, 0.3, k), np.linspace(0.2, -0.2, k)])  # (K, P)
    taus = np.full((k, 2), tau)
    beta = mu[None] + taus[None] * rng.normal(size=(n_assets, k, 2))
    if regime_mask is not None:
        mu, taus, beta = mu * regime_mask, taus * regime_mask, beta * regime_mask[None]
    alpha = np.linspace(-0.3, 0.3, k)[None, :] + 0.05 * rng.normal(size=(n_assets, k))
    sig = sigma * (1 + 0.5 * rng.random(n_assets))
    s_all = np.concatenate([s, np.full(n_after, s[-1])])
    level = np.log(np.linspace(20, 2000, n_assets))[None, :]
    log_p = (
        level
        + alpha[:, s_all].T
        + np.einsum("tp,tap->ta", x, beta[:, s_all].transpose(1, 0, 2))
        + sig[None, :] * rng.normal(size=(n, n_assets))
    )
    price = np.exp(log_p)
    names = [f"asset{a}" for a in range(n_assets)]
    for a in range(n_assets - late_assets, n_assets):
        price[:late_by, a] = np.nan
    price[n_months:, :] = np.nan
    index = pd.date_range("1990-01-01", periods=n, freq="MS")
    frame = pd.DataFrame(price, index=index, columns=names)
    frame.insert(0, "x1", x[:, 0])
    frame.insert(1, "x2", x[:, 1])
    frame = frame[[names[0], "x1", "x2", *names[1:]]]
    fit = pd.Series(np.arange(n) < n_months, index=index, name="in_sample")
    attrs = {"fit_start": f"{index[0]:%Y-%m}", "fit_end": f"{index[n_months - 1]:%Y-%m}"}
    ff = FitFrame(names[0], ("x1", "x2"), frame, fit, units="u", attrs=attrs, assets=tuple(names))
    truth = PanelTruth(regimes=s, alpha=alpha, beta=beta, mu=mu, tau=taus, sigma=sig)
    return ff, truth
