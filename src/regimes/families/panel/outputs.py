"""What a fitted panel model says, per posterior draw: the forward filter, smoother and FFBS of
the shared chain (or of each asset's chain), one-step predictive densities jointly and per asset,
each asset's fair value by regime and mixed, and the `derived.nc` dataset built from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from regimes import hmm
from regimes.dataset import FitFrame
from regimes.draws import inverse_transform, stack_draws
from regimes.draws import quantiles as quantiles_of
from regimes.families.markov.outputs import break_outputs, chain_variables
from regimes.families.panel.design import PanelDesign
from regimes.families.panel.model import component_function
from regimes.families.panel.options import Options
from regimes.spec import ModelSpec

CHUNK = 500  # draws per batch of HMM passes


@dataclass
class PanelPosterior:
    """Per-draw HMM results over the fit window (T months), shared by every output."""

    design: PanelDesign
    regime_prob: np.ndarray  # (D, C, T, K) smoothed; C = 1 shared chain, C = A independent
    last_filtered: np.ndarray  # (D, C, K) p(s_T | data) at the end of the fit window
    # over the n = T - c scored months (c = 1 for the error-correction form, else 0):
    predicted: np.ndarray  # (D, n, K) one-step p(s_t | y_<t) of the reference asset's chain
    log_pred: np.ndarray  # (D, n) joint one-step log predictive density of month t
    log_pred_asset: np.ndarray  # (D, n, A) each asset's one-step log density; NaN if unscored
    mean_ref: np.ndarray  # (D, n, K) reference asset's standardised conditional means
    sigma: np.ndarray  # (D, A, K) standardised sds
    P: np.ndarray  # (D, K, K), (D, N, K, K) covariate transitions, (D, A, K, K) independent
    switch_prob: np.ndarray  # (T,) posterior probability that the (reference) regime changed
    viterbi_path: np.ndarray  # (T,) most likely (reference) path at the posterior median

    @property
    def shared(self) -> bool:
        """One chain for every asset."""
        return self.regime_prob.shape[1] == 1


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def posterior_passes(tree, frame: FitFrame, spec: ModelSpec, seed: int = 0) -> PanelPosterior:
    """Forward filter, smoother and FFBS per draw, from the model's own graphs."""
    opts = Options.model_validate(spec.options)
    fn, model, d = component_function(spec, frame)
    post = tree["posterior"].to_dataset()
    values = [stack_draws(post, rv.name) for rv in model.free_RVs]
    n_draws, k = values[0].shape[0], opts.k_regimes
    t_fit, n_assets = d.y.shape
    c = opts.n_conditioning
    n = t_fit - c
    chains = 1 if opts.chain == "shared" else n_assets
    rng = np.random.default_rng(seed)
    out = {
        "regime_prob": np.empty((n_draws, chains, t_fit, k)),
        "last_filtered": np.empty((n_draws, chains, k)),
        "predicted": np.empty((n_draws, n, k)),
        "log_pred": np.zeros((n_draws, n)),
        "log_pred_asset": np.empty((n_draws, n, n_assets)),
        "mean_ref": np.empty((n_draws, n, k)),
        "sigma": np.empty((n_draws, n_assets, k)),
    }
    P_list = []
    switches = np.zeros(t_fit)
    masked = d.scored_mask(c) == 0
    for lo in range(0, n_draws, CHUNK):
        hi = min(lo + CHUNK, n_draws)
        parts = [fn(*[v[i] for v in values]) for i in range(lo, hi)]
        li, lt, ll, mean, sig, p_all = (np.stack([q[j] for q in parts]) for j in range(6))
        P_list.append(p_all)
        out["mean_ref"][lo:hi] = mean[:, :, 0]
        out["sigma"][lo:hi] = sig
        for ch in range(chains):
            if opts.chain == "shared":
                li_c, lt_c, ll_c, own = li, lt, ll.sum(axis=2), ll
            else:
                li_c, lt_c, ll_c = li[:, ch], lt[:, ch], ll[:, :, ch]
                own = ll[:, :, ch : ch + 1]
            log_pred, filt, smoothed, paths = hmm.posterior_draws(rng, li_c, lt_c, ll_c)
            pred = hmm.filter_draws(li_c, lt_c, ll_c).predicted  # (n, T, K)
            out["regime_prob"][lo:hi, ch, c:] = smoothed
            out["regime_prob"][lo:hi, ch, :c] = smoothed[:, None, 0]  # conditioning month
            out["last_filtered"][lo:hi, ch] = filt[:, -1]
            out["log_pred"][lo:hi] += log_pred
            with np.errstate(divide="ignore"):
                per_asset = _lse(np.log(pred)[:, :, None, :] + own, axis=-1)  # (n, T, A|1)
            if opts.chain == "shared":
                out["log_pred_asset"][lo:hi] = per_asset
            else:
                out["log_pred_asset"][lo:hi, :, ch] = per_asset[..., 0]
            if ch == 0:
                out["predicted"][lo:hi] = pred
                switches[c + 1 :] += (paths[:, 1:] != paths[:, :-1]).sum(axis=0)
    out["log_pred_asset"][:, masked] = np.nan
    med = [np.median(v, axis=0) for v in values]
    li, lt, ll = fn(*med)[:3]
    if opts.chain == "shared":
        path = hmm.viterbi(li, lt, ll.sum(axis=1))
    else:
        path = hmm.viterbi(li[0], lt[0], ll[:, 0])
    path = np.concatenate([np.full(c, path[0]), path])
    return PanelPosterior(
        design=d,
        P=np.concatenate(P_list),
        switch_prob=switches / n_draws,
        viterbi_path=np.asarray(path),
        **out,
    )


