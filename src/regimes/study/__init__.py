"""Studies: a folder of experiment configs plus a study.toml, run by one command into one study
report that sets the source research's figures beside ours (`regimes run FOLDER`)."""

from __future__ import annotations

from regimes.study.config import STUDY_FILE, Study, load_study
from regimes.study.result import STUDY_HTML, STUDY_JSON
from regimes.study.runner import StudyError, is_study_folder, run_study

__all__ = [
    "STUDY_FILE",
    "STUDY_HTML",
    "STUDY_JSON",
    "Study",
    "StudyError",
    "is_study_folder",
    "load_study",
    "run_study",
]
