"""A chain fit's parameters in natural units, draw by draw: the `posterior_natural` group of
`posterior.nc` (each variable with `units` and `long_name`), read by `regimes summary` and by
ArviZ as any posterior group. The sampled parameters stay on the model's standardised scale in
`posterior`; this view undoes that scale (`regimes.scaling`) for the quantities a reader
compares with other estimates: each regime's level (or drift), slopes, innovation scale,
transition matrix, expected durations, and the form's own (an anchor's half-life)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from regimes.draws import by_chain
from regimes.families.chain.data import ChainData
from regimes.families.chain.emissions import Emissions
from regimes.families.chain.passes import ChainPasses


def natural_parameters(
    post: xr.Dataset,
    passes: ChainPasses,
    data: ChainData,
    emissions: Emissions,
    names: list[str],
    *,
    target: str,
    units: str,
    time_varying: bool,
    per_series_chain: bool,
) -> xr.Dataset:
    """Every draw's parameters in natural units over (chain, draw, ...): one series (a Markov
    model) without an `asset` dimension, several (a panel) with one."""
    scaling, series = data.scaling, data.series
    panel = len(series) > 1
    log = scaling.transform == "log"
    changed = f"{'log ' if log else ''}{target}"
    lead = ("asset",) if panel else ()
    coords = {"regime": names, "regime_to": names, "term": data.terms, "asset": series}

    def per_series(values: np.ndarray, dims: tuple[str, ...], **attrs: str) -> xr.DataArray:
        """(D, A, ...) as (chain, draw, [asset,] ...)."""
        values = values if panel else values[:, 0]
        used = {d: coords[d] for d in (*lead, *dims) if d in coords}
        return by_chain(values, post, (*lead, *dims), used, **attrs)

    out: dict[str, xr.DataArray] = {}
    alpha = passes.alpha  # (D, A, K) model scale
    if emissions.intercept_kind == "drift":
        sd = np.array([scaling.y_sd_of(s) for s in series])
        out["drift"] = per_series(
            alpha * sd[None, :, None],
            ("regime",),
            units=f"change in {changed} per period",
            long_name=f"each regime's drift of {changed} per period",
        )
    else:
        level = np.stack([scaling.natural(alpha[:, a], s) for a, s in enumerate(series)], 1)
        at = "with the factors at their fit-window means" if data.terms else "(its mean)"
        out["level"] = per_series(
            level,
            ("regime",),
            units=units,
            long_name=f"each regime's level of {target} {at}",
        )
    if data.terms:
        slopes = np.stack(
            [scaling.slope(passes.beta[:, a], data.terms, s) for a, s in enumerate(series)], 1
        )  # (D, A, K, P); zero outside a regime's anchor set, as the model has it
        out["slope"] = per_series(
            slopes,
            ("regime", "term"),
            units=f"change in {changed} per unit of the factor",
            long_name=f"each regime's slope of {changed} on each factor",
        )
    out["sigma"] = _sigma(post, series, scaling, units="log points" if log else units)
    p = passes.P
    note = ""
    if time_varying:  # (D, N, K, K) every month: their average over the fit window
        p = p[:, data.fit].mean(axis=1)
        note = " (average over the fit window of the monthly matrices)"
    chain_dims = ("asset",) if per_series_chain else ()  # one chain per series, or shared
    dims = (*chain_dims, "regime", "regime_to")
    out["transition"] = by_chain(
        p,
        post,
        dims,
        {d: coords[d] for d in dims},
        units="1",
        long_name=f"transition probability{note}",
    )
    stay = np.diagonal(out["transition"].values, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore"):
        duration = 1.0 / (1.0 - stay)
    out["expected_duration"] = xr.DataArray(
        duration,
        dims=out["transition"].dims[:-1],
        coords={d: out["transition"][d] for d in out["transition"].dims[:-1]},
        attrs={"units": "periods", "long_name": f"expected duration of each regime{note}"},
    )
    out.update(emissions.natural_form(post))
    ds = xr.Dataset(out)
    ds.attrs["scale"] = f"natural units of {target}" + (" (log points for changes)" if log else "")
    return ds


def _sigma(post: xr.Dataset, series: list[str], scaling, units: str) -> xr.DataArray:
    """The innovation scale σ (whatever its dims) times each series' sd on its transformed
    scale: the one-month shock's size in the target's units (log points for a log target)."""
    sigma = post["sigma"]
    if "asset" in sigma.dims:
        sd = xr.DataArray(
            [scaling.y_sd_of(s) for s in series], dims="asset", coords={"asset": sigma["asset"]}
        )
    else:
        sd = scaling.y_sd_of(series[0])
    out = sigma * sd
    out.attrs = {"units": units, "long_name": "scale of the one-period innovations"}
    return out
