"""Data a model can be fitted to, checked before any model is built: every value finite and of a
size float64 standardisation handles, the target and every factor varying over the fit window,
no factor collinear with another or with the target; and a user's DataFrame usable as series
(dates without time zone or repeats, numbers not text). Each failure is one DataError that names
the series (and the date, or the pair) and says how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from regimes.errors import DataError

# beyond this magnitude squares overflow float64 (1e155² = inf): standardising gives NaN
MAGNITUDE_MAX = 1e100
# a series whose spread over the window is below this fraction of its size is constant in float64
SPREAD_MIN = 1e-12
# smallest eigenvalue of the window's correlation matrix relative to the largest below which the
# variables are collinear (an exact or numerically exact linear relation: x and 2x + 1)
COLLINEAR = 1e-10

Label = Callable[[pd.Timestamp], str]


def _month(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m}"


def check_values(frame: pd.DataFrame, label: Label = _month) -> None:
    """Every value present in `frame` is finite and no larger than MAGNITUDE_MAX in size."""
    values = frame.to_numpy(dtype=float)
    bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAGNITUDE_MAX)
    if not bad.any():
        return
    i, j = np.argwhere(bad)[0]
    column, value = frame.columns[j], float(values[i, j])
    what = "not finite" if np.isinf(value) else f"larger than {MAGNITUDE_MAX:.0e} in size"
    raise DataError(
        f"{column}: the value {value!r} at {label(frame.index[i])} is {what}; a fit standardises "
        "every series in float64, which needs finite values of moderate size: fix the value, or "
        "rescale the series (e.g. in thousands or billions)"
    )


def check_window(window: pd.DataFrame, names: Iterable[str], label: Label = _month) -> None:
    """The fit window's `names` (target first, then factors) each vary, and none is collinear
    with another or with a linear combination of the others."""
    names = list(names)
    span = f"{label(window.index[0])}..{label(window.index[-1])}"
    values = window[names].to_numpy(dtype=float)
    for j, name in enumerate(names):
        v = values[:, j]
        sd, size = float(np.std(v)), float(np.max(np.abs(v)))
        if sd == 0.0 or sd <= SPREAD_MIN * size:
            how = "is constant" if sd == 0.0 else "varies by less than 1e-12 of its size"
            raise DataError(
                f"{name} {how} over the fit window {span} (first value {float(v[0]):g}); a constant cannot be "
                f"fitted or explain anything: drop it, or move data.start/data.end so it varies"
            )
    if len(names) < 2:
        return
    z = (values - values.mean(axis=0)) / values.std(axis=0)
    corr = np.clip(z.T @ z / len(z), -1.0, 1.0)
    eig, vec = np.linalg.eigh(corr)
    if eig[0] > COLLINEAR * eig[-1]:
        return
    pairs = [(abs(corr[a, b]), a, b) for a in range(len(names)) for b in range(a)]
    r, a, b = max(pairs)
    if 1.0 - r <= 2 * COLLINEAR:
        group = f"{names[b]} and {names[a]} (correlation {corr[a, b]:+.12f})"
    else:
        weights = np.abs(vec[:, 0])
        members = [names[k] for k in np.flatnonzero(weights > 0.05 * weights.max())]
        group = f"{', '.join(members)} (condition number {eig[-1] / max(eig[0], 1e-300):.1e})"
    raise DataError(
        f"{group} are collinear over the fit window {span}: one is a linear function of the "
        "other(s), so their coefficients cannot be told apart; drop one of them from "
        "data.factors (or data.target)"
    )


def dataframe_columns(data: pd.DataFrame, names: Iterable[str]) -> dict[str, pd.Series]:
    """The columns of a user's DataFrame an experiment names, as float series, after checking
    the index (dates, no time zone, no repeated label) and that each column holds numbers; each
    problem is a DataError naming the column or the label."""
    if not isinstance(data, pd.DataFrame) or not isinstance(data.index, pd.DatetimeIndex):
        raise DataError(
            "run_dataframe needs a pandas DataFrame with a DatetimeIndex of period starts "
            f"(got {type(data).__name__}"
            + (f" indexed by {type(data.index).__name__}" if isinstance(data, pd.DataFrame) else "")
            + "); e.g. df.index = pd.to_datetime(df['date'])"
        )
    index = data.index
    if index.tz is not None:
        raise DataError(
            f"the DataFrame's index has the time zone {index.tz}; dates of periods carry none: "
            "df.index = df.index.tz_localize(None)"
        )
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise DataError(
            f"the DataFrame's index repeats the date {dup:%Y-%m-%d}; one row per period: "
            "drop or aggregate the repeats (e.g. df.groupby(level=0).mean())"
        )
    if data.columns.has_duplicates:
        dup = data.columns[data.columns.duplicated()][0]
        raise DataError(f"the DataFrame has two columns named {dup!r}; rename one")
    wanted = set(names)
    out: dict[str, pd.Series] = {}
    for column in data.columns:
        if str(column) not in wanted:
            continue
        out[str(column)] = _numeric(data[column], str(column))
    return out


def _numeric(column: pd.Series, name: str) -> pd.Series:
    """A DataFrame column as float64; text, dates or other objects are a DataError naming the
    first offending cell."""
    if pd.api.types.is_bool_dtype(column) or not (
        pd.api.types.is_numeric_dtype(column) or column.dtype == object
    ):
        raise DataError(
            f"column {name!r} holds {column.dtype} values, not numbers; convert it with "
            f"pd.to_numeric(df[{name!r}])"
        )
    values = pd.to_numeric(column, errors="coerce") if column.dtype == object else column
    bad = values.isna() & column.notna()
    if bad.any():
        at = column.index[np.flatnonzero(bad.to_numpy())[0]]
        raise DataError(
            f"column {name!r} holds text: {column[at]!r} at {at:%Y-%m-%d}; convert it with "
            f"pd.to_numeric(df[{name!r}]) after fixing the cell (missing values: NaN)"
        )
    return values.astype("float64")
