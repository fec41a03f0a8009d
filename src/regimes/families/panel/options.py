"""Options and default priors of the hierarchical panel family (validated when a config is read)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from regimes.families.markov.options import PRIORS as MARKOV_PRIORS
from regimes.families.markov.options import Options as MarkovOptions
from regimes.families.markov.options import regime_names
from regimes.spec import PriorSpec


class Options(BaseModel):
    """Options of the panel family: several assets, one regime chain (or one chain each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    k_regimes: StrictInt = Field(default=2, ge=1, le=4)
    regime_names: list[str] | None = None
    # regime name -> the anchor terms that price the assets in that regime; a term absent from a
    # regime's set is structurally zero there for every asset (no parameter), as in the Markov
    # family's option of the same name
    anchors: dict[str, list[str]] | None = None
    chain: Literal["shared", "independent"] = "shared"
    form: Literal["level", "ecm"] = "level"
    # each asset's innovations' law; "factor": Normal, correlated across assets through one
    # common shock (a shared chain then counts a month's common news once, not once per asset)
    noise: Literal["normal", "student_t", "factor"] = "normal"
    transform: Literal["log", "level"] = "log"
    switching_variance: bool = False
    order_by: str = "intercept"
    initial: Literal["stationary", "estimated"] = "stationary"
    transition: Literal["constant", "covariates", "changepoint", "breaks"] = "constant"
    transition_covariates: list[str] = Field(default_factory=list)
    transition_concentration: float = Field(default=1.0, gt=0)
    sticky: float = Field(default=0.0, ge=0)
    init: Literal["multistart", "jitter"] = "multistart"
    n_starts: int = Field(default=12, ge=1, le=200)

    @field_validator("regime_names")
    @classmethod
    def _names(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return regime_names(value, info)

    @model_validator(mode="after")
    def _consistent(self) -> Options:
        if self.chain == "independent" and (
            self.transition != "constant" or self.initial != "stationary" or self.k_regimes < 2
        ):
            raise ValueError(
                "chain = 'independent' needs k_regimes >= 2, transition = 'constant' and "
                "initial = 'stationary'"
            )
        if self.chain == "independent" and self.noise == "factor":
            raise ValueError(
                "noise = 'factor' correlates the assets' shocks in one month of one shared "
                "chain; with chain = 'independent' use noise = 'normal'"
            )
        self.chain_options()  # the chain's own checks (regime names, anchors, covariates, ...)
        if self.ordered and self.anchors is not None and self.order_by != "intercept":
            raise ValueError(
                "with anchors that repeat a set, order the regimes by 'intercept' (order_by)"
            )
        return self

    def chain_options(self) -> MarkovOptions:
        """The regime chain's settings as the Markov family's options, so its initial-state and
        transition parts (`markov.components`) are reused unchanged."""
        return MarkovOptions(
            k_regimes=self.k_regimes,
            regime_names=self.regime_names,
            anchors=self.anchors,
            initial=self.initial,
            transition=self.transition,
            transition_covariates=self.transition_covariates,
            transition_concentration=self.transition_concentration,
            sticky=self.sticky,
        )

    @property
    def ordered(self) -> bool:
        """Labels come from an ordering of a population mean (a change point orders by time;
        regimes with different anchor sets are told apart by their sets)."""
        return self.chain_options().identified_by_order

    @property
    def n_conditioning(self) -> int:
        """Leading months conditioned on: one for the error-correction form (its lag)."""
        return 1 if self.form == "ecm" else 0

    @property
    def names(self) -> list[str]:
        """Regime labels (from the spec, else regime_0, regime_1, ...)."""
        return self.regime_names or [f"regime_{k}" for k in range(self.k_regimes)]


PRIORS: dict[str, PriorSpec] = {
    # population mean of the assets' intercepts per regime (standardised log price)
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=1.5),
    # spread of the assets' intercepts around it, per regime
    "intercept_sd": PriorSpec(dist="HalfNormal", sigma=1.0),
    # population sensitivity mu[regime, term] and the assets' spread tau[regime, term]
    "mu": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    "tau": PriorSpec(dist="HalfNormal", sigma=0.5),
    # each asset's innovation sd (per regime with switching_variance)
    "sigma": PriorSpec(dist="HalfNormal", sigma=1.0),
    # error-correction form: each asset's speed back to its regime's anchor, short-run terms
    "speed": MARKOV_PRIORS["speed"],
    "gamma": MARKOV_PRIORS["gamma"],
    "transition_bias": MARKOV_PRIORS["transition_bias"],
    "transition_coef": MARKOV_PRIORS["transition_coef"],
    "stay": MARKOV_PRIORS["stay"],
    "nu": MARKOV_PRIORS["nu"],
    # noise = "factor": each non-reference asset's loading on the common shock (correlation with
    # another asset b is rho_a rho_b); the reference asset's is Uniform(0, 0.99)
    "shock_loading": PriorSpec(dist="Uniform", lower=-0.99, upper=0.99),
}
