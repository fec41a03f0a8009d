"""A run's summary table, in the spirit of statsmodels' `res.summary()`: every parameter in natural
units with its median and 90% interval, rank-normalised R-hat and bulk/tail ESS (ArviZ), the
current regime with its probability band, and the convergence verdict.

Generic over whatever the run holds: the per-draw natural-units parameters of `posterior.nc`'s
`posterior_natural` group (each variable with `units` and `long_name`), else, for runs written
before that group existed, the quantiles `derived.nc` keeps (`coef`, `transition`,
`expected_duration`, `fair_value_by_regime`; no R-hat or ESS there). The table is a DataFrame
indexed by (quantity, element); `text` and `html` render it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from regimes.figures import NOT_CONVERGED_MARK, QUICK_MARK, period_word, reference_view

# deferred to the functions that use them: ArviZ (docs/modules.md#imports)

NATURAL = "posterior_natural"  # the posterior.nc group of per-draw parameters in natural units
LOW, MID, HIGH = 0.05, 0.5, 0.95
COLUMNS = ["5%", "50%", "95%", "r_hat", "ess_bulk", "ess_tail", "units"]
SAMPLE_DIMS = ("chain", "draw")
# derived.nc's parameter quantiles, read when posterior.nc has no natural-units group
DERIVED_PARAMETERS = ("fair_value_by_regime", "coef", "transition", "expected_duration")
CURRENT = "regime_prob"  # the quantity of the current-regime rows


@dataclass(frozen=True)
class Summary:
    """The summary of one run: the table and what frames it (title lines, verdict, source)."""

    table: pd.DataFrame  # index (quantity, element); columns COLUMNS
    title: list[str]
    verdict: list[str]
    as_of: str
    source: str
    long_names: dict[str, str] = field(default_factory=dict)

    def text(self, short: bool = False) -> str:
        """The summary as plain text: title, one block per quantity, current regime, verdict;
        `short`: median and interval only (what `regimes run` prints at its end)."""
        return summary_text(self, short=short)


def period_units(units: str, derived: xr.Dataset) -> str:
    """ "periods" in the run's own words ("months", "quarters"); other units unchanged."""
    if units != "periods" or "time" not in derived.coords:
        return units

    return period_word(derived["time"].values) + "s"


def as_of_index(derived: xr.Dataset) -> int | None:
    """Index along `time` of the latest month with an observed price (the run's "now")."""
    view = reference_view(derived)
    if "price" not in view or "time" not in view["price"].dims:
        return None
    finite = np.flatnonzero(np.isfinite(np.asarray(view["price"].values, dtype=float)))
    return int(finite[-1]) if finite.size else None


def _element(values: dict[str, Any]) -> str:
    """A readable element label: coordinate values joined; a from/to pair (a dim named `X_to`)
    as "from → to"."""
    if not values:
        return ""
    dims = list(values)
    if len(dims) == 2 and dims[1].endswith("_to"):
        return f"{values[dims[0]]} → {values[dims[1]]}"
    return ", ".join(str(v) for v in values.values())


def _at_time(da: xr.DataArray, index: int | None) -> tuple[xr.DataArray, str]:
    """`da` at the as-of month when it varies over time, with a note saying which month."""
    if "time" not in da.dims or index is None:
        return da, ""
    return da.isel(time=index), f"{pd.Timestamp(da['time'].values[index]):%Y-%m}"