def regime_prob_all(pp: PanelPosterior, fit: np.ndarray) -> np.ndarray:
    """Regime probabilities of every month and chain, (D, C, N, K): smoothed in the fit window,
    P^h-predicted after it."""
    n_draws, chains, _, k = pp.regime_prob.shape
    out = np.full((n_draws, chains, len(fit), k), np.nan)
    idx = np.flatnonzero(fit)
    out[:, :, idx] = pp.regime_prob
    prob = pp.last_filtered
    for t in np.flatnonzero(np.arange(len(fit)) > idx[-1]):
        if pp.P.ndim == 3:  # one constant matrix
            P = pp.P[:, None]
        elif pp.shared:  # covariate-driven: month t-1's matrix moves t-1 -> t
            P = pp.P[:, None, t - 1]
        else:  # one matrix per asset's chain
            P = pp.P
        prob = np.einsum("dck,dckj->dcj", prob, P)
        out[:, :, t] = prob
    return out


def anchor_draws(post: xr.Dataset, d: PanelDesign, opts: Options) -> np.ndarray:
    """Each asset's anchor per regime in natural units for every draw and month: (D, A, N, K)."""
    alpha = stack_draws(post, "alpha")  # (D, A, K)
    mean = np.broadcast_to(alpha[:, :, None, :], (alpha.shape[0], *alpha.shape[1:2], len(d.x_all), alpha.shape[2])).copy()  # fmt: skip
    if d.terms:
        beta = stack_draws(post, "beta") * d.term_mask[None, :, None, :]  # (D, A, K, P)
        mean += np.einsum("np,dakp->dank", d.x_all, beta)
    level = d.y_mean[None, :, None, None] + d.y_sd[None, :, None, None] * mean
    return inverse_transform(level, opts.transform)


def mixture(pp: PanelPosterior, post: xr.Dataset, frame: FitFrame, opts: Options):
    """(regime probabilities (D, C, N, K), fair value by regime (D, A, N, K), mixed (D, A, N))."""
    prob = regime_prob_all(pp, frame.fit.to_numpy())
    fv_k = anchor_draws(post, pp.design, opts)
    weights = prob if not pp.shared else np.broadcast_to(prob, fv_k.shape)
    return prob, fv_k, np.einsum("dank,dank->dan", weights, fv_k)


