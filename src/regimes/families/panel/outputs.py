"""derived.nc of a fitted panel model, from its per-draw passes (`ChainPasses`): each asset's
price, fair value and deviation; per-asset and population sensitivities; the shared chain's (or
the reference asset's) regime probabilities, durations, transition matrix and most likely path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimes.draws import quantiles as quantiles_of
from regimes.draws import stack_draws
from regimes.families.base import Fit
from regimes.families.chain.derived import break_outputs, chain_variables, spell_variables
from regimes.families.chain.family import ChainFamily
from regimes.families.panel.options import Options
from regimes.families.panel.parts import anchor_sets


def derived_dataset(family: ChainFamily, fitted: Fit, quantiles: list[float]) -> xr.Dataset:
    """Per-asset price, fair value and deviation; per-asset and population sensitivities; the
    shared chain's regime probabilities, durations, transition matrix and most likely path."""
    frame, spec = fitted.frame, fitted.spec
    opts = Options.model_validate(spec.options)
    assembled = family.assemble(spec, frame)
    d, transitions = assembled.data, assembled.parts.chain.transitions
    regime_mask = anchor_sets(opts, d.terms, spec.name)
    pp = family.passes(fitted)
    post = fitted.posterior
    q = np.asarray(quantiles)
    fit = frame.fit.to_numpy()
    names = opts.names
    prob, fv_k, fv_mix = family.mixture(fitted, frame)
    price = frame.Y.to_numpy(dtype=float).T  # (A, N)
    deviation = 100.0 * (price[None] / fv_mix - 1.0)
    ref_prob = prob[:, 0]  # (D, N, K): the shared chain, or the reference asset's
    P_ref = pp.P[:, 0] if transitions.per_series else pp.P
    time_varying = transitions.time_varying
    factors = list(frame.factors)
    where = [factors.index(t) for t in d.terms]  # anchor terms among the factors
    assets = d.series

    in_set = (np.ones((opts.k_regimes, len(d.terms))) if regime_mask is None else regime_mask).T

    def coef_q(draws: np.ndarray) -> np.ndarray:
        """(D, A, K, P) draws -> (A, factor, K, Q) quantiles, NaN for a term an asset lacks or
        a regime's anchor set leaves out (and for transition covariates, which anchor nothing)."""
        out = np.full((len(assets), len(factors), opts.k_regimes, len(q)), np.nan)
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
        **chain_variables(
            ref_prob,
            P_ref,
            pp.viterbi_path,
            pp.switch_prob,
            fit,
            names,
            q,
            time_varying=time_varying,
        ),
        "intercept_pop": (
            ("regime", "quantile"),
            quantiles_of(a_pop, q),
            {"note": "population mean intercept per regime (standardised modelled price)"},
        ),
    }
    if d.terms:
        beta = stack_draws(post, "beta")  # (D, A, K, P)
        y_sd = np.array([d.scaling.y_sd[a] for a in assets])
        scale = y_sd[None, :, None, None] / np.array([d.scaling.x_sd[t] for t in d.terms])
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
        empty = np.full((len(assets), len(factors), opts.k_regimes, len(q)), np.nan)
        data_vars["coef"] = (("asset", "term", "regime", "quantile"), empty)
        data_vars["coef_pop"] = (("term", "regime", "quantile"), empty[0])
    if transitions.per_series:
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
            "asset": assets,
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
    ds = ds.assign(spell_variables(pp.paths, fit, frame.time, names, q))
    if time_varying:
        ds["transition_t"] = (("time", "regime", "regime_to"), np.median(P_ref, axis=0))
    if transitions.left_to_right:  # left-to-right regimes: break dates as for markov
        labels, at, dates = break_outputs(ref_prob, names, frame.time, q)
        ds = ds.assign_coords({"break": labels})
        ds["break_prob"] = (("time", "break"), at, {"note": "p(break happened in month t)"})
        ds["break_date"] = (("break", "quantile"), dates, {"note": "posterior quantiles"})
    ds.attrs.update(
        {
            "reference_asset": assets[0],
            "assets": ",".join(assets),
            "asset_months": ",".join(f"{a}:{n}" for a, n in zip(assets, months, strict=True)),
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
