"""What a study produced: one record per run and everything its page shows (study.json), shared
by the runner that fills it and the page that renders it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STUDY_JSON = "study.json"
STUDY_HTML = "study.html"


@dataclass
class RunRecord:
    """What happened to one experiment of the study."""

    experiment: str
    status: str  # "complete" | "failed"
    run_dir: str = ""  # relative to the study directory
    error: str = ""
    wall_s: float = 0.0
    converged: bool | None = None


@dataclass
class StudyResult:
    """Everything the study page shows, also stored as study.json."""

    title: str
    folder: str
    quick: bool
    runs: dict[str, RunRecord] = field(default_factory=dict)
    lfo: list[dict[str, Any]] = field(default_factory=list)
    lfo_note: str = ""
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    brief: list[dict[str, str]] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=dict)  # the headline (`study.answer`)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file, caption)
    timing: dict[str, Any] = field(default_factory=dict)  # seconds: stages, runs, phases


def run_path(res: StudyResult, study_dir: Path, experiment: str) -> Path | None:
    """The run directory of a study experiment, or None if it failed or is unknown."""
    rec = res.runs.get(experiment)
    return study_dir / rec.run_dir if rec is not None and rec.status == "complete" else None
