"""Options and default priors of the Markov-switching family (validated when a config is read)."""

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

from regimes.spec import PriorSpec

AUTO = "auto"  # order_by: the parameter that separates the regimes best at the optimum


class Options(BaseModel):
    """Options of the Markov-switching family."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    k_regimes: StrictInt = Field(default=2, ge=1, le=4)
    regime_names: list[str] | None = None
    switching: list[str] = Field(default_factory=lambda: ["intercept"])
    switching_variance: bool = False
    ar_order: int = Field(default=0, ge=0, le=4)
    order_by: str = "intercept"
    transform: Literal["log", "level"] = "level"
    initial: Literal["stationary", "estimated"] = "stationary"
    # "changepoint": K − 1 breaks left to right, each regime's stay probability a parameter
    # (a geometric prior on the dates); "breaks": the same with a uniform prior on the dates
    transition: Literal["constant", "covariates", "changepoint", "breaks"] = "constant"
    transition_covariates: list[str] = Field(default_factory=list)
    form: Literal["level", "ecm", "loadings"] = "level"
    # regime name -> factor -> "negative" | "positive": declared signs of the regimes' loadings
    # (the domain's definitions, e.g. a real-rate anchor's real-rate loading is negative);
    # the regimes are then told apart by these, not by an ordering. Every factor switches.
    signs: dict[str, dict[str, Literal["negative", "positive"]]] | None = None
    # the innovations' law: Normal, or Student-t (crisis months as heavy tails of a regime)
    noise: Literal["normal", "student_t"] = "normal"
    # regime name -> the anchor terms that price the target in that regime; a term absent from a
    # regime's set is structurally zero there (not a parameter), so the regimes are told apart by
    # what prices the target, not only by level or variance
    anchors: dict[str, list[str]] | None = None
    short_run_lags: int = Field(default=0, ge=0, le=6)  # ecm: lagged changes Δy_{t-1..t-L}
    # partial pooling of each switching slope across the regimes: b[k, t] = mu_t + tau_t z[k, t]
    # (non-centred), so a regime with few months borrows strength from the others
    pool_regimes: bool = False
    # a second, independent chain of volatility regimes (calm, turbulent, ...) beside the anchor
    # chain: the filter runs on their product, so variance no longer has to separate the anchors
    volatility_regimes: int = Field(default=1, ge=1, le=3)
    volatility_names: list[str] | None = None
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
        if self.transition == "covariates" and not self.transition_covariates:
            raise ValueError(
                "transition = 'covariates' needs transition_covariates = [factor names]"
            )
        if self.transition != "covariates" and self.transition_covariates:
            raise ValueError("transition_covariates is used only with transition = 'covariates'")
        if self.transition in ("covariates", "changepoint", "breaks") and self.k_regimes < 2:
            raise ValueError(f"transition = {self.transition!r} needs k_regimes >= 2")
        if self.form in ("ecm", "loadings") and self.ar_order:
            raise ValueError(f"form = {self.form!r} already models the dynamics; set ar_order = 0")
        if self.signs is not None:
            self._check_signs()
        if self.short_run_lags and self.form != "ecm":
            raise ValueError(
                "short_run_lags adds lagged changes to the error-correction form; set form = "
                "'ecm' (or use ar_order for the level form)"
            )
        if self.anchors is not None:
            self._check_anchors()
            if self.pool_regimes:
                raise ValueError(
                    "pool_regimes pools a slope across all regimes; with anchors a term is "
                    "absent from some regimes: use one or the other"
                )
        if self.volatility_regimes > 1:
            if self.ar_order or self.switching_variance:
                raise ValueError(
                    "volatility_regimes > 1 gives the variance its own chain: set ar_order = 0 "
                    "and switching_variance = false"
                )
            if self.order_by == "sigma":
                raise ValueError(
                    "with volatility_regimes, order the anchor regimes by another term"
                )
        if (
            self.volatility_names is not None
            and len(self.volatility_names) != self.volatility_regimes
        ):
            raise ValueError(
                f"volatility_names has {len(self.volatility_names)} names for "
                f"volatility_regimes = {self.volatility_regimes}"
            )
        if self.identified_by_order and self.order_by != AUTO:
            if self.order_by == "sigma" and not self.switching_variance:
                raise ValueError("order_by = 'sigma' needs switching_variance = true")
            known = [*self.switching, *self.anchor_terms]
            if self.order_by != "sigma" and self.order_by not in known:
                raise ValueError(
                    f"order_by = {self.order_by!r} must be 'sigma' or one of the switching terms "
                    f"{self.switching}"
                )
        return self

    def _check_signs(self) -> None:
        signs = self.signs or {}
        if self.regime_names is None or self.k_regimes < 2:
            raise ValueError(
                "signs need k_regimes >= 2 and regime_names (the keys of signs), e.g. "
                'regime_names = ["real_rate_anchor", "fiscal_anchor"]'
            )
        unknown = [name for name in signs if name not in self.regime_names]
        if unknown:
            raise ValueError(
                f"signs name unknown regimes {unknown}; regime_names: {self.regime_names}"
            )
        if self.anchors is not None:
            raise ValueError("signs and anchors both tell regimes apart: use one or the other")
        if self.form != "loadings":
            raise ValueError("signs declare the loadings of form = 'loadings'; set form")
        tables = [tuple(sorted(signs.get(n, {}).items())) for n in self.regime_names]
        if len(set(tables)) != len(tables):
            raise ValueError(
                "signs must differ between every two regimes, or they cannot tell them apart"
            )

    def _check_anchors(self) -> None:
        anchors = self.anchors or {}
        if self.regime_names is None or self.k_regimes < 2:
            raise ValueError(
                "anchors need k_regimes >= 2 and regime_names (the keys of anchors), e.g. "
                'regime_names = ["real_rate_anchor", "fiscal_anchor"]'
            )
        if set(anchors) != set(self.regime_names):
            raise ValueError(
                f"anchors must give every regime its terms: keys {sorted(anchors)} vs "
                f"regime_names {self.regime_names}"
            )
        for name, terms in anchors.items():
            if len(set(terms)) != len(terms) or "intercept" in terms:
                raise ValueError(
                    f"anchors.{name}: list each factor once; the intercept is set by switching"
                )
        extra = [t for t in self.switching if t != "intercept"]
        if extra:
            raise ValueError(
                f"with anchors, the regime-specific terms come from the anchor sets; switching "
                f"may only hold 'intercept' (found {extra})"
            )
        if self.order_by not in ("intercept", "sigma", AUTO):
            raise ValueError("with anchors, order_by must be 'intercept', 'sigma' or 'auto'")

    @property
    def order_candidates(self) -> list[str]:
        """The parameters an ordering could act on: the switching terms (the intercept and
        switching factors, or the anchor terms) and σ when it switches."""
        terms = [*self.switching, *[t for t in self.anchor_terms if t not in self.switching]]
        if self.anchors is not None:
            terms = [t for t in terms if t == "intercept"]
        return [*terms, *(["sigma"] if self.switching_variance else [])]

    @property
    def anchor_terms(self) -> list[str]:
        """Terms that some regime's anchor set holds (in the order first listed)."""
        seen: dict[str, None] = {}
        for name in self.names:
            for term in (self.anchors or {}).get(name, []):
                seen[term] = None
        return list(seen)

    @property
    def identified_by_order(self) -> bool:
        """Labels come from an ordering constraint (a change-point model is ordered by time;
        regimes with different anchor sets are told apart by their sets)."""
        if self.anchors is not None:
            sets = [frozenset(self.anchors[n]) for n in self.names]
            if len(set(sets)) == len(sets):
                return False
        if self.signs is not None:  # told apart by the declared signs (checked distinct)
            return False
        return self.k_regimes > 1 and self.transition not in ("changepoint", "breaks")

    @property
    def n_conditioning(self) -> int:
        """Leading observations conditioned on: the AR lags, one for the error-correction form
        (plus its short-run lags) and one for the loadings form (a change needs last month)."""
        extra = {"ecm": 1 + self.short_run_lags, "loadings": 1}.get(self.form, 0)
        return self.ar_order + extra

    @property
    def volatility_labels(self) -> list[str]:
        """Labels of the volatility chain's regimes, calmest first."""
        if self.volatility_names:
            return list(self.volatility_names)
        default = {2: ["calm", "turbulent"], 3: ["calm", "normal", "turbulent"]}
        return default.get(self.volatility_regimes, ["single"])

    @property
    def names(self) -> list[str]:
        """Regime labels (from the spec, else regime_0, regime_1, ...)."""
        return self.regime_names or [f"regime_{k}" for k in range(self.k_regimes)]