def derived_dataset(
    tree, frame: FitFrame, spec: ModelSpec, quantiles: list[float], pp: PanelPosterior
) -> xr.Dataset:
    """Per-asset price, fair value and deviation; per-asset and population sensitivities; the
    shared chain's regime probabilities, durations, transition matrix and most likely path."""
    opts = Options.model_validate(spec.options)
    d = pp.design
    post = tree["posterior"].to_dataset()
    q = np.asarray(quantiles)
    fit = frame.fit.to_numpy()
    names = opts.names
    prob, fv_k, fv_mix = mixture(pp, post, frame, opts)
    price = frame.Y.to_numpy(dtype=float).T  # (A, N)
    deviation = 100.0 * (price[None] / fv_mix - 1.0)
    ref_prob = prob[:, 0]  # (D, N, K): the shared chain, or the reference asset's
    P_ref = pp.P if pp.P.ndim == 3 or pp.shared else pp.P[:, 0]
    time_varying = P_ref.ndim == 4
    factors = list(frame.factors)
    where = [factors.index(t) for t in d.terms]  # anchor terms among the factors

    in_set = (np.ones((opts.k_regimes, len(d.terms))) if d.regime_mask is None else d.regime_mask).T

    def coef_q(draws: np.ndarray) -> np.ndarray:
        """(D, A, K, P) draws -> (A, factor, K, Q) quantiles, NaN for a term an asset lacks or
        a regime's anchor set leaves out (and for transition covariates, which anchor nothing)."""
        out = np.full((len(d.assets), len(factors), opts.k_regimes, len(q)), np.nan)
        got = quantiles_of(np.moveaxis(draws, -1, 2), q)  # (A, P, K, Q)
        held = d.term_mask[:, :, None] * in_set[None]  # (A, P, K)
        out[:, where] = np.where(held[..., None] > 0, got, np.nan)
        return out

    def term_q(draws: np.ndarray) -> np.ndarray:
        """(D, K, P) draws -> (factor, K, Q) quantiles, NaN for transition covariates and for
        terms outside a regime's anchor set."""
        out = np.full((len(factors), opts.k_regimes, len(q)), np.nan)
        got = quantiles_of(np.moveaxis(draws, -1, 1), q)  # (P, K, Q)
        out[where] = np.where(in_set[..., None] > 0, got, np.nan)
        return out

    a_pop = stack_draws(post, "intercept")
    a_pop = a_pop.reshape(a_pop.shape[0], -1) * np.ones((1, opts.k_regimes))

    data_vars: dict = {
        "price": (("asset", "time"), price, {"units": frame.units, "long_name": frame.target}),
        "fair_value": (("asset", "time", "quantile"), quantiles_of(fv_mix, q)),
        "deviation_pct": (
            ("asset", "time", "quantile"),
            quantiles_of(deviation, q),
            {"units": "%"},
        ),
        "fair_value_by_regime": (("asset", "time", "regime", "quantile"), quantiles_of(fv_k, q)),
        "factor": (("time", "term"), frame.X.to_numpy()),
        "in_sample": ("time", fit.astype(np.int8)),
        "observed": (
            ("asset", "time"),
            (np.isfinite(price) & fit[None]).astype(np.int8),
            {"note": "1 where the asset's month is in the fit window and observed"},
        ),
        **chain_variables(ref_prob, P_ref, pp.viterbi_path, pp.switch_prob, fit, names, q),
        "intercept_pop": (
            ("regime", "quantile"),
            quantiles_of(a_pop, q),
            {"note": "population mean intercept per regime (standardised modelled price)"},
        ),
    }
    if d.terms:
        beta = stack_draws(post, "beta")  # (D, A, K, P)
        scale = d.y_sd[None, :, None, None] / np.array([d.x_sd[t] for t in d.terms])
        data_vars["coef"] = (
            ("asset", "term", "regime", "quantile"),
            coef_q(beta * scale),
            {"note": f"d {opts.transform} price / d factor per regime, the asset's own units"},
        )
        data_vars["coef_std"] = (
            ("asset", "term", "regime", "quantile"),
            coef_q(beta),
            {"note": "asset sd of the modelled price per factor sd (comparable across assets)"},
        )
        data_vars["coef_pop"] = (
            ("term", "regime", "quantile"),
            term_q(stack_draws(post, "mu")),
            {"note": "population mean mu[regime, term], standardised units (as coef_std)"},
        )
        data_vars["coef_pop_sd"] = (
            ("term", "regime", "quantile"),
            term_q(stack_draws(post, "tau")),
            {"note": "across-asset spread tau[regime, term], standardised units"},
        )
    else:  # no anchor terms: coefficient tables of NaN keep the schema's shape
        empty = np.full((len(d.assets), len(factors), opts.k_regimes, len(q)), np.nan)
        data_vars["coef"] = (("asset", "term", "regime", "quantile"), empty)
        data_vars["coef_pop"] = (("term", "regime", "quantile"), empty[0])
    if not pp.shared:
        data_vars["regime_prob_asset"] = (
            ("asset", "time", "regime"),
            prob.mean(axis=0),
            {"note": "each asset's own chain (chain = 'independent')"},
        )
    months = (np.isfinite(price) & fit[None]).sum(axis=1)
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": pd.DatetimeIndex(frame.time).values,
            "quantile": q,
            "asset": d.assets,
            "regime": names,
            "regime_to": names,
            "term": factors,
        },
    )
    ds["fair_value"].attrs["units"] = frame.units
    ds["fair_value_by_regime"].attrs["units"] = frame.units
    ds["asset_months"] = ("asset", months.astype(np.int64), {"note": "fit-window months observed"})
    ds["regime_prob"].attrs["note"] = (
        "smoothed p(s_t | every asset's data) in the fit window; P^h-predicted after it"
    )
    ds["most_likely_regime"].attrs["note"] = "Viterbi path at the posterior-median parameters"
    if time_varying:
        ds["transition_t"] = (("time", "regime", "regime_to"), np.median(P_ref, axis=0))
    if opts.transition == "changepoint":  # left-to-right regimes: break dates as for markov
        labels, at, dates = break_outputs(ref_prob, names, frame.time, q)
        ds = ds.assign_coords({"break": labels})
        ds["break_prob"] = (("time", "break"), at, {"note": "p(break happened in month t)"})
        ds["break_date"] = (("break", "quantile"), dates, {"note": "posterior quantiles"})
    ds.attrs.update(
        {
            "reference_asset": d.assets[0],
            "assets": ",".join(d.assets),
            "asset_months": ",".join(f"{a}:{n}" for a, n in zip(d.assets, months, strict=True)),
            "chain": opts.chain,
            "k_regimes": opts.k_regimes,
            "order_by": opts.order_by,
            "transform": opts.transform,
            "regime_names": ",".join(names),
            "transition": opts.transition,
            "form": opts.form,
            "log_marginal_mean": float(pp.log_pred.sum(axis=1).mean()),
        }
    )
    return ds


