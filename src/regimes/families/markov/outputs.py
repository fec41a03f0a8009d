"""What a fitted Markov-switching model says, per posterior draw: the forward filter, smoother
and FFBS over the fit window, regime probabilities of every month (smoothed, then P^h-predicted),
each regime's anchor in natural units, and the `derived.nc` dataset built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes import hmm
from regimes.dataset import FitFrame
from regimes.draws import inverse_transform, stack_draws
from regimes.draws import quantiles as quantiles_of
from regimes.families.markov.design import Design
from regimes.families.markov.model import component_function
from regimes.families.markov.options import Options
from regimes.families.schema import fair_value_variables
from regimes.spec import ModelSpec

CHUNK = 500  # draws per batch of HMM passes (bounds memory at large T and K^(p+1))


@dataclass
class PosteriorHMM:
    """Per-draw HMM results over the fit window, computed once and shared by the outputs."""

    regime_prob: np.ndarray  # (D, T_fit, K) smoothed, first p months from the lag components
    last_filtered: np.ndarray  # (D, K) p(s_T | y) at the end of the fit window
    log_pred: np.ndarray  # (D, T_fit - c) one-step-ahead log predictive densities
    switch_prob: np.ndarray  # (T_fit,) posterior probability that the regime changed at t (FFBS)
    viterbi_path: np.ndarray  # (T_fit,) most likely path at the posterior-median parameters
    P: np.ndarray  # (D, K, K), or (D, N, K, K) for covariate-driven transitions (every month)
    volatility_prob: np.ndarray | None = None  # (D, T_fit - c, V) smoothed, factorial chains


def posterior_hmm(tree, frame: FitFrame, spec: ModelSpec, seed: int = 0) -> PosteriorHMM:
    """Run the forward filter, smoother and FFBS for every posterior draw."""
    opts = Options.model_validate(spec.options)
    fn, model, d, space = component_function(spec, frame)
    post = tree["posterior"].to_dataset()
    values = [stack_draws(post, rv.name) for rv in model.free_RVs]
    n_draws = values[0].shape[0]
    k, p, c = opts.k_regimes, opts.ar_order, opts.n_conditioning
    t_fit = d.y.shape[0]
    rng = np.random.default_rng(seed)
    regime_prob = np.empty((n_draws, t_fit, k))
    last_filtered = np.empty((n_draws, k))
    log_pred = np.empty((n_draws, t_fit - c))
    P = np.empty((n_draws, *(() if opts.transition != "covariates" else (len(d.z_all),)), k, k))
    switches = np.zeros(t_fit)
    factorial = space.volatility is not None
    to_vol = np.eye(opts.volatility_regimes)[space.volatility] if factorial else None
    vol_prob = np.empty((n_draws, t_fit - c, opts.volatility_regimes)) if factorial else None
    to_regime = np.eye(k)[space.lags]  # (J, p+1, K) one-hot regime at each lag
    for lo in range(0, n_draws, CHUNK):
        hi = min(lo + CHUNK, n_draws)
        parts = [fn(*[v[i] for v in values]) for i in range(lo, hi)]
        li = np.stack([q[0] for q in parts])
        lt = np.stack([q[1] for q in parts])
        ll = np.stack([q[2] for q in parts])
        P[lo:hi] = np.stack([q[3] for q in parts])
        log_pred_c, filt, smoothed, paths = hmm.posterior_draws(rng, li, lt, ll)
        log_pred[lo:hi] = log_pred_c
        last_filtered[lo:hi] = filt[:, -1] @ to_regime[:, 0]
        regime_prob[lo:hi, c:] = smoothed @ to_regime[:, 0]  # (n, T-c, J) -> (n, T-c, K)
        if factorial:
            vol_prob[lo:hi] = smoothed @ to_vol
        for t in range(c):  # conditioning months: regime at lag c - t of the first state if kept
            lag = min(c - t, p)
            regime_prob[lo:hi, t] = smoothed[:, 0] @ to_regime[:, lag]
        path = space.lags[paths, 0]
        switches[c + 1 :] += (path[:, 1:] != path[:, :-1]).sum(axis=0)
    med = [np.median(v, axis=0) for v in values]
    li, lt, ll = fn(*med)[:3]
    viterbi = space.lags[hmm.viterbi(li, lt, ll), 0]
    viterbi = np.concatenate([np.full(c, viterbi[0]), viterbi])
    return PosteriorHMM(
        regime_prob=regime_prob,
        last_filtered=last_filtered,
        log_pred=log_pred,
        switch_prob=switches / n_draws,
        viterbi_path=viterbi,
        P=P,
        volatility_prob=vol_prob,
    )


def anchor_draws(post: xr.Dataset, d: Design, opts: Options) -> np.ndarray:
    """μ_k(x_t) in natural units for every draw, month and regime: (D, N, K)."""
    k = opts.k_regimes
    a = stack_draws(post, "intercept")
    a = a.reshape(a.shape[0], -1) * np.ones((1, k))  # (D, K)
    mu = np.broadcast_to(a[:, None, :], (a.shape[0], d.x_switch_all.shape[0], k)).copy()
    if d.switch_terms:
        mu += np.einsum("tp,dkp->dtk", d.x_switch_all, stack_draws(post, "beta_switch"))
    if d.shared_terms:
        mu += np.einsum("tp,dp->dt", d.x_shared_all, stack_draws(post, "beta_shared"))[:, :, None]
    level = d.y_mean + d.y_sd * mu
    return inverse_transform(level, opts.transform)


def regime_prob_all(ph: PosteriorHMM, fit: np.ndarray) -> np.ndarray:
    """Regime probabilities for every month: smoothed in the fit window, P^h-predicted after it."""
    n_draws, _, k = ph.regime_prob.shape
    out = np.full((n_draws, len(fit), k), np.nan)
    idx = np.flatnonzero(fit)
    out[:, idx] = ph.regime_prob
    after = np.arange(len(fit)) > idx[-1]
    prob = ph.last_filtered
    for t in np.flatnonzero(after):
        P = ph.P if ph.P.ndim == 3 else ph.P[:, t - 1]  # the move t-1 -> t uses month t-1's P
        prob = np.einsum("dk,dkj->dj", prob, P)
        out[:, t] = prob
    return out


def break_outputs(prob: np.ndarray, names: list[str], time: pd.DatetimeIndex, q: np.ndarray):
    """Change-point outputs from left-to-right regime probabilities (D, N, K).

    Regimes only move forward, so P(break m by t) = P(s_t >= m) and the probability the break
    happened at t is its increase from t-1. Returns break labels, break_prob (N, M) and the
    break-date quantiles (M, Q) read off the posterior-mean cumulative probability."""
    reached = np.cumsum(prob[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # (D, N, M): P(s_t >= m)
    cdf = np.nan_to_num(reached.mean(axis=0))  # (N, M)
    at = np.diff(cdf, axis=0, prepend=0.0)
    dates = np.full((cdf.shape[1], len(q)), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    for m in range(cdf.shape[1]):
        for i, level in enumerate(q):
            hit = np.flatnonzero(cdf[:, m] >= level)
            if hit.size:
                dates[m, i] = time.values[hit[0]]
    labels = [f"{names[m]}->{names[m + 1]}" for m in range(len(names) - 1)]
    return labels, at, dates


def chain_variables(
    prob: np.ndarray,
    P: np.ndarray,
    viterbi_path: np.ndarray,
    switch_prob: np.ndarray,
    fit: np.ndarray,
    names: list[str],
    q: np.ndarray,
) -> dict[str, Any]:
    """derived.nc's variables of one regime chain: probabilities (D, N, K) and their quantiles,
    expected durations and the reported transition matrix from P ((D, K, K), or (D, N, K, K)
    with time-varying transitions: averaged over the fit window), the Viterbi path and the
    switch probability over the fit window."""
    with np.errstate(divide="ignore"):
        durations = 1.0 / (1.0 - np.diagonal(P, axis1=-2, axis2=-1))  # (D, [N,] K)
    time_varying = P.ndim == 4
    P_report = P[:, fit].mean(axis=1) if time_varying else P
    dur_dims = ("time", "regime", "quantile") if time_varying else ("regime", "quantile")
    absorbing = np.isinf(durations).all(axis=0)  # a change point's last regime never ends
    durations = np.where(np.isinf(durations), 0.0, durations)
    path = np.full(len(fit), "", dtype=object)
    path[np.flatnonzero(fit)] = np.asarray(names, dtype=object)[viterbi_path]
    switch = np.full(len(fit), np.nan)
    switch[np.flatnonzero(fit)] = switch_prob
    return {
        "regime_prob": (("time", "regime"), prob.mean(axis=0)),
        "regime_prob_q": (("time", "regime", "quantile"), quantiles_of(prob, q)),
        "expected_duration": (
            dur_dims,
            np.where(absorbing[..., None], np.inf, quantiles_of(durations, q)),
            {"units": "periods"},
        ),
        "transition": (("regime", "regime_to", "quantile"), quantiles_of(P_report, q)),
        "most_likely_regime": ("time", path.astype(str)),
        "switch_prob": ("time", switch),
    }


def derived_dataset(
    tree, frame: FitFrame, spec: ModelSpec, quantiles: list[float], ph: PosteriorHMM, d: Design
) -> xr.Dataset:
    """Regime probabilities, fair value by regime and mixed, durations, transition matrix, paths."""
    opts = Options.model_validate(spec.options)
    post = tree["posterior"].to_dataset()
    q = np.asarray(quantiles)
    fit = frame.fit.to_numpy()
    names = opts.names
    prob = regime_prob_all(ph, fit)  # (D, N, K)
    fv_k = anchor_draws(post, d, opts)  # (D, N, K)
    fv_mix = np.einsum("dnk,dnk->dn", prob, fv_k)
    time_varying = ph.P.ndim == 4

    ds = xr.Dataset(
        {
            **fair_value_variables(frame, fv_mix, q),
            **chain_variables(prob, ph.P, ph.viterbi_path, ph.switch_prob, fit, names, q),
            "fair_value_by_regime": (
                ("time", "regime", "quantile"),
                quantiles_of(fv_k, q),
                {"units": frame.units},
            ),
        },
        coords={
            "time": pd.DatetimeIndex(frame.time).values,
            "quantile": q,
            "regime": names,
            "regime_to": names,
            "term": list(frame.factors),
        },
    )
    ds["regime_prob"].attrs["note"] = (
        "smoothed p(s_t | all data) in the fit window; P^h-predicted after it"
    )
    ds["most_likely_regime"].attrs["note"] = "Viterbi path at the posterior-median parameters"
    ds["switch_prob"].attrs["note"] = (
        "posterior probability that the regime changed at t (FFBS paths)"
    )
    if time_varying:
        ds["transition"].attrs["note"] = "average over the fit window of the monthly matrices"
        ds["transition_t"] = (
            ("time", "regime", "regime_to"),
            np.median(ph.P, axis=0),
            {"note": "posterior median of the month-t matrix (move from t to t+1)"},
        )
        ds["expected_duration"].attrs["note"] = "1 / (1 − P_t[k, k]) at month t's covariates"
    if opts.form == "ecm":  # each regime's anchor: how fast deviations from it halve
        speed = stack_draws(post, "speed")
        speed = speed.reshape(speed.shape[0], -1) * np.ones((1, opts.k_regimes))
        with np.errstate(divide="ignore"):
            half = np.log(0.5) / np.log1p(-np.clip(speed, 0.0, 1.0 - 1e-12))
        ds["anchor_half_life"] = (
            ("regime", "quantile"),
            quantiles_of(half, q),
            {"units": "periods", "note": "ln 0.5 / ln(1 − speed): periods for a gap to halve"},
        )
    if ph.volatility_prob is not None:
        vol = np.full((ph.volatility_prob.shape[0], len(fit), opts.volatility_regimes), np.nan)
        vol[:, np.flatnonzero(fit)[opts.n_conditioning :]] = ph.volatility_prob
        ds = ds.assign_coords({"volatility": opts.volatility_labels})
        ds["volatility_prob"] = (
            ("time", "volatility"),
            vol.mean(axis=0),
            {"note": "smoothed probability of each regime of the volatility chain (fit window)"},
        )
    if opts.transition == "changepoint":
        labels, at, dates = break_outputs(prob, names, frame.time, q)
        ds = ds.assign_coords({"break": labels})
        ds["break_prob"] = (
            ("time", "break"),
            at,
            {"note": "posterior probability that the break happened in month t"},
        )
        ds["break_date"] = (("break", "quantile"), dates, {"note": "posterior quantiles"})
    ds.attrs.update(
        {
            "k_regimes": opts.k_regimes,
            "ar_order": opts.ar_order,
            "order_by": opts.order_by,
            "transform": opts.transform,
            "regime_names": ",".join(names),
            "transition": opts.transition,
            "form": opts.form,
            "log_marginal_mean": float(ph.log_pred.sum(axis=1).mean()),
        }
    )
    return ds


def one_step_replicates(tree, frame: FitFrame, spec: ModelSpec, seed: int = 0) -> xr.Dataset:
    """One-step-ahead replicates y_rep_t ~ p(y_t | y_1..t-1, θ) per draw, in natural units.

    The regime is drawn from its one-step prediction p(s_t | y_1..t-1) (the forward filter), then
    y_rep_t = y_t − e_t(s) + σ_s ε: the component's conditional mean plus noise — the same
    predictive the pointwise log-likelihood scores, so PPCs and LOO/LFO judge one model."""
    opts = Options.model_validate(spec.options)
    fn, model, d, _ = component_function(spec, frame)
    post = tree["posterior"]
    values = [stack_draws(post.to_dataset(), rv.name) for rv in model.free_RVs]
    n_draws = values[0].shape[0]
    c = opts.n_conditioning
    rng = np.random.default_rng(seed)
    y_obs = d.y[c:]
    out = np.empty((n_draws, len(y_obs)))
    for lo in range(0, n_draws, CHUNK):
        hi = min(lo + CHUNK, n_draws)
        parts = [fn(*[v[i] for v in values]) for i in range(lo, hi)]
        li, lt, ll, _, e, sig = (np.stack([q[j] for q in parts]) for j in range(6))
        pred = hmm.filter_draws(li, lt, ll).predicted  # (n, T-c, J)
        u = rng.random(pred.shape[:2])[..., None]
        state = np.minimum((np.cumsum(pred, axis=-1) < u).sum(axis=-1), pred.shape[-1] - 1)
        e_s = np.take_along_axis(e, state[..., None], axis=-1)[..., 0]
        sig_s = np.take_along_axis(np.broadcast_to(sig[:, None, :], e.shape), state[..., None], -1)
        out[lo:hi] = y_obs[None, :] - e_s + sig_s[..., 0] * rng.standard_normal(e_s.shape)
    level = d.y_mean + d.y_sd * out
    natural = inverse_transform(level, opts.transform)
    time = frame.time[frame.fit.to_numpy()][c:]
    return xr.Dataset(
        {
            "y": (
                ("chain", "draw", "time"),
                natural.reshape(post.sizes["chain"], post.sizes["draw"], -1),
            )
        },
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "time": time.values},
    )