def regime_names(value: list[str] | None, info: ValidationInfo) -> list[str] | None:
    """Check `regime_names`: one non-empty, distinct name per regime (`k_regimes`)."""
    if value is None:
        return value
    if any(not name.strip() for name in value):
        raise ValueError("every regime name must be a non-empty name")
    if len(set(value)) != len(value):
        repeated = sorted({n for n in value if value.count(n) > 1})
        raise ValueError(
            f"regime_names must be distinct ({', '.join(map(repr, repeated))} repeated)"
        )
    k = info.data.get("k_regimes")
    if k is not None and len(value) != k:
        raise ValueError(f"regime_names has {len(value)} names for k_regimes = {k}")
    return value


PRIORS: dict[str, PriorSpec] = {
    "intercept": PriorSpec(dist="Normal", mu=0.0, sigma=1.5),
    "beta": PriorSpec(dist="Normal", mu=0.0, sigma=1.0),
    # signs: the magnitude of a loading whose sign a regime declares (standardised scale)
    "beta_signed": PriorSpec(dist="HalfNormal", sigma=1.0),
    # pool_regimes: the spread of a switching slope across regimes (standardised scale); the
    # population slope takes the "beta" prior
    "beta_tau": PriorSpec(dist="HalfNormal", sigma=0.5),
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
    "psi": PriorSpec(dist="Normal", mu=0.0, sigma=0.5),  # ecm: lagged changes of the target
    # noise = "student_t": degrees of freedom (Juárez & Steel 2010's Gamma(2, 0.1))
    "nu": PriorSpec(dist="Gamma", alpha=2.0, beta=0.1),
}
