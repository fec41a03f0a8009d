"""What a design could have detected, from the record of a power Monte Carlo (the CSV that
`validation/power.py` writes: one row per simulated data set, with `model`, `planted` (1: a
shift planted, 0: none), `dated` (the fit dated it within the tolerance), `claims_shift` (the
fit says the regime holds at the end) and `delay_months` (real-time detection delay)), read
into the sentence the study's answer sets beside its finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta

COLUMNS = {"model", "planted", "dated", "claims_shift", "delay_months"}


def rate(k: int, n: int) -> dict[str, float]:
    """A share k/n with its 90% Jeffreys interval."""
    lo, hi = beta.ppf([0.05, 0.95], k + 0.5, n - k + 0.5) if n else (np.nan, np.nan)
    return {"k": k, "n": n, "rate": k / n if n else float("nan"), "lo": float(lo), "hi": float(hi)}


def power_of(record: Path, model: str) -> dict[str, Any]:
    """The power of `model`'s design from `record`: the share of planted shifts it dated, of
    unplanted data where it claimed a shift, and the median real-time delay, with a sentence.
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
    delays = shift["delay_months"].dropna()
    out = {"dated": dated, "false_alarm": alarm, "record": record.name}
    text = (
        f"Power of this design (simulated from its own posterior, {record.name}): a planted shift "
        f"of this model's size is dated within the tolerance in {dated['rate']:.0%} of "
        f"{dated['n']} simulations (90% interval {dated['lo']:.0%}–{dated['hi']:.0%}); with no "
        f"shift planted it claims one in {alarm['rate']:.0%} of {alarm['n']} "
        f"({alarm['lo']:.0%}–{alarm['hi']:.0%})"
    )
    if len(delays):
        out["delay_median"] = float(delays.median())
        n_rt = int(shift["delay_months"].notna().sum() + shift["delay_months"].isna().sum())
        text += (
            f"; in real time it sees the shift after a median {delays.median():.0f} months "
            f"({len(delays)} of {n_rt} real-time runs saw it by the window's end)"
        )
    out["text"] = text + "."
    return out
