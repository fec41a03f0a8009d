"""The model's input frame: target and factors on one monthly index, split into fit and forecast.

A *variable* named in a config is either a factor (see `regimes.factors.FACTORS`), built from
catalog series by its own recipe, or a catalog series id (case-insensitive), read as is. The frame keeps every month where the factors exist, so fair value continues out of
sample past the fit window to the latest month.

Gap rule: a single missing month inside a series (e.g. October 2025, absent from every BLS
series after the shutdown) is filled with the previous month's value, the value an observer
had at the time; longer gaps stay missing. Without this, one missing month would blank out
every trailing-window factor (a 24-month average) for two years.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regimes import factors as fx
from regimes.data import CATALOG, get_series, load_monthly, load_series
from regimes.data.catalog import PERIOD_STARTS
from regimes.data.checks import check_values, check_window
from regimes.errors import ConfigError, DataError
from regimes.factors import SeriesLoader
from regimes.scaling import Scaling


def series_id(name: str) -> str | None:
    """The catalog id a variable names (ids match case-insensitively: "copper" is COPPER), or
    None when it names no catalog series."""
    if name in CATALOG:
        return name
    return name.upper() if isinstance(name, str) and name.upper() in CATALOG else None


def make_loader(data_dir: Path, frequency: str = "M") -> SeriesLoader:
    """A memoised loader of catalog series: monthly-aligned ("M"), or native quarterly ("Q")."""
    cache: dict[str, pd.Series] = {}

    def load(sid: str) -> pd.Series:
        if sid not in cache:
            if frequency == "Q":
                native = get_series(sid).frequency
                if native != "Q":
                    raise DataError(
                        f"series {sid} is {native}-frequency; an experiment with "
                        "data.frequency = 'Q' needs quarterly series"
                    )
                cache[sid] = load_series(sid, data_dir)
            else:
                cache[sid] = fill_single_gaps(load_monthly([sid], data_dir)[sid])
        return cache[sid]

    return load


def fill_single_gaps(series: pd.Series) -> pd.Series:
    """Carry the previous value into isolated one-month gaps (never past the last observation)."""
    last = series.last_valid_index()
    if last is None:
        return series
    filled = series.ffill(limit=1)
    gap_before = series.isna() & series.shift(1).notna() & series.shift(-1).notna()
    return series.where(~gap_before | (series.index > last), filled)


TRANSFORM_OPS = ("lag", "diff", "log", "growth", "rolling_mean")


def apply_transform(series: pd.Series, op: str, periods: int = 1) -> pd.Series:
    """A declared transform of a series on its own periods: `lag` (value `periods` earlier),
    `diff` (change over `periods`), `log` (positive values only), `growth` (percent change over
    `periods`), `rolling_mean` (mean of the last `periods`, complete windows only)."""
    if op == "lag":
        return series.shift(periods)
    if op == "diff":
        return series.diff(periods)
    if op == "log":
        bad = series[series <= 0]
        if len(bad):
            raise DataError(
                f"log of {series.name}: {len(bad)} non-positive value(s), first "
                f"{bad.index[0]:%Y-%m} ({bad.iloc[0]}); use op = 'growth' or 'diff' instead"
            )
        return np.log(series)
    if op == "growth":
        return 100.0 * (series / series.shift(periods) - 1.0)
    if op == "rolling_mean":
        return series.rolling(periods, min_periods=periods).mean()
    raise ConfigError(f"unknown transform op {op!r}; use one of {', '.join(TRANSFORM_OPS)}")


def compute_variable(
    name: str,
    load: SeriesLoader,
    transforms: Mapping[str, Any] | None = None,
    supplied: Mapping[str, pd.Series] | None = None,
) -> pd.Series:
    """One config variable as a series on the loader's periods: a series the caller supplied
    (a column of the user's own DataFrame), a declared transform of another variable, a factor
    by its recipe, else a catalog series."""
    transforms = transforms or {}
    if supplied is not None and name in supplied:
        return pd.Series(supplied[name], dtype="float64").rename(name)
    if name in transforms:
        spec = transforms[name]
        base = compute_variable(spec.of, load, transforms, supplied).dropna()
        return apply_transform(base, spec.op, spec.periods).rename(name)
    if name in fx.FACTORS:
        return fx.factor_series(name, load)
    sid = series_id(name)
    get_series(sid or name)  # an unknown name: UnknownSeriesError with suggestions
    return load(sid or name).rename(name)


def variable_units(name: str) -> str:
    """Units of a config variable, for axis labels."""
    if name in fx.FACTORS:
        return fx.FACTORS[name].units
    sid = series_id(name)
    return CATALOG[sid].units if sid else ""


def catalog_series(name: str) -> list[str]:
    """The catalog series ids a config variable is computed from (a factor: its recipe's inputs,
    found by tracing the series its loader asks for; a series: itself)."""
    if name not in fx.FACTORS:
        sid = series_id(name)
        return [sid] if sid else []
    found: list[str] = []

    def record(sid: str) -> pd.Series:
        if sid not in found:
            found.append(sid)
        return pd.Series(dtype=float, index=pd.DatetimeIndex([]))  # only the ids are wanted

    for src in fx.FACTORS[name].recipe.values():
        try:
            record(src) if isinstance(src, str) else src(record)
        except Exception:  # a recipe may fail on empty data after naming its inputs
            continue
    return found


@dataclass(frozen=True)
class FitFrame:
    """Target and factors on a monthly index, with the fit window marked."""

    target: str
    factors: tuple[str, ...]
    frame: pd.DataFrame  # columns: target, *factors; index: month starts
    fit: pd.Series  # bool per month: inside the fit window
    units: str = ""
    attrs: dict = field(default_factory=dict)
    scale_window: pd.Series | None = (
        None  # months whose moments standardise the data (default: fit)
    )
    train_window: pd.Series | None = (
        None  # months whose observations the likelihood uses (default: fit)
    )
    # a panel (the `panel` family): every asset's column is in `frame`, the target first among
    # them; non-reference assets may be NaN inside the fit window (masked, never filled)
    assets: tuple[str, ...] = ()
    asset_factors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # a scaling pinned to this frame (a simulated frame keeps its source frame's), else made from
    # the scale window's moments (`scaling`)
    fixed_scaling: Scaling | None = None

    def scaling(self, how: str) -> Scaling:
        """How a model with target transform `how` puts this frame on its scale: the pinned
        `fixed_scaling`, else the moments of every target series and factor on the scale window
        (a panel asset with too few months there: on the fit window)."""
        if self.fixed_scaling is not None:
            if self.fixed_scaling.transform != how:
                raise ValueError(
                    f"this frame's scaling is pinned for transform {self.fixed_scaling.transform!r}"
                    f", not {how!r}"
                )
            return self.fixed_scaling
        targets = {a: self.frame[a].to_numpy(dtype=float) for a in self.panel_assets}
        factors = {f: self.frame[f].to_numpy(dtype=float) for f in self.factors}
        fit = np.asarray(self.fit.to_numpy(), dtype=bool)
        return Scaling.of(targets, factors, self.scale, fit, how)  # type: ignore[arg-type]

    @property
    def scale(self) -> np.ndarray:
        """Bool mask of the months used for standardisation constants.

        Normally the fit window; a leave-future-out refit keeps its own (shorter) window here while
        its fit window is extended by one month to score the next observation."""
        mask = self.fit if self.scale_window is None else self.scale_window
        return np.asarray(mask.to_numpy(), dtype=bool)

    @property
    def train(self) -> np.ndarray:
        """Bool mask of the months whose observations the likelihood uses.

        Normally the fit window; a leave-future-out refit padded to the full window (so every
        refit has the same shapes and reuses one compiled model) trains on its first months only."""
        mask = self.fit if self.train_window is None else self.train_window
        return np.asarray(mask.to_numpy(), dtype=bool)

    @property
    def time(self) -> pd.DatetimeIndex:
        """All months with factors (fit window and out-of-sample continuation)."""
        return pd.DatetimeIndex(self.frame.index)

    @property
    def y(self) -> pd.Series:
        """The observed target over all months (NaN where not observed)."""
        return self.frame[self.target]

    @property
    def panel_assets(self) -> tuple[str, ...]:
        """The assets a panel model sees, the target (reference asset) first; the target alone
        for a single-asset frame."""
        return (self.target, *[a for a in self.assets if a != self.target])

    @property
    def Y(self) -> pd.DataFrame:
        """Every asset's observed series over all months (NaN where not observed)."""
        return self.frame[list(self.panel_assets)]

    def anchor_terms(self, asset: str) -> tuple[str, ...]:
        """The factors an asset is anchored on (`asset_factors`, default: every factor)."""
        return tuple(self.asset_factors.get(asset, self.factors))

    @property
    def X(self) -> pd.DataFrame:
        """The factor matrix over all months."""
        return self.frame[list(self.factors)]

    def data_hash(self) -> str:
        """sha256 of the frame's values and dates: identifies the exact data a run used."""
        h = hashlib.sha256()
        h.update(",".join(self.frame.columns).encode())
        h.update(np.asarray(self.frame.index.asi8).tobytes())
        h.update(np.ascontiguousarray(self.frame.to_numpy(dtype=float)).tobytes())
        h.update(np.asarray(self.fit.to_numpy(), dtype=bool).tobytes())
        return h.hexdigest()


def build_frame(
    target: str,
    factors: list[str] | tuple[str, ...],
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    data_dir: Path,
    *,
    predict_end: str = "latest",
    min_obs: int = 24,
    frequency: str = "M",
    loader: SeriesLoader | None = None,
    transforms: Mapping[str, Any] | None = None,
    supplied: Mapping[str, pd.Series] | None = None,
    assets: Sequence[str] = (),
    asset_factors: Mapping[str, Sequence[str]] | None = None,
) -> FitFrame:
    """Assemble target and factors (with any declared `transforms`: name -> spec with `of`,
    `op`, `periods`; `supplied`: the user's own series by name, used before the catalog); check
    the fit window is complete and long enough, every value finite, the target and factors
    varying and not collinear there (`regimes.data.checks`). With `assets` (a panel, the target among them)
    the other assets' columns follow the factors: they may start later or have gaps inside the
    window (left NaN); the fit window is the target's and the factors'."""
    load = loader or make_loader(data_dir, frequency)
    others = [a for a in assets if a != target]
    columns: Mapping[str, pd.Series] = {
        name: compute_variable(name, load, transforms, supplied)
        for name in [target, *factors, *others]
    }
    if len(set(columns)) != 1 + len(factors) + len(others):
        raise ConfigError(
            f"data.factors must not repeat the target or a factor: {[target, *factors]}"
        )
    full = regular_grid(pd.DataFrame(columns).sort_index(), frequency)
    frame = full[[target, *factors]]  # what must be complete in the fit window
    label = _period_label(frequency)
    present = frame.notna()
    if start is None:  # "earliest": the first month where the target and all factors exist
        complete = frame.dropna()
        if complete.empty:
            raise DataError(f"no month has all of {list(frame.columns)}; check data availability")
        start = complete.index[0]
    _check_coverage(frame, present, start, end, label, frequency)
    in_window = (frame.index >= start) & (frame.index <= end)
    window = frame.loc[in_window]
    holes = {c: window.index[~present.loc[in_window, c].to_numpy()] for c in frame.columns}
    holes = {c: idx for c, idx in holes.items() if len(idx)}
    if holes:
        raise DataError(_holes_message(holes, start, end, label))
    if len(window) < min_obs:
        raise DataError(
            f"fit window {start:%Y-%m}..{end:%Y-%m} holds {len(window)} complete months, fewer than "
            f"data.min_obs = {min_obs}; widen the window"
        )
    # after the window: the months that follow it while every factor exists (out of sample)
    after = frame.index > end
    if factors:
        gap = after & ~present[list(factors)].all(axis=1).to_numpy()
        if gap.any():
            after &= frame.index < frame.index[np.flatnonzero(gap)[0]]
    if predict_end != "latest":
        after &= frame.index <= pd.Timestamp(predict_end)
    keep = in_window | after
    frame, in_window = full.loc[keep], in_window[keep]
    check_values(frame, label)  # finite, of a size float64 standardisation handles
    check_window(window, [target, *factors], label)  # varying, not collinear
    actual_end = window.index[-1]
    attrs = {"fit_start": f"{window.index[0]:%Y-%m}", "fit_end": f"{actual_end:%Y-%m}"}
    if assets:
        attrs["asset_months"] = _asset_months(frame, in_window, list(assets))
    return FitFrame(
        target=target,
        factors=tuple(factors),
        frame=frame,
        fit=pd.Series(in_window, index=frame.index, name="in_sample"),
        units=variable_units(target),
        attrs=attrs,
        assets=tuple(assets),
        asset_factors={a: tuple(t) for a, t in (asset_factors or {}).items()},
    )


def _asset_months(frame: pd.DataFrame, in_window: np.ndarray, assets: list[str]) -> str:
    """How many fit-window months each asset contributes ("COPPER:317,SILVER:290"); an asset
    with none is an error naming `data.assets`."""
    counts = {a: int(frame.loc[in_window, a].notna().sum()) for a in assets}
    empty = [a for a, n in counts.items() if n == 0]
    if empty:
        raise DataError(
            f"data.assets: {empty} have no observation in the fit window "
            f"{frame.index[in_window][0]:%Y-%m}..{frame.index[in_window][-1]:%Y-%m}; drop them "
            "or move the window"
        )
    return ",".join(f"{a}:{n}" for a, n in counts.items())


def regular_grid(frame: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """The frame on a regular grid of periods (month or quarter starts) from its first to its
    last date: a period missing from every series becomes a row of NaNs, so a hole can never be
    skipped over (a fit would otherwise put 1999Q4 next to 2000Q2)."""
    if frame.empty:
        return frame
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=PERIOD_STARTS[frequency])
    off_grid = frame.index.difference(grid)
    if len(off_grid):
        raise DataError(
            f"dates {[f'{d:%Y-%m-%d}' for d in off_grid[:3]]} are not "
            f"{'month' if frequency == 'M' else 'quarter'} starts; data.frequency = "
            f"{frequency!r} needs one value per period dated its first day"
        )
    return frame.reindex(grid)


def _period_label(frequency: str) -> Callable[[pd.Timestamp], str]:
    if frequency == "Q":
        return lambda ts: f"{ts.year}Q{(ts.month - 1) // 3 + 1}"
    return lambda ts: f"{ts:%Y-%m}"


def _series_behind(name: str) -> str:
    ids = catalog_series(name)
    return f"{name} ({', '.join(ids)})" if ids and ids != [name] else name


def _period_start(ts: pd.Timestamp, frequency: str) -> pd.Timestamp:
    """The first day of the month (or quarter) holding `ts`."""
    return pd.Timestamp(ts).to_period("Q" if frequency == "Q" else "M").start_time


def _check_coverage(
    frame: pd.DataFrame,
    present: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    label: Callable[[pd.Timestamp], str],
    frequency: str,
) -> None:
    """The data must cover the whole window asked for: a series that starts after data.start or
    ends before data.end is an error, never a silently shorter fit."""
    problems = []
    first, last = _period_start(start, frequency), _period_start(end, frequency)
    for name in frame.columns:
        valid = frame.index[present[name].to_numpy()]
        if not len(valid):
            problems.append(f"{_series_behind(name)} has no observations")
        elif valid[0] > first:
            problems.append(f"{_series_behind(name)} starts {label(valid[0])}, after data.start")
        elif valid[-1] < last:
            problems.append(f"{_series_behind(name)} ends {label(valid[-1])}, before data.end")
    if problems:
        raise DataError(
            f"the data cannot cover the fit window {label(start)}..{label(end)}: "
            + "; ".join(problems)
            + ". Move data.start/data.end inside the range the series cover, or update the data "
            "(`regimes data fetch`)"
        )


def _holes_message(
    holes: dict[str, pd.DatetimeIndex],
    start: pd.Timestamp,
    end: pd.Timestamp,
    label: Callable[[pd.Timestamp], str],
) -> str:
    parts = []
    for name, idx in holes.items():
        shown = ", ".join(label(t) for t in idx[:6]) + (", ..." if len(idx) > 6 else "")
        parts.append(f"{_series_behind(name)} has no value for {len(idx)} period(s): {shown}")
    return (
        f"the fit window {label(start)}..{label(end)} has holes: " + "; ".join(parts) + ". A fit "
        "never skips over missing periods: fill them in the data file (or `regimes data fetch`), "
        "or move data.start/data.end so the window avoids them"
    )


def pad_frame(frame: FitFrame, until: pd.Timestamp, frequency: str = "M") -> FitFrame:
    """`frame` with periods after its last one appended to its fit window through `until`, each
    with no data (target unobserved, factors held at their last value) and weight zero in the
    likelihood: a model built on it has the posterior of `frame`'s window in the shapes of the
    longer one, so fits of windows ending at different months share one compilation (an origins
    sweep). Scaling stays `frame`'s. The frame must end with its fit window."""
    if not frame.fit.to_numpy(dtype=bool)[-1]:
        raise ValueError("a padded frame must end with its fit window (predict_end = end)")
    last = frame.frame.index[-1]
    months = pd.date_range(last, pd.Timestamp(until), freq=PERIOD_STARTS[frequency])[1:]
    if len(months) == 0:
        return frame
    extra = pd.DataFrame(index=months, columns=frame.frame.columns, dtype=float)
    held = list(frame.factors)
    extra[held] = frame.frame[held].iloc[-1].to_numpy(dtype=float)
    padded = pd.concat([frame.frame, extra])
    padded.index.name = frame.frame.index.name

    def longer(mask: np.ndarray, fill: bool) -> pd.Series:
        tail = np.full(len(months), fill)
        return pd.Series(np.concatenate([mask, tail]), index=padded.index, name=frame.fit.name)

    return replace(
        frame,
        frame=padded,
        fit=longer(frame.fit.to_numpy(dtype=bool), True),
        scale_window=longer(frame.scale, False),
        train_window=longer(frame.train, False),
        attrs={**frame.attrs, "padded_to": f"{months[-1]:%Y-%m}"},
    )


def truncate(
    frame: FitFrame, n_fit: int, *, score_until: int | None = None, padded: bool = False
) -> FitFrame:
    """The frame as known after its first `n_fit` fit-window months (for leave-future-out CV).

    Fit and scale windows both end at month `n_fit` ("what we knew then"). With `score_until`
    (> n_fit) the fit window runs on to that many months while the scale window stays put, so a
    model refit on the short window can score the later months on the refit's own scale. With
    `padded` as well, the likelihood still trains on the first `n_fit` months only (the later
    ones are in the arrays with weight zero): the same fit as the short window, in the shapes of
    the long one, for families whose likelihood takes weights (`Family.weighted_likelihood`)."""
    idx = np.flatnonzero(frame.fit.to_numpy())
    end = n_fit if score_until is None else score_until
    if not 1 <= n_fit <= end <= len(idx):
        raise ValueError(f"need 1 <= n_fit ({n_fit}) <= score_until ({end}) <= {len(idx)}")

    def mask(n: int) -> pd.Series:
        out = np.zeros(len(frame.frame), dtype=bool)
        out[idx[:n]] = True
        return pd.Series(out, index=frame.frame.index, name=frame.fit.name)

    attrs = {**frame.attrs, "fit_end": f"{frame.time[idx[end - 1]]:%Y-%m}"}
    return FitFrame(
        target=frame.target,
        factors=frame.factors,
        frame=frame.frame,
        fit=mask(end),
        units=frame.units,
        attrs=attrs,
        scale_window=mask(n_fit),
        train_window=mask(n_fit) if padded else None,
        assets=frame.assets,
        asset_factors=frame.asset_factors,
        fixed_scaling=frame.fixed_scaling,
    )
