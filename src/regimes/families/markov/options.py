"""Options and default priors of the Markov-switching family (validated when a config is read)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from regimes.spec import PriorSpec


class Options(BaseModel):
    """Options of the Markov-switching family."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    k_regimes: int = Field(default=2, ge=1, le=4)
    regime_names: list[str] | None = None
    switching: list[str] = Field(default_factory=lambda: ["intercept"])
    switching_variance: bool = False
    ar_order: int = Field(default=0, ge=0, le=4)
    order_by: str = "intercept"
    transform: Literal["log", "level"] = "level"
    initial: Literal["stationary", "estimated"] = "stationary"
    transition: Literal["constant", "covariates", "changepoint"] = "constant"
    transition_covariates: list[str] = Field(default_factory=list)
    form: Literal["level", "ecm"] = "level"
    transition_concentration: float = Field(default=1.0, gt=0)
    sticky: float = Field(default=0.0, ge=0)
    init: Literal["multistart", "jitter"] = "multistart"
    n_starts: int = Field(default=12, ge=1, le=200)

    @model_validator(mode="after")
    def _consistent(self) -> Options:
        if self.regime_names is not None:
            if len(self.regime_names) != self.k_regimes:
                raise ValueError(
                    f"regime_names has {len(self.regime_names)} names for k_regimes = {self.k_regimes}"
                )
            if len(set(self.regime_names)) != len(self.regime_names):
                raise ValueError("regime_names must be distinct")
        if self.transition == "covariates" and not self.transition_covariates:
            raise ValueError(
                "transition = 'covariates' needs transition_covariates = [factor names]"
            )
        if self.transition != "covariates" and self.transition_covariates:
            raise ValueError("transition_covariates is used only with transition = 'covariates'")
        if self.transition in ("covariates", "changepoint") and self.k_regimes < 2:
            raise ValueError(f"transition = {self.transition!r} needs k_regimes >= 2")
        if self.form == "ecm" and self.ar_order:
            raise ValueError("form = 'ecm' already models the dynamics; set ar_order = 0")
        if self.identified_by_order:
            if self.order_by == "sigma" and not self.switching_variance:
                raise ValueError("order_by = 'sigma' needs switching_variance = true")
            if self.order_by != "sigma" and self.order_by not in self.switching:
                raise ValueError(
                    f"order_by = {self.order_by!r} must be 'sigma' or one of the switching terms "
                    f"{self.switching}"
                )
        return self

    @property
    def identified_by_order(self) -> bool:
        """Labels come from an ordering constraint (a change-point model is ordered by time)."""
        return self.k_regimes > 1 and self.transition != "changepoint"

    @property
    def n_conditioning(self) -> int:
        """Leading observations conditioned on: the AR lags, or one for the error-correction form."""
        return self.ar_order + (1 if self.form == "ecm" else 0)

    @property
    def names(self) -> list[str]:
        """Regime labels (from the spec, else regime_0, regime_1, ...)."""
        return self.regime_names or [f"regime_{k}" for k in range(self.k_regimes)]


PRIORS: dict[str, PriorSpec] = {
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=1.5),
    "beta": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    "sigma": PriorSpec(dist="HalfNormal", sigma=1.0),
    "phi": PriorSpec(dist="Normal", mu=0.0, sigma=0.5),
    # covariate-driven transitions: logit of moving i -> j (vs staying) = bias + z_t' coef
    "transition_bias": PriorSpec(dist="Normal", mu=-3.0, sigma=1.5),
    "transition_coef": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    # change points: probability of staying in each regime but the last (which is absorbing)
    "stay": PriorSpec(dist="Beta", alpha=1.0, beta=1.0),
    # error-correction form: speed of adjustment towards the regime's anchor, short-run terms
    "speed": PriorSpec(dist="Beta", alpha=1.0, beta=5.0),
    "gamma": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
}