def natural_rows(natural: xr.Dataset, derived: xr.Dataset) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per element of every variable of the natural-units group: median and 90%
    equal-tailed interval, rank-normalised R-hat and bulk/tail ESS (arviz_stats.summary)."""
    import arviz_stats

    index = as_of_index(derived)
    rows, long_names = [], {}
    for name, da in natural.data_vars.items():
        if not set(SAMPLE_DIMS) <= set(da.dims):
            continue
        da, month = _at_time(da, index)
        ds = da.to_dataset(name=str(name))
        with warnings.catch_warnings():  # constant draws (a structural zero): NaN diagnostics
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = arviz_stats.summary(
                ds, kind="stats_median", ci_prob=0.9, ci_kind="eti", fmt="xarray", round_to="none"
            )[name]
            diag = arviz_stats.summary(ds, kind="diagnostics", fmt="xarray", round_to="none")[name]
        units = period_units(str(da.attrs.get("units", "")), derived)
        long_names[str(name)] = _with_month(str(da.attrs.get("long_name", name)), month)
        lo, hi = (f"eti90_{b}" for b in ("lb", "ub"))
        for sel in _elements(stats.sel(summary="median")):
            rows.append(
                {
                    "quantity": str(name),
                    "element": _element(sel),
                    "5%": float(stats.sel(summary=lo, **sel)),
                    "50%": float(stats.sel(summary="median", **sel)),
                    "95%": float(stats.sel(summary=hi, **sel)),
                    "r_hat": float(diag.sel(summary="r_hat", **sel)),
                    "ess_bulk": float(diag.sel(summary="ess_bulk", **sel)),
                    "ess_tail": float(diag.sel(summary="ess_tail", **sel)),
                    "units": units,
                }
            )
    return _frame(rows), long_names


def _elements(da: xr.DataArray) -> list[dict[str, Any]]:
    """Every element of `da` as its coordinate values by dimension (one empty dict: a scalar)."""
    if not da.dims:
        return [{}]
    stacked = da.stack(_element=list(da.dims))
    return [
        {d: (v.item() if hasattr(v, "item") else v) for d, v in zip(da.dims, key, strict=True)}
        for key in stacked["_element"].values
    ]


def _with_month(long_name: str, month: str) -> str:
    return f"{long_name} (at {month})" if month else long_name


def derived_rows(derived: xr.Dataset) -> tuple[pd.DataFrame, dict[str, str]]:
    """The parameter quantiles derived.nc keeps (runs without the natural-units group): median
    and 90% interval, no R-hat or ESS (those are in `regimes diagnose`)."""
    index = as_of_index(derived)
    rows, long_names = [], {}
    for name in DERIVED_PARAMETERS:
        if name not in derived or "quantile" not in derived[name].dims:
            continue
        da, month = _at_time(derived[name], index)
        units = period_units(str(da.attrs.get("units", "")), derived)
        long_names[name] = _with_month(str(da.attrs.get("long_name", name)), month)
        body = da.drop_vars([c for c in da.coords if c not in da.dims])
        for values in _elements(body.isel(quantile=0, drop=True)):
            q = body.sel(**values)
            rows.append(
                {
                    "quantity": name,
                    "element": _element(values),
                    "5%": _quantile(q, LOW),
                    "50%": _quantile(q, MID),
                    "95%": _quantile(q, HIGH),
                    "r_hat": np.nan,
                    "ess_bulk": np.nan,
                    "ess_tail": np.nan,
                    "units": units,
                }
            )
    return _frame(rows), long_names


def _quantile(da: xr.DataArray, q: float) -> float:
    qs = np.asarray(da["quantile"].values, dtype=float)
    hit = np.flatnonzero(np.isclose(qs, q))
    return float(da.isel(quantile=int(hit[0]))) if hit.size else np.nan


def current_rows(derived: xr.Dataset) -> pd.DataFrame:
    """The probability of each regime in the as-of month: median and 90% band across draws
    (`regime_prob_q`), else the posterior mean alone (`regime_prob`)."""
    index = as_of_index(derived)
    if index is None or "regime" not in derived.dims or CURRENT not in derived:
        return _frame([])
    q = derived.get("regime_prob_q")
    rows = []
    for regime in derived["regime"].values:
        mean = float(derived[CURRENT].isel(time=index).sel(regime=regime))
        band = q.isel(time=index).sel(regime=regime) if q is not None else None
        rows.append(
            {
                "quantity": CURRENT,
                "element": str(regime),
                "5%": _quantile(band, LOW) if band is not None else np.nan,
                "50%": _quantile(band, MID) if band is not None else mean,
                "95%": _quantile(band, HIGH) if band is not None else np.nan,
                "r_hat": np.nan,
                "ess_bulk": np.nan,
                "ess_tail": np.nan,
                "units": "1",
            }
        )
    return _frame(rows)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["quantity", "element", *COLUMNS])
    return frame.set_index(["quantity", "element"])


def verdict_lines(manifest: dict[str, Any]) -> list[str]:
    """The convergence verdict in words: a quick run's mark, converged or not with reasons,
    and the advice of the gate."""
    verdict = manifest.get("verdict") or {}
    lines = [QUICK_MARK] if manifest.get("quick") else []
    if "converged" not in verdict:
        return [*lines, "convergence: unknown (no verdict in the manifest; run regimes diagnose)"]
    if verdict["converged"]:
        detail = (
            f"max R-hat {verdict.get('max_rhat', 'n/a')}, min bulk ESS "
            f"{verdict.get('min_ess_bulk', 'n/a')}, {verdict.get('divergences', 0)} divergences"
        )
        lines.append(f"converged ({detail})")
    else:
        lines.append(NOT_CONVERGED_MARK)
        lines += [f"- {r}" for r in verdict.get("reasons") or []]
    lines += [f"advice: {a}" for a in verdict.get("advice") or []]
    return lines


def build_summary(
    manifest: dict[str, Any],
    derived: xr.Dataset,
    natural: xr.Dataset | None,
    config: dict[str, Any] | None = None,
) -> Summary:
    """The summary of a run from its manifest, derived.nc and, where it has one, its
    natural-units posterior group."""
    if natural is not None and natural.data_vars:
        params, long_names = natural_rows(natural, derived)
        source = f"posterior.nc group {NATURAL} (per-draw, natural units)"
    else:
        params, long_names = derived_rows(derived)
        source = "derived.nc quantiles (this run has no natural-units posterior group)"
    current = current_rows(derived)
    long_names[CURRENT] = "probability of each regime"
    index = as_of_index(derived)
    as_of = f"{pd.Timestamp(derived['time'].values[index]):%Y-%m}" if index is not None else ""
    if as_of:
        long_names[CURRENT] += f" in {as_of}"
    return Summary(
        table=pd.concat([params, current]),
        title=title_lines(manifest, derived, config or {}),
        verdict=verdict_lines(manifest),
        as_of=as_of,
        source=source,
        long_names=long_names,
    )


def title_lines(manifest: dict[str, Any], derived: xr.Dataset, config: dict[str, Any]) -> list[str]:
    """Who and what: experiment, model and family, fit window, sampler."""
    attrs = derived.attrs
    sampler = manifest.get("sampler") or {}
    window = manifest.get("data_window") or {}
    model = attrs.get("model") or (config.get("resolved_model") or {}).get("name", "")
    lines = [
        f"regimes run {manifest.get('experiment', attrs.get('experiment', ''))}: model {model} "
        f"({attrs.get('family', 'n/a')}), target {attrs.get('target', 'n/a')}",
        f"fit window {window.get('fit_start') or attrs.get('sample_start', '?')} to "
        f"{window.get('fit_end') or attrs.get('sample_end', '?')}; "
        f"{sampler.get('chains', '?')} chains x {sampler.get('draws', '?')} draws, "
        f"seed {manifest.get('seed', attrs.get('seed', '?'))}",
    ]
    return lines


def decimals(median: float) -> int | None:
    """Decimals that show a row's median to four significant digits (0 to 4); None for a tiny
    value, shown in scientific notation."""
    if not np.isfinite(median) or median == 0:
        return 3
    magnitude = int(np.floor(np.log10(abs(median))))
    if magnitude < -3:
        return None
    return int(min(max(3 - magnitude, 0), 4))


def number(x: float, places: int | None = 3) -> str:
    """A number for a summary table: `places` decimals (None: two significant digits in
    scientific notation), thousands separators, empty for NaN."""
    if not np.isfinite(x):
        return ""
    return f"{x:.2g}" if places is None else f"{x:,.{places}f}"


def _cells(row: pd.Series, short: bool) -> list[str]:
    places = decimals(row["50%"])
    cells = [number(row["50%"], places)]
    interval = np.isfinite(row["5%"]) and np.isfinite(row["95%"])
    cells.append(f"[{number(row['5%'], places)}, {number(row['95%'], places)}]" if interval else "")
    if not short:
        cells += [
            f"{row['r_hat']:.3f}" if np.isfinite(row["r_hat"]) else "",
            f"{row['ess_bulk']:.0f}" if np.isfinite(row["ess_bulk"]) else "",
            f"{row['ess_tail']:.0f}" if np.isfinite(row["ess_tail"]) else "",
        ]
    return cells


def _heading(s: Summary, quantity: str, part: pd.DataFrame) -> str:
    """A quantity's heading: its long name and units (none shown for CF's dimensionless "1")."""
    units = next((u for u in part["units"] if u and u != "1"), "")
    return s.long_names.get(quantity, quantity) + (f" [{units}]" if units else "")


def summary_text(s: Summary, short: bool = False) -> str:
    """Plain-text tables, one block per quantity under its long name and units."""
    header = ["", "median", "90% interval"] + ([] if short else ["R-hat", "ESS bulk", "ESS tail"])
    blocks: list[list[list[str]]] = []
    names: list[str] = []
    for quantity, part in s.table.groupby(level="quantity", sort=False):
        names.append(_heading(s, str(quantity), part))
        blocks.append(
            [[str(el) or str(quantity), *_cells(row, short)] for (_, el), row in part.iterrows()]
        )
    rows = [header, *[r for b in blocks for r in b]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "=" * max(len(line(header)), *(len(t) for t in s.title))
    out = [rule, *s.title, rule]
    if not short:
        out.append(line(header))
    for name, block in zip(names, blocks, strict=True):
        out.append(f"{name}:")
        out += ["  " + line(r) for r in block]
    if not short:
        out += ["-" * len(rule), f"source: {s.source}"]
    out += [*s.verdict, rule]
    return "\n".join(out)


def summary_html(s: Summary) -> str:
    """The summary as an HTML table (a notebook's rich display of a run)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in ("", "median", "90% interval", "R-hat",
                                                     "ESS bulk", "ESS tail"))  # fmt: skip
    body = []
    for quantity, part in s.table.groupby(level="quantity", sort=False):
        title = _heading(s, str(quantity), part)
        body.append(f'<tr><th colspan="6" style="text-align:left">{escape(title)}</th></tr>')
        for (_, el), row in part.iterrows():
            cells = "".join(
                f'<td style="text-align:right">{escape(c)}</td>' for c in _cells(row, False)
            )
            body.append(f"<tr><td>{escape(str(el) or str(quantity))}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
