"""validation/power.py plants a switch where it says: the month before the planted month is in
the shifted-from regime whatever history the run's own path gives (a history already in the
shifted-to regime planted no switch at all: the level ECM's power record had to be redone)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

POWER = Path(__file__).resolve().parents[1] / "validation" / "power.py"


def _power():
    spec = importlib.util.spec_from_file_location("power_under_test", POWER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_planted_shift_is_a_switch_at_the_planted_month() -> None:
    power = _power()
    time = pd.date_range("2010-01-01", periods=24, freq="MS")
    frame = SimpleNamespace(time=time, fit=pd.Series(True, index=time))
    names = ["old", "new"]
    at = pd.Timestamp("2011-01-01")
    history = np.array([0] * 4 + [1] * 3 + [0] * 2 + [1] * 15)  # in "new" since 2010-10
    shift = power.planted_path(frame, names, "old", "new", at, True, history)
    none = power.planted_path(frame, names, "old", "new", at, False, history)
    first = int(np.flatnonzero(time == at)[0])
    assert shift[first - 1] == 0 and (shift[first:] == 1).all()
    assert (none[first:] == 0).all() and none[first - 1] == 0
    assert (shift[:7] == history[:7]).all()  # earlier spells of the history are kept
    assert (shift[7:first] == 0).all()  # the "new" spell running into the planted month is not
    plain = power.planted_path(frame, names, "old", "new", at, True, None)
    assert (plain[:first] == 0).all() and (plain[first:] == 1).all()
