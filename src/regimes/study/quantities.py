"""Numbers read off a run's derived.nc (or the study's descriptive results) with their 90%
interval, and the rule that sets them beside a figure the source research reports.

A quantity is named `kind` or `kind:argument` in study.toml, e.g. `r2`, `coef:real_rate`,
`deviation_at:latest` (panel runs: `deviation_at:latest:ASSET`), `gap_bp_max:2022-01`,
`break_date`, `regime_prob_at:latest:high`, `transition:low:high`,
`regime_fair_value:latest:high`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from regimes.config import parse_month
from regimes.errors import ConfigError
from regimes.figures import reference_view

if TYPE_CHECKING:
    from regimes.study.config import Comparison

LO, MID, HI = 0.05, 0.5, 0.95


@dataclass(frozen=True)
class Estimate:
    """A median with its 90% interval (numbers, or months as Timestamps), ready to print."""

    median: float | pd.Timestamp
    lo: float | pd.Timestamp
    hi: float | pd.Timestamp
    text: str
    note: str = ""
    # a month's posterior as a probability per month (a change point's), where it has one:
    # month verdicts then read the mass near the claim, not an interval that may span modes
    month_prob: pd.Series | None = None


def month_label(ts: pd.Timestamp) -> str:
    """A month as YYYY-MM."""
    return f"{ts:%Y-%m}"


def fmt_value(x: float, units: str = "") -> str:
    """A number rounded for a table cell, with its units; n/a when not finite."""
    if not math.isfinite(x):
        return "n/a"
    a = abs(x)
    s = f"{x:.3g}" if a < 1 else f"{x:.1f}" if a < 100 else f"{x:.0f}"
    return s.replace("-", "−") + units


def _band(med: float, lo: float, hi: float, units: str = "", scale: float = 1.0) -> Estimate:
    m, a, b = med * scale, lo * scale, hi * scale
    if math.isclose(a, b) and math.isclose(a, m):
        return Estimate(m, a, b, fmt_value(m, units))
    return Estimate(
        m, a, b, f"{fmt_value(m, units)} ({fmt_value(a, units)} to {fmt_value(b, units)})"
    )


def _q(da: xr.DataArray) -> tuple[float, float, float]:
    return tuple(float(da.sel(quantile=q, method="nearest")) for q in (MID, LO, HI))  # type: ignore[return-value]


def _at(derived: xr.Dataset, when: str) -> pd.Timestamp:
    """The month `when` names ('latest': the last month with an observed price)."""
    if when in ("", "latest"):
        price = derived["price"]
        return pd.Timestamp(price["time"].values[np.flatnonzero(np.isfinite(price.values))[-1]])
    ts = parse_month(when)
    if ts not in pd.DatetimeIndex(derived["time"].values):
        raise ConfigError(f"month {when} is outside the run's months")
    return ts


def r2(derived: xr.Dataset, _: str) -> Estimate:
    """Bayesian R² of a static or random-walk run (posterior median and 90% interval), in %."""
    return _band(*_q(derived["r2_draws_q"]), units="%", scale=100.0)


def r2_ols(derived: xr.Dataset, _: str) -> Estimate:
    """The plain OLS R² of the run's regression over its fit window (the articles' statistic)."""
    x = 100.0 * float(derived.attrs["r2_ols"])
    return Estimate(x, x, x, fmt_value(x, "%"), "OLS point estimate")


def coef(derived: xr.Dataset, term: str, scale: float = 1.0, units: str = "") -> Estimate:
    """A static coefficient (natural units); a random-walk coefficient at the latest month."""
    da = derived["coef"].sel(term=term)
    note = ""
    if "time" in da.dims:
        t = _at(derived, "latest")
        da, note = da.sel(time=t), f"at {month_label(t)}"
    est = _band(*_q(da), units=units, scale=scale)
    return Estimate(est.median, est.lo, est.hi, est.text, note or est.note)


def coef_bp(derived: xr.Dataset, term: str) -> Estimate:
    """A coefficient of a yield regression in basis points (yield in percent × 100)."""
    return coef(derived, term, scale=100.0, units=" bp")


def deviation_at(derived: xr.Dataset, arg: str) -> Estimate:
    """Deviation of the price from fair value in % at a month ('latest' by default); on a panel
    run, `WHEN:ASSET` names the asset (default: the run's target), and 'latest' is that asset's
    last observed month."""
    when, _, asset = arg.partition(":")
    note = ""
    if "asset" in derived.dims:
        asset = asset or str(derived.attrs.get("target", derived["asset"].values[0]))
        known = [str(a) for a in derived["asset"].values]
        if asset not in known:
            raise ConfigError(f"deviation_at: no asset {asset!r} in the run ({', '.join(known)})")
        derived, note = derived.sel(asset=asset), f"{asset}, "
    elif asset:
        raise ConfigError(f"deviation_at:{arg}: the run has one target, no asset {asset!r}")
    t = _at(derived, when)
    est = _band(*_q(derived["deviation_pct"].sel(time=t)), units="%")
    return Estimate(est.median, est.lo, est.hi, est.text, f"{note}at {month_label(t)}")


def gap_bp_max(derived: xr.Dataset, since: str) -> Estimate:
    """Largest gap, in bp, of the observed target above its fair value from month `since` on
    (the month of the largest median gap; interval from the fair value's quantiles there)."""
    sub = derived.sel(time=slice(parse_month(since or "2022-01"), None))
    gap = 100.0 * (sub["price"] - sub["fair_value"])
    med = gap.sel(quantile=MID, method="nearest")
    if not np.isfinite(med.values).any():
        raise ConfigError(f"no observed months after {since}")
    i = int(np.nanargmax(med.values))
    t = pd.Timestamp(sub["time"].values[i])
    lo = float(gap.sel(quantile=HI, method="nearest")[i])  # price − upper fair value
    hi = float(gap.sel(quantile=LO, method="nearest")[i])
    est = _band(float(med[i]), lo, hi, units=" bp")
    return Estimate(est.median, est.lo, est.hi, est.text, f"at {month_label(t)}")


def positive_since(derived: xr.Dataset, term: str) -> Estimate:
    """A time-varying coefficient at the latest month (median, 90% interval), with since when its
    posterior median (and its 5% quantile) has stayed above zero — the "did it turn positive,
    and when" of the source research."""
    da = derived["coef"].sel(term=term)
    t_last = _at(derived, "latest")
    da = da.sel(time=slice(None, t_last))
    times = pd.DatetimeIndex(da["time"].values)

    def since(values: np.ndarray) -> pd.Timestamp | None:
        neg = np.flatnonzero(~(values > 0))
        if neg.size == 0:
            return times[0]
        return None if neg[-1] == len(values) - 1 else times[neg[-1] + 1]

    med = since(da.sel(quantile=MID, method="nearest").values)
    band = since(da.sel(quantile=LO, method="nearest").values)
    latest = coef(derived, term)
    if med is None:
        when = f"median not positive at {month_label(t_last)}"
    elif band is None:
        when = f"median positive since {month_label(med)}; 90% band still includes zero"
    else:
        when = f"median positive since {month_label(med)}; 90% band above zero since {month_label(band)}"
    return Estimate(latest.median, latest.lo, latest.hi, f"{latest.text}; {when}", latest.note)


def rolling_coef_at(derived: xr.Dataset, term: str) -> Estimate:
    """The trailing rolling-OLS baseline coefficient at the latest month, and since when it has
    been positive (a point estimate: OLS has no posterior)."""
    da = derived["rolling_coef"].sel(term=term).dropna("time")
    x = float(da[-1])
    neg = np.flatnonzero(~(da.values > 0))
    note = ""
    if x > 0:
        first = da["time"].values[neg[-1] + 1] if neg.size else da["time"].values[0]
        note = f"positive since {month_label(pd.Timestamp(first))}"
    return Estimate(
        x,
        x,
        x,
        fmt_value(x) + (f" ({note})" if note else ""),
        f"at {month_label(pd.Timestamp(da['time'].values[-1]))}",
    )


def break_date(derived: xr.Dataset, which: str) -> Estimate:
    """A change point's posterior median month and 90% interval. A quantile past the window
    (the posterior gives the break-free path that much mass) is reported as the window's last
    month, with the probability of a break inside the window in the note."""
    m = int(which) if which else 0
    da = derived["break_date"].isel(**{"break": m})
    vals = [pd.Timestamp(da.sel(quantile=q, method="nearest").values) for q in (MID, LO, HI)]
    fit = pd.DatetimeIndex(derived["time"].values[derived["in_sample"].values.astype(bool)])
    p_in = float(derived["break_prob"].isel(**{"break": m}).sum())
    note = f"P(break inside {fit[0]:%Y-%m}..{fit[-1]:%Y-%m}) = {p_in:.2f}"
    if pd.isna(vals[1]):  # not even 5% posterior mass on a break inside the window
        return Estimate(math.nan, math.nan, math.nan, "no break in the window", note)
    shown = [v if not pd.isna(v) else fit[-1] for v in vals]
    text = " ".join(
        [
            month_label(shown[0]) if not pd.isna(vals[0]) else "no break in the window",
            f"({month_label(shown[1])} to {month_label(shown[2])}"
            + ("" if not pd.isna(vals[2]) else " or later")
            + ")",
        ]
    )
    prob = derived["break_prob"].isel(**{"break": m}).to_series()
    return Estimate(shown[0], shown[1], shown[2], text, note, month_prob=prob)


def regime_prob_at(derived: xr.Dataset, arg: str) -> Estimate:
    """Posterior probability of a regime at a month: `when:regime` (median, 90% interval)."""
    when, _, regime = arg.partition(":")
    if regime not in derived["regime"].values:
        raise ConfigError(f"no regime {regime!r}; regimes are {list(derived['regime'].values)}")
    t = _at(derived, when)
    est = _band(*_q(derived["regime_prob_q"].sel(time=t, regime=regime)))
    return Estimate(est.median, est.lo, est.hi, est.text, f"at {month_label(t)}")


def _regime(derived: xr.Dataset, regime: str) -> str:
    """`regime`, checked to be one of the run's regimes."""
    names = [str(r) for r in derived["regime"].values] if "regime" in derived.dims else []
    if regime not in names:
        raise ConfigError(f"no regime {regime!r}; regimes are {names}")
    return regime


def transition(derived: xr.Dataset, arg: str) -> Estimate:
    """The probability of moving from one regime to another in one period, `FROM:TO` (median,
    90% interval); covariate-driven transitions at the latest month."""
    src, _, dst = arg.partition(":")
    da = derived["transition"].sel(regime=_regime(derived, src), regime_to=_regime(derived, dst))
    note = ""
    if "time" in da.dims:
        t = _at(derived, "latest")
        da, note = da.sel(time=t), f"at {month_label(t)}"
    est = _band(*_q(da))
    return Estimate(est.median, est.lo, est.hi, est.text, note)


def regime_fair_value(derived: xr.Dataset, arg: str) -> Estimate:
    """A regime's fair value at a month, `WHEN:REGIME`: the target's level if that regime held
    (for a switching-mean model, the regime's mean), in the target's units."""
    when, _, regime = arg.partition(":")
    t = _at(derived, when)
    da = derived["fair_value_by_regime"].sel(regime=_regime(derived, regime), time=t)
    est = _band(*_q(da))
    return Estimate(est.median, est.lo, est.hi, est.text, f"at {month_label(t)}")


EXTRACTORS: dict[str, Callable[[xr.Dataset, str], Estimate]] = {
    "r2": r2,
    "r2_ols": r2_ols,
    "coef": coef,
    "coef_bp": coef_bp,
    "deviation_at": deviation_at,
    "gap_bp_max": gap_bp_max,
    "positive_since": positive_since,
    "rolling_coef_at": rolling_coef_at,
    "break_date": break_date,
    "regime_prob_at": regime_prob_at,
    "transition": transition,
    "regime_fair_value": regime_fair_value,
}


PER_ASSET = {"deviation_at"}  # kinds that read a panel's assets themselves (`WHEN:ASSET`)


def extract(derived: xr.Dataset, quantity: str) -> Estimate:
    """Evaluate a quantity name (`kind` or `kind:argument`) on a run's derived.nc; on a panel
    run, kinds that name no asset read its reference asset (`figures.reference_view`)."""
    kind, _, arg = quantity.partition(":")
    if kind not in EXTRACTORS:
        raise ConfigError(f"unknown quantity {quantity!r}; known kinds: {', '.join(EXTRACTORS)}")
    if kind not in PER_ASSET:
        derived = reference_view(derived)
    return EXTRACTORS[kind](derived, arg)


AGREE_MASS = 0.5  # posterior mass near a claimed month from which the claim agrees
DIFFER_MASS = 0.05  # and below which it differs (as a month outside a 90% interval)


def _judge_month_mass(ref: pd.Timestamp, tol: int, prob: pd.Series) -> tuple[str, str]:
    """A claimed month against a posterior per month: the mass within ± `tol` months of it.
    A break posterior can sit in places far apart (2012 and the sample's last months); the
    interval spanning them would hold any claimed month between."""
    lo, hi = ref - pd.DateOffset(months=tol), ref + pd.DateOffset(months=tol)
    mass = float(prob[(prob.index >= lo) & (prob.index <= hi)].sum())
    where = f"P({month_label(lo)}..{month_label(hi)}) = {mass:.2f}"
    if mass >= AGREE_MASS:
        return "agrees", f"{where}: most of our posterior is near {month_label(ref)}"
    if mass < DIFFER_MASS:
        return (
            "differs",
            f"{where}: our posterior puts under {DIFFER_MASS:.0%} near {month_label(ref)}",
        )
    return "inconclusive", f"{where}: some but not most of our posterior is near {month_label(ref)}"


def judge(cmp: Comparison, est: Estimate | None) -> tuple[str, str]:
    """The verdict ('agrees', 'differs', 'inconclusive', 'cannot be computed') and a reason."""
    if cmp.kind == "none":
        return "cannot be computed", cmp.why
    if est is None:
        return "cannot be computed", "the run behind it failed"
    if cmp.kind == "month" and est.month_prob is not None:
        return _judge_month_mass(parse_month(str(cmp.value)), int(cmp.tol), est.month_prob)
    if cmp.kind == "month":
        ref = parse_month(str(cmp.value))
        if pd.isna(est.lo) or pd.isna(est.hi):
            return "differs", "our posterior puts under 5% on such a month (see the note)"
        lo = est.lo - pd.DateOffset(months=int(cmp.tol))
        hi = est.hi + pd.DateOffset(months=int(cmp.tol))
        ok = lo <= ref <= hi
        tol = f" ± {int(cmp.tol)} months" if cmp.tol else ""
        return (
            ("agrees", f"{month_label(ref)} inside our interval{tol}")
            if ok
            else (
                "differs",
                f"{month_label(ref)} outside our interval{tol}",
            )
        )
    lo, hi = float(est.lo), float(est.hi)
    if math.isnan(lo) or math.isnan(hi):
        return "differs", "no estimate where the research reports one"
    if cmp.kind == "value":
        v = float(cmp.value)  # type: ignore[arg-type]
        ok = lo - cmp.tol <= v <= hi + cmp.tol
        tol = f" widened by {fmt_value(cmp.tol)}" if cmp.tol else ""
        where = "inside" if ok else "outside"
        return ("agrees" if ok else "differs"), f"reported {fmt_value(v)} {where} our interval{tol}"
    if cmp.kind == "sign":
        side, v = ("above", 0.0) if cmp.value == "positive" else ("below", 0.0)
    else:
        side, v = cmp.kind, float(cmp.value)  # type: ignore[arg-type]
    above, below = lo > v, hi < v
    if (side == "above" and above) or (side == "below" and below):
        return "agrees", f"whole interval {side} {fmt_value(v)}"
    if (side == "above" and below) or (side == "below" and above):
        return "differs", f"whole interval on the other side of {fmt_value(v)}"
    return "inconclusive", f"our interval includes {fmt_value(v)}"
