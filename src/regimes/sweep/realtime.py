"""Real-time dating from an origins sweep: what a researcher reading the data at each month
would have estimated, against the final (latest-origin) estimate.

The smoothed regime probability at the last month of a fit window is the filtered one,
p(s_T | y_1..T), so the real-time probability at an origin is that run's `regime_prob` at its own
`sample_end`. The shift date is the first month of the final spell in which the final smoothed
probability of the regime is at least 0.5 (the month after the last spell below; none when the
regime is not in force at the final origin); the detection delay at a threshold is the months from
the shift date to the first origin (at or after it) whose real-time probability reached the
threshold, with an interval from the real-time probability's 5% and 95% posterior quantiles
(the 95% quantile reaching it first gives the short end, the 5% quantile the long end).

Regime labels are only identified within one fit: a fit at an early origin may call "regime 1"
what the final fit calls "regime 0" (quick fits especially). Before anything is compared, each
origin's regimes are relabelled to the permutation whose smoothed probabilities agree best with
the final fit's over the origin's own fit window (`align_regimes`); `label_agreement` says how
well they agree and `relabelled` which origins were permuted."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimes.errors import RunError
from regimes.files import write_atomic
from regimes.spells import months_between, spell_start
from regimes.sweep.combine import open_sweep
from regimes.sweep.figures import plot_realtime
from regimes.sweep.spec import HI, LO, Realtime

REALTIME_NC = "realtime.nc"


def first_origin(prob: np.ndarray, origins: pd.DatetimeIndex, after: pd.Timestamp, level: float):
    """The first origin at or after `after` whose probability reached `level` (NaT if none)."""
    if pd.isna(after):
        return pd.NaT
    hits = np.flatnonzero((origins >= after) & (np.nan_to_num(prob, nan=0.0) >= level))
    return origins[int(hits[0])] if len(hits) else pd.NaT


def _delay(shift: pd.Timestamp, origin: pd.Timestamp) -> float:
    return np.nan if pd.isna(shift) or pd.isna(origin) else float(months_between(shift, origin))


def align_regimes(ds: xr.Dataset) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """`ds` with each origin's `regime_prob` and `regime_prob_q` permuted along `regime` to agree
    best with the final origin's smoothed probabilities over the origin's fit-window months
    (score: mean over those months of sum_k p_final[t, k] · p_origin[t, π(k)], the expected share
    of months the two fits put in the same regime). Returns (aligned dataset, the permutation per
    origin (origin, regime), the best score per origin)."""
    prob = ds["regime_prob"].transpose("origin", "time", "regime").values
    k = prob.shape[-1]
    final = prob[-1]
    if "in_sample" in ds:
        window = ds["in_sample"].transpose("origin", "time").fillna(0).values.astype(bool)
    else:
        window = np.ones(prob.shape[:2], dtype=bool)
    perms = [list(p) for p in itertools.permutations(range(k))]
    chosen, scores = [], []
    for i in range(prob.shape[0]):
        months = window[i] & np.isfinite(prob[i]).all(axis=1) & np.isfinite(final).all(axis=1)
        if not months.any():
            chosen.append(list(range(k)))
            scores.append(np.nan)
            continue
        agree = [float((final[months] * prob[i][months][:, p]).sum(axis=1).mean()) for p in perms]
        best = int(np.argmax(agree))
        chosen.append(perms[best])
        scores.append(agree[best])
    order = np.array(chosen)
    out = ds.copy()
    for name in ("regime_prob", "regime_prob_q"):
        if name not in ds:
            continue
        da = ds[name].transpose("origin", "regime", ...)
        values = np.stack([da.values[i][order[i]] for i in range(len(order))])
        out[name] = da.copy(data=values).transpose(*ds[name].dims)
    return out, order, np.array(scores)


def realtime_dataset(ds: xr.Dataset, options: Realtime | None = None) -> xr.Dataset:
    """The real-time summary of a combined origins sweep (`open_sweep` of an origins sweep)."""
    options = options or Realtime()
    if "origin" not in ds.dims:
        raise RunError("real-time dating needs an origins sweep (a dataset with dimension origin)")
    origins = pd.DatetimeIndex(ds["origin"].values)
    ends = (
        pd.DatetimeIndex(pd.to_datetime(ds["sample_end"].values.astype(str)))
        if "sample_end" in ds
        else origins
    )
    at_end = xr.DataArray(ends, dims="origin", coords={"origin": origins})
    final = ds.isel(origin=-1)
    final_time = final["price"].dropna("time")["time"] if "price" in final else final["time"]
    out = xr.Dataset(coords={"origin": origins})
    out["realtime_deviation_pct"] = ds["deviation_pct"].sel(time=at_end).drop_vars("time")
    out["final_deviation_pct"] = final["deviation_pct"].sel(time=final_time).drop_vars("origin")
    out.attrs = {
        "what": "real-time estimates at each origin (fit window ending there) vs the final one",
        "final_origin": f"{origins[-1]:%Y-%m}",
    }
    if "regime_prob" not in ds:  # a model without regimes: the deviation known then only
        return out.load()
    ds, order, agreement = align_regimes(ds)
    out["label_agreement"] = ("origin", agreement)
    out["label_agreement"].attrs["meaning"] = (
        "expected share of the origin's fit-window months that it and the final fit put in the "
        "same regime, after relabelling"
    )
    out["relabelled"] = ("origin", (order != np.arange(order.shape[1])).any(axis=1).astype(int))
    regimes = [str(r) for r in ds["regime"].values]
    regime = options.regime or regimes[-1]
    if regime not in regimes:
        raise RunError(
            f"realtime.regime {regime!r} is not a regime of the runs ({', '.join(regimes)})"
        )
    rt = ds["regime_prob"].sel(time=at_end).drop_vars("time")
    rt_q = ds["regime_prob_q"].sel(time=at_end).drop_vars("time")
    out["realtime_prob"] = rt
    out["realtime_prob_q"] = rt_q
    out["realtime_regime"] = (
        "origin",
        [regimes[int(i)] for i in rt.fillna(-1).argmax("regime").values],
    )
    out["final_prob"] = final["regime_prob"].sel(time=final_time).drop_vars("origin")
    out["final_prob_q"] = final["regime_prob_q"].sel(time=final_time).drop_vars("origin")
    out = out.load()
    ftime = pd.DatetimeIndex(out["time"].values)
    fp = out["final_prob"].sel(regime=regime).values
    shift = spell_start(fp, ftime)
    shift_early = spell_start(out["final_prob_q"].sel(regime=regime, quantile=HI).values, ftime)
    shift_late = spell_start(out["final_prob_q"].sel(regime=regime, quantile=LO).values, ftime)
    p = out["realtime_prob"].sel(regime=regime).values
    p_hi = out["realtime_prob_q"].sel(regime=regime, quantile=HI).values
    p_lo = out["realtime_prob_q"].sel(regime=regime, quantile=LO).values
    det, delay, lo, hi = [], [], [], []
    for level in options.thresholds:
        o = first_origin(p, origins, shift, level)
        det.append(o)
        delay.append(_delay(shift, o))
        lo.append(_delay(shift, first_origin(p_hi, origins, shift, level)))
        hi.append(_delay(shift, first_origin(p_lo, origins, shift, level)))
    thr = {"threshold": options.thresholds}
    out["detection_origin"] = xr.DataArray(pd.DatetimeIndex(det), dims="threshold", coords=thr)
    out["detection_delay"] = xr.DataArray(delay, dims="threshold", coords=thr)
    out["detection_delay_lo"] = xr.DataArray(lo, dims="threshold", coords=thr)
    out["detection_delay_hi"] = xr.DataArray(hi, dims="threshold", coords=thr)
    out["detection_delay"].attrs["units"] = "months from shift_date"
    fmt = lambda ts: "" if pd.isna(ts) else f"{ts:%Y-%m}"  # noqa: E731
    out.attrs.update(
        {
            "regime": regime,
            "shift_date": fmt(shift),
            "shift_date_early": fmt(shift_early),
            "shift_date_late": fmt(shift_late),
            "shift_before_first_origin": int(not pd.isna(shift) and shift < origins[0]),
            "relabelled_origins": int(out["relabelled"].sum()),
        }
    )
    return out


def write_realtime(sweep_dir: str | Path, options: Realtime | None = None) -> list[Path]:
    """Write realtime.nc (atomically) and the "what we knew when" figure into the sweep folder."""
    sweep_dir = Path(sweep_dir)
    with open_sweep(sweep_dir) as ds:
        rt = realtime_dataset(ds, options)
    path = write_atomic(sweep_dir / REALTIME_NC, lambda tmp: rt.to_netcdf(tmp, engine="h5netcdf"))
    return [path, *plot_realtime(rt, sweep_dir / "figures")]


def detection_lines(rt: xr.Dataset) -> list[str]:
    """Plain sentences on the detection dates of a real-time summary."""
    if "detection_delay" not in rt:
        return ["no regimes: real-time deviation from fair value only"]
    regime, shift = rt.attrs["regime"], rt.attrs["shift_date"]
    if not shift:
        return [
            f"{regime}: not the most likely regime at the final origin {rt.attrs['final_origin']} "
            "(final smoothed probability below 0.5): no shift into it to date"
        ]
    lines = [
        f"{regime}: final estimate of the shift {shift} "
        f"(90% band {rt.attrs['shift_date_early'] or '?'}..{rt.attrs['shift_date_late'] or '?'})"
    ]
    if rt.attrs.get("relabelled_origins"):
        worst = float(np.nanmin(rt["label_agreement"].values))
        lines.append(
            f"  ({rt.attrs['relabelled_origins']} of {rt.sizes['origin']} origins had their regime "
            "labels permuted to match the final fit; lowest agreement with it "
            f"{worst:.2f})"
        )
    if rt.attrs.get("shift_before_first_origin"):
        lines.append(
            "  (the shift is before the first origin: the delays below only say how long the "
            "sweep took to see it, not how long it took to detect)"
        )
    for thr in rt["threshold"].values:
        row = rt.sel(threshold=thr)
        origin = row["detection_origin"].values
        if pd.isna(origin):
            lines.append(f"  p >= {thr:g}: not reached by {rt.attrs['final_origin']}")
            continue
        lo, hi = float(row["detection_delay_lo"]), float(row["detection_delay_hi"])
        band = "?" if np.isnan(lo) else f"{lo:.0f}"
        band += ".." + ("not yet" if np.isnan(hi) else f"{hi:.0f}")
        lines.append(
            f"  p >= {thr:g}: first at origin {pd.Timestamp(origin):%Y-%m}, "
            f"{float(row['detection_delay']):.0f} months after the shift (band {band})"
        )
    return lines