def one_step_replicates(pp: PanelPosterior, tree, frame: FitFrame, spec: ModelSpec, seed: int = 0):
    """Reference asset's one-step replicates y_rep_t ~ p(y_t | every asset's past, θ): the
    regime drawn from the chain's one-step prediction, then its Normal, in natural units."""
    opts = Options.model_validate(spec.options)
    d = pp.design
    post = tree["posterior"]
    rng = np.random.default_rng(seed)
    u = rng.random(pp.predicted.shape[:2])[..., None]
    state = np.minimum((np.cumsum(pp.predicted, axis=-1) < u).sum(axis=-1), opts.k_regimes - 1)
    mean = np.take_along_axis(pp.mean_ref, state[..., None], axis=-1)[..., 0]
    sig = pp.sigma[:, 0, :][np.arange(len(state))[:, None], state]
    z = mean + sig * rng.standard_normal(mean.shape)
    natural = inverse_transform(d.y_mean[0] + d.y_sd[0] * z, opts.transform)
    time = frame.time[frame.fit.to_numpy()][opts.n_conditioning :]
    return xr.Dataset(
        {
            "y": (
                ("chain", "draw", "time"),
                natural.reshape(post.sizes["chain"], post.sizes["draw"], -1),
            )
        },
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "time": time.values},
    )
