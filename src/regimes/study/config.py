"""A study folder's `study.toml`: which runs are compared out of sample, which get scenario
forecasts, the figures of the source research to set beside our estimates, the headline answer,
and what the page shows (its panels, the runs' figures it copies, the application it draws on)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from regimes.config import Strict, format_errors, parse_month, read_toml
from regimes.errors import ConfigError
from regimes.files import is_file, missing_reason, shorten
from regimes.forecast import MAX_HORIZON
from regimes.study.application import APPLICATIONS, Application
from regimes.study.panels import DEFAULT_PANELS, PANELS, Panel

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
    source: str = Field(
        description="an experiment name, 'lfo', or 'descriptive' (the study application's "
        "analyses of the data)"
    )
    quantity: str = ""
    compare: Comparison


class AnswerSettings(Strict):
    """The study's headline: the posterior probability that the target is in one regime of one
    run, month by month, and a verdict on the research's claimed shift into it, in the study's
    own words (`question`, `subject`, `no_anchor`)."""

    experiment: str = Field(description="the run whose regime probability answers the question")
    regime: str = Field(description="the regime the research says the target shifted into")
    claim: str = Field(description='the month the research dates the shift to, "YYYY-MM"')
    tol: int = Field(default=12, ge=0, description="months either side of the claim that agree")
    also: list[str] = Field(
        default_factory=list,
        description="other runs asked the same question beside it (e.g. the panel: does pooling "
        "several assets move the date?)",
    )
    subject: str = Field(
        default="",
        description="what is in the regime, in the answer's sentences (default: the answer "
        "run's target as its experiment names it; a panel's reference asset)",
    )
    question: str = Field(
        default="is {subject} in the {regime} regime?",
        description="the answer's heading after 'The answer: ' ({subject}, {regime})",
    )
    no_anchor: str = Field(
        default="no anchor found",
        description="the verdict when the target does not revert to the regime's fair value",
    )
    panels: list[str] = Field(default_factory=list, description="panels shown beside the answer")
    power: str = Field(
        default="",
        description="a power Monte Carlo's record for the answer run's model (validation/power.py"
        " CSV), relative to the study folder: what the design could have detected, beside it",
    )

    @field_validator("claim")
    @classmethod
    def _month(cls, value: str) -> str:
        return parse_month(value).strftime("%Y-%m")

    @field_validator("question")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(subject="s", regime="r")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "the question may name {subject} and {regime} only (write {{ }} for a brace)"
            ) from None
        return value


class CopiedFigure(Strict):
    """A figure one of the study's runs drew, shown on the study page with a caption."""

    experiment: str
    figure: str = Field(
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the run's figures/<figure>.png, by name (e.g. regime_ribbon, fair_value)",
    )
    caption: str


class PageSettings(Strict):
    """What the study page shows beyond its tables: the panels it draws (the core's and the
    study application's, by name, in order), the runs' figures it copies, and the target it is
    about."""

    target: str = Field(
        default="",
        description="the target the page is about, as the experiments name it: 'fair value now' "
        "and the deviation overview list its runs only (default: every run)",
    )
    panels: list[str] = Field(default_factory=lambda: list(DEFAULT_PANELS))
    figures: list[CopiedFigure] = Field(default_factory=list)


class QuickSettings(Strict):
    """What `--quick` changes beyond the runs' own quick sampler settings."""

    lfo_first_scored: str = ""
    horizon: int = Field(default=6, ge=1, le=MAX_HORIZON)


class Study(Strict):
    """A validated study.toml."""

    title: str
    summary: str = ""
    application: str = Field(
        default="",
        description="the installed application whose analyses and panels the study uses",
    )
    page: PageSettings = Field(default_factory=PageSettings)
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
        (f"page.figures[{i}].experiment", f.experiment) for i, f in enumerate(study.page.figures)
    ]
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
    _check_page(study, path)
    return study


def study_application(study: Study) -> Application | None:
    """The application a study names (None when it names none); an application not installed
    is a ConfigError naming the key and the installed ones."""
    if not study.application:
        return None
    if study.application not in APPLICATIONS:
        installed = ", ".join(sorted(APPLICATIONS)) or "none"
        raise ConfigError(
            f"{study.path}: key 'application': no application {study.application!r} is installed "
            f"(installed: {installed}); install the package that provides it"
        )
    return APPLICATIONS[study.application]


def study_panels(study: Study) -> dict[str, Panel]:
    """The panels a study can name: the core's and its application's (which may not reuse a
    core panel's name)."""
    app = study_application(study)
    if app is None:
        return dict(PANELS)
    taken = sorted(set(app.panels) & set(PANELS))
    if taken:
        raise ConfigError(
            f"application {app.name!r} names its panel {taken[0]!r} like a core panel; the "
            "application must rename it"
        )
    return {**PANELS, **app.panels}


def _check_page(study: Study, path: Path) -> None:
    """The application, the descriptive quantities and the panels a study names must exist."""
    app = study_application(study)
    for i, row in enumerate(study.brief):
        if row.source != "descriptive" or (row.compare.kind == "none" and not row.quantity):
            continue
        if app is None:
            raise ConfigError(
                f"{path}: key 'brief[{i}].source': 'descriptive' reads the study application's "
                "analyses; name the application with `application = NAME`"
            )
        kind = row.quantity.partition(":")[0]
        if kind not in app.quantities:
            raise ConfigError(
                f"{path}: key 'brief[{i}].quantity': {kind!r} is no quantity of application "
                f"{app.name!r} (its quantities: {', '.join(app.quantities) or 'none'})"
            )
    panels = study_panels(study)
    named = [(f"page.panels[{i}]", n) for i, n in enumerate(study.page.panels)]
    named += [
        (f"answer.panels[{i}]", n)
        for i, n in enumerate(study.answer.panels if study.answer else [])
    ]
    for key, name in named:
        if name not in panels:
            raise ConfigError(
                f"{path}: key '{key}': no panel {name!r} (known: {', '.join(panels)})"
            )
