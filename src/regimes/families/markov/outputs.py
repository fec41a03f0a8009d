"""derived.nc of a fitted Markov-switching model, from its per-draw passes (`ChainPasses`):
regime probabilities, fair value by regime and mixed, durations, the transition matrix, the most
likely path and, for change points, break dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimes.draws import quantiles as quantiles_of
from regimes.draws import stack_draws
from regimes.families.base import Fit
from regimes.families.chain.derived import (
    break_outputs,
    chain_variables,
    regime_reversion,
    spell_variables,
)
from regimes.families.chain.family import ChainFamily
from regimes.families.markov.options import Options
from regimes.families.schema import fair_value_variables


def derived_dataset(family: ChainFamily, fit: Fit, quantiles: list[float]) -> xr.Dataset:
    """Regime probabilities, fair value by regime and mixed, durations, transition matrix, paths."""
    frame, spec = fit.frame, fit.spec
    opts = Options.model_validate(spec.options)
    passes = family.passes(fit)
    transitions = family.assemble(spec, frame).parts.chain.transitions
    post = fit.posterior
    q = np.asarray(quantiles)
    fit_mask = frame.fit.to_numpy()
    names = opts.names
    prob, fv_k, fv_mix = family.mixture(fit, frame)
    prob, fv_k, fv_mix = prob[:, 0], fv_k[:, 0], fv_mix[:, 0]  # one series, one chain
    time_varying = transitions.time_varying
    ds = xr.Dataset(
        {
            **fair_value_variables(frame, fv_mix, q),
            **chain_variables(
                prob,
                passes.P,
                passes.viterbi_path,
                passes.switch_prob,
                fit_mask,
                names,
                q,
                time_varying=time_varying,
            ),
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
            np.median(passes.P, axis=0),
            {"note": "posterior median of the month-t matrix (move from t to t+1)"},
        )
        ds["expected_duration"].attrs["note"] = "1 / (1 − P_t[k, k]) at month t's covariates"
    ds = ds.assign(spell_variables(passes.paths, fit_mask, frame.time, names, q))
    terms = family.assemble(spec, frame).data.terms
    if terms:  # each regime's slopes in natural units (loadings on changes for form "loadings")
        scaling = frame.scaling(opts.transform)
        slopes = quantiles_of(scaling.slope(passes.beta[:, 0], terms), q)  # (K, P, Q)
        absent = (passes.beta[:, 0] == 0).all(axis=0)  # outside a regime's anchor set: NaN
        slopes = np.where(absent[..., None], np.nan, slopes)
        coef = np.full((len(frame.factors), opts.k_regimes, len(q)), np.nan)  # covariates: NaN
        coef[[list(frame.factors).index(t) for t in terms]] = np.moveaxis(slopes, 1, 0)
        log_word = "log " if opts.transform == "log" else ""
        ds["coef"] = (
            ("term", "regime", "quantile"),
            coef,
            {
                "long_name": "each regime's coefficient in natural units",
                "units": f"change in {log_word}{frame.target} per unit of the factor",
            },
        )
    if opts.form != "loadings":  # is each regime's level fair value an anchor while it holds?
        n_terms = (passes.beta[:, 0] != 0).any(axis=0).sum(axis=-1)  # (K,) estimated slopes
        price = frame.y.to_numpy(dtype=float)
        ds = ds.assign(regime_reversion(fv_k, price, passes.paths, fit_mask, n_terms, q))
    if opts.form == "loadings":  # the drift: each regime's mean monthly change beyond the loadings
        drift = passes.alpha[:, 0] * frame.scaling(opts.transform).y_sd_of()  # (D, K)
        ds["drift"] = (
            ("regime", "quantile"),
            quantiles_of(drift, q),
            {"long_name": "each regime's drift per period", "units": "change in "
             f"{'log ' if opts.transform == 'log' else ''}{frame.target} per period"},
        )  # fmt: skip
        ds.attrs["fair_value_kind"] = "one-step"
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
    if passes.volatility_prob is not None:
        vol = np.full(
            (passes.volatility_prob.shape[0], len(fit_mask), opts.volatility_regimes), np.nan
        )
        vol[:, np.flatnonzero(fit_mask)[opts.n_conditioning :]] = passes.volatility_prob
        ds = ds.assign_coords({"volatility": opts.volatility_labels})
        ds["volatility_prob"] = (
            ("time", "volatility"),
            vol.mean(axis=0),
            {"note": "smoothed probability of each regime of the volatility chain (fit window)"},
        )
    if transitions.left_to_right:
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
            "log_marginal_mean": float(passes.log_pred.sum(axis=1).mean()),
        }
    )
    return ds
