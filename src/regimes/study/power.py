"""What a design could have detected, from the record of a power Monte Carlo (the CSV that
`validation/power.py` writes: one row per simulated data set, with `model`, `planted` (1: a
shift planted, 0: none), `dated` (the fit dated it within the tolerance), `claims_shift` (the
fit says the regime holds at the end) and `filtered_delay` (months until the filtered probability passes 0.5), `realtime` (1: refitted in
real time) and `delay_months` (the real-time detection delay; empty where never)), read
into the sentence the study's answer sets beside its finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta

COLUMNS = {
    "model",
    "planted",
    "dated",
    "claims_shift",
    "filtered_delay",
    "realtime",
    "delay_months",
}


def rate(k: int, n: int) -> dict[str, float]:
    """A share k/n with its 90% Jeffreys interval."""
    lo, hi = beta.ppf([0.05, 0.95], k + 0.5, n - k + 0.5) if n else (np.nan, np.nan)
    return {"k": k, "n": n, "rate": k / n if n else float("nan"), "lo": float(lo), "hi": float(hi)}


def _history(rows: pd.DataFrame) -> str:
    """How the simulations' regime path ran before the planted month (the record's `history`)."""
    kinds = set(rows["history"]) if "history" in rows else set()
    if kinds == {"posterior"}:
        return ", with the run's most likely regime path before the planted month"
    if kinds == {"plain"}:
        return ", in the shifted-from regime throughout before the planted month"
    return ""


def power_of(record: Path, model: str) -> dict[str, Any]:
    """The power of `model`'s design from `record`: the share of planted shifts it dated, of
    unplanted data where it claimed a shift, and the delays (filtered, real time), with a sentence.
    A missing or foreign record gives the sentence that says so (never a made-up number)."""
    try:
        rows = pd.read_csv(record)
    except (OSError, ValueError, pd.errors.ParserError):
        return {"text": f"(No power record at {record}: run validation/power.py.)"}
    if not set(rows.columns) >= COLUMNS or not (rows["model"] == model).any():
        return {"text": f"(The power record {record.name} holds no simulations of {model}.)"}
    mine = rows[rows["model"] == model]
    shift, none = mine[mine["planted"] == 1], mine[mine["planted"] == 0]
    dated = rate(int(shift["dated"].sum()), len(shift))
    alarm = rate(int(none["claims_shift"].sum()), len(none))
    out: dict[str, Any] = {"dated": dated, "false_alarm": alarm, "record": record.name}
    text = (
        f"Power of this design (simulated from its own posterior{_history(mine)}, "
        f"{record.name}): a planted shift "
        f"of this model's size is dated within the tolerance in {dated['rate']:.0%} of "
        f"{dated['n']} simulations (90% interval {dated['lo']:.0%}–{dated['hi']:.0%}); with no "
        f"shift planted it claims one in {alarm['rate']:.0%} of {alarm['n']} "
        f"({alarm['lo']:.0%}–{alarm['hi']:.0%})"
    )
    filtered = shift["filtered_delay"].dropna()
    if len(filtered):
        out["filtered_delay_median"] = float(filtered.median())
        text += (
            f"; its filtered probability passes 0.5 a median {filtered.median():.0f} months "
            f"after the shift ({len(filtered)} of {len(shift)})"
        )
    realtime = shift[shift["realtime"] == 1]
    if len(realtime):
        seen = realtime["delay_months"].dropna()
        out["realtime_seen"] = rate(len(seen), len(realtime))
        text += f"; refitted in real time it saw the shift in {len(seen)} of {len(realtime)} runs"
        if len(seen):
            out["delay_median"] = float(seen.median())
            text += f", after a median {seen.median():.0f} months"
    out["text"] = text + "."
    return out
