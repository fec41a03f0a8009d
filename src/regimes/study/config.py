"""A study folder's `study.toml`: which runs are compared out of sample, which get scenario
forecasts, and the figures of the source research to set beside our estimates."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from regimes.config import Strict, format_errors, parse_month, read_toml
from regimes.errors import ConfigError
from regimes.files import is_file, missing_reason, shorten
from regimes.forecast import MAX_HORIZON

STUDY_FILE = "study.toml"


class LFOSettings(Strict):
    """Leave-future-out comparison of runs that share one target and fit window."""

    experiments: list[str] = Field(min_length=2)
    first_scored: str = Field(description='first month scored out of sample, "YYYY-MM"')
    k_threshold: float = Field(default=0.7, ge=0.0, allow_inf_nan=False)
    quick_refits: bool = True
    asset: str = ""  # panel runs score this asset's own density (vs single-asset models of it)

    @field_validator("first_scored")
    @classmethod
    def _month(cls, value: str) -> str:
        return parse_month(value).strftime("%Y-%m")


class ScenarioSettings(Strict):
    """Forecasts of fair value and regime probabilities along scenario factor paths."""

    experiments: list[str] = Field(min_length=1)
    files: list[str] = Field(min_length=1)
    horizon: int = Field(default=24, ge=1, le=MAX_HORIZON)


class Comparison(Strict):
    """How a reported figure is judged against our estimate's 90% interval.

    value: agrees when the reported number lies in the interval widened by `tol`;
    above/below: agrees when the whole interval is above/below `value`, differs when the whole
    interval is on the other side; sign: `value` is "negative" or "positive", judged like below/
    above 0; month: agrees when the reported month lies in the interval widened by `tol` months;
    none: cannot be computed (say why in `why`)."""

    kind: Literal["value", "above", "below", "sign", "month", "none"]
    value: float | str | None = None
    tol: float = Field(default=0.0, ge=0.0)
    why: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Comparison:
        if self.kind == "none":
            if not self.why:
                raise ValueError("kind 'none' needs 'why': why the figure cannot be computed")
            return self
        if self.value is None:
            raise ValueError(f"kind {self.kind!r} needs 'value'")
        if self.kind == "sign" and self.value not in ("negative", "positive"):
            raise ValueError("kind 'sign' needs value 'negative' or 'positive'")
        if self.kind == "month":
            parse_month(str(self.value))
        elif self.kind != "sign" and not isinstance(self.value, int | float):
            raise ValueError(f"kind {self.kind!r} needs a numeric 'value'")
        return self


class BriefRow(Strict):
    """One figure the source research reports, where our estimate comes from, how to judge it."""

    what: str
    reported: str
    source: str = Field(description="an experiment name, or 'descriptive' or 'lfo'")
    quantity: str = ""
    compare: Comparison


class AnswerSettings(Strict):
    """The study's headline: the posterior probability that the target is in one regime of one
    run, month by month, and a verdict on the research's claimed shift into it."""

    experiment: str = Field(description="the run whose regime probability answers the question")
    regime: str = "fiscal_anchor"
    claim: str = Field(description='the month the research dates the shift to, "YYYY-MM"')
    tol: int = Field(default=12, ge=0, description="months either side of the claim that agree")
    also: list[str] = Field(
        default_factory=list,
        description="other runs asked the same question beside it (e.g. the panel: does pooling "
        "several assets move the date?)",
    )

    @field_validator("claim")
    @classmethod
    def _month(cls, value: str) -> str:
        return parse_month(value).strftime("%Y-%m")


class QuickSettings(Strict):
    """What `--quick` changes beyond the runs' own quick sampler settings."""

    lfo_first_scored: str = ""
    horizon: int = Field(default=6, ge=1, le=MAX_HORIZON)


class Study(Strict):
    """A validated study.toml."""

    title: str
    summary: str = ""
    lfo: LFOSettings | None = None
    scenarios: ScenarioSettings | None = None
    answer: AnswerSettings | None = None
    brief: list[BriefRow] = Field(default_factory=list)
    quick: QuickSettings = Field(default_factory=QuickSettings)
    path: str = ""


def experiment_files(folder: Path) -> list[Path]:
    """The experiment configs of a study folder: every *.toml but study.toml, sorted."""
    return sorted(p for p in folder.glob("*.toml") if p.name != STUDY_FILE)


def load_study(folder: str | Path, experiments: set[str] | None = None) -> Study:
    """Load and check `folder/study.toml` against the folder's experiment configs (or against
    `experiments`, for the copy stored in a finished study, whose runs sit under runs/)."""
    folder = Path(folder)
    path = folder / STUDY_FILE
    raw = read_toml(path, "study config")
    try:
        study = Study.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, {"__model__": Study})) from None
    names = experiments if experiments is not None else {p.stem for p in experiment_files(folder)}
    refs = [("lfo.experiments", n) for n in (study.lfo.experiments if study.lfo else [])]
    refs += [
        ("scenarios.experiments", n)
        for n in (study.scenarios.experiments if study.scenarios else [])
    ]
    refs += [("answer.experiment", study.answer.experiment)] if study.answer else []
    refs += [("answer.also", n) for n in (study.answer.also if study.answer else [])]
    refs += [
        (f"brief[{i}].source", row.source)
        for i, row in enumerate(study.brief)
        if row.source not in ("descriptive", "lfo")
    ]
    for key, name in refs:
        if name not in names:
            raise ConfigError(
                f"{path}: key '{key}': no experiment {name!r} in {folder} "
                f"(known: {', '.join(sorted(names))})"
            )
    for i, name in enumerate(
        study.scenarios.files if study.scenarios and experiments is None else []
    ):
        if not is_file(folder / name):
            raise ConfigError(
                f"{path}: key 'scenarios.files[{i}]': file {shorten(str(folder / name))} "
                f"{missing_reason(folder / name)}"
            )
    return study
