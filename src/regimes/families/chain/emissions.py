"""The regime-conditional density of each series: a noise law (Normal, Student-t) with a scale
per state around a one-step conditional mean that a form (level with AR lags, error correction,
loadings on the drivers' changes) builds from the regime's anchor.

Every part is configured in its constructor and declares its own parameters (inside the PyMC
model context) as a NamedTuple; `Emissions.log_likelihood` joins them. Arrays carry a `series`
axis (A): one series for the Markov-switching family, several assets sharing the chain for the
panel, whose anchor differs only in how its parameters are pooled (`PooledAnchor`).

Shapes: T fit-window months, A series, K regimes, J expanded states, P anchor terms, and
n = T − c scored months after the c months the form conditions on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from regimes.families.chain.data import ChainData
from regimes.families.chain.space import StateSpace
from regimes.priors import make_prior
from regimes.spec import PriorSpec

# deferred to the functions that use them: PyMC, PyTensor (docs/modules.md#imports)
if TYPE_CHECKING:
    import xarray as xr


def levels(alpha: Any, beta: Any, x: Any, term_mask: Any, xp: Any = np) -> Any:
    """The anchor μ[..., t, a, k] = α[..., a, k] + Σ_p x[t, p] β[..., a, k, p] m[a, p] of every
    month and series under each regime (model scale; leading axes, e.g. draws, carried), for
    numpy (`xp=np`) or PyTensor arrays alike."""
    beta = beta * term_mask[:, None, :]
    # tensordot, not einsum: PyTensor's einsum reshapes with traced shapes under JAX
    moved = xp.moveaxis(xp.tensordot(x, beta, axes=[[1], [beta.ndim - 1]]), 0, -3)
    return alpha[..., None, :, :] + moved


def _ordered(n: int) -> dict[str, Any]:
    """An increasing parameter across `n` regimes (identification by ordering)."""
    from pymc.distributions.transforms import ordered

    return {"transform": ordered, "initval": np.linspace(-1.0, 1.0, n)}


def ordered_scales(n: int) -> dict[str, Any]:
    """`n` positive scales in increasing order (regimes by sigma; the volatility chain's calm <
    turbulent): log, then ordered."""
    from pymc.distributions.transforms import ChainedTransform, log, ordered

    return {
        "transform": ChainedTransform([log, ordered]),
        "default_transform": None,  # else PyMC applies its own log on top of this chain
        "initval": np.exp(np.linspace(-1.0, 1.0, n)) * 0.5,
    }


# ------------------------------------------------------------------ anchors


def _select(names: Sequence[str], terms: Sequence[str]) -> np.ndarray:
    """(len(names), len(terms)) one-hot rows: where each of `names` sits among `terms`."""
    out = np.zeros((len(names), len(terms)))
    for i, name in enumerate(names):
        out[i, list(terms).index(name)] = 1.0
    return out


class AnchorParams(NamedTuple):
    alpha: Any  # (A, K) intercept of each series in each regime
    beta: Any  # (A, K, P) loading of each series on each anchor term (zero where structural)


class Anchor(ABC):
    """Where each regime anchors each series: α[a, k] + x_t'β[a, k]."""

    @abstractmethod
    def declare(self, priors: dict[str, PriorSpec]) -> AnchorParams:
        """Create the anchor's parameters and return them as full (A, K) and (A, K, P) graphs."""


@dataclass(frozen=True)
class RegimeAnchor(Anchor):
    """One series: an intercept and slopes, each switching across regimes or shared; regimes
    identified by ordering one switching parameter (`order_by`) or by distinct anchor sets
    (`anchor_mask`: term p prices the target in regime k); switching slopes optionally
    partially pooled across regimes (non-centred: b = b_pop + b_tau · z)."""

    k: int
    terms: Sequence[str]  # all anchor terms (P), in the data's column order
    switch_terms: Sequence[str]
    intercept_switches: bool
    order_by: str | None = None  # the parameter ordered across regimes, if any
    anchor_mask: np.ndarray | None = None  # (K, Ps) bool
    pool_regimes: bool = False

    def _ordered(self, name: str) -> dict[str, Any]:
        return _ordered(self.k) if self.order_by == name else {}

    def _slope(self, term: str, priors: dict[str, PriorSpec]) -> Any:
        import pymc as pm

        ordered = self._ordered(term)
        if not self.pool_regimes or ordered or self.k < 2:
            return make_prior(f"beta_{term}", priors["beta"], dims="regime", **ordered)
        pop = make_prior(f"beta_pop_{term}", priors["beta"])
        tau = make_prior(f"beta_tau_{term}", priors["beta_tau"])
        z = pm.Normal(f"beta_z_{term}", 0.0, 1.0, dims="regime")
        return pm.Deterministic(f"beta_{term}", pop + tau * z, dims="regime")

    def declare(self, priors: dict[str, PriorSpec]) -> AnchorParams:
        import pymc as pm
        import pytensor.tensor as pt

        k, terms = self.k, list(self.terms)
        switch = [t for t in terms if t in self.switch_terms]
        shared = [t for t in terms if t not in self.switch_terms]
        dims = "regime" if self.intercept_switches and k > 1 else None
        intercept = make_prior(
            "intercept", priors["intercept"], dims=dims, **self._ordered("intercept")
        )
        # each part placed into the (K, P) loadings by a constant selection matrix (a product,
        # not an indexed update: the gradient keeps static shapes for JAX)
        beta = pt.zeros((k, len(terms)))
        if switch and self.anchor_mask is not None:
            # one coefficient per (regime, term) of the anchor sets; zeros elsewhere, by structure
            rows, cols = np.nonzero(self.anchor_mask)
            coefs = make_prior("beta_anchor", priors["beta"], dims="anchor_coef")
            matrix = pt.set_subtensor(pt.zeros(self.anchor_mask.shape)[rows, cols], coefs)
            switching = pm.Deterministic("beta_switch", matrix, dims=("regime", "switch_term"))
            beta = beta + pt.dot(switching, _select(switch, terms))
        elif switch:
            slopes = [self._slope(t, priors) for t in switch]
            switching = pm.Deterministic(
                "beta_switch", pt.stack(slopes, axis=1), dims=("regime", "switch_term")
            )
            beta = beta + pt.dot(switching, _select(switch, terms))
        if shared:
            common = make_prior("beta_shared", priors["beta"], dims="shared_term")
            beta = beta + pt.ones((k, 1)) * pt.dot(common, _select(shared, terms))[None, :]
        beta = beta[None]
        return AnchorParams(alpha=intercept * pt.ones((1, k)), beta=beta)


@dataclass(frozen=True)
class PooledAnchor(Anchor):
    """Several series: intercepts and sensitivities partially pooled across series (non-centred),
    α[a, k] = ᾱ[k] + ω[k] u[a, k], β[a, k, p] = μ[k, p] + τ[k, p] z[a, k, p]; identified by
    ordering a population mean (`order_by`) or by regime-specific anchor sets (`regime_mask`
    (K, P): zero, by structure, outside a regime's set)."""

    k: int
    n_series: int
    terms: Sequence[str]
    order_by: str | None = None
    regime_mask: np.ndarray | None = None

    def _ordered(self, name: str) -> dict[str, Any]:
        return _ordered(self.k) if self.order_by == name else {}

    def declare(self, priors: dict[str, PriorSpec]) -> AnchorParams:
        import pymc as pm
        import pytensor.tensor as pt

        k, terms = self.k, list(self.terms)
        regime = "regime" if k > 1 else None
        a_pop = make_prior(
            "intercept", priors["intercept"], dims=regime, **self._ordered("intercept")
        )
        a_sd = make_prior("intercept_sd", priors["intercept_sd"], dims=regime)
        a_z = pm.Normal("intercept_z", 0.0, 1.0, dims=("asset", "regime"))
        alpha = pm.Deterministic(
            "alpha", a_pop * pt.ones(k) + a_sd * pt.ones(k) * a_z, dims=("asset", "regime")
        )
        if not terms:
            return AnchorParams(alpha, pt.zeros((self.n_series, k, 0)))
        if self.regime_mask is not None:
            rows, cols = np.nonzero(self.regime_mask)
            shape = (k, len(terms))

            def scatter(values: Any, lead: tuple[int, ...] = ()) -> Any:
                return pt.set_subtensor(pt.zeros((*lead, *shape))[..., rows, cols], values)

            mu_set = make_prior("mu_anchor", priors["mu"], dims="anchor_coef")
            tau_set = make_prior("tau_anchor", priors["tau"], dims="anchor_coef")
            z = pm.Normal("beta_z", 0.0, 1.0, dims=("asset", "anchor_coef"))
            pm.Deterministic("mu", scatter(mu_set), dims=("regime", "term"))
            pm.Deterministic("tau", scatter(tau_set), dims=("regime", "term"))
            beta = scatter(mu_set[None] + tau_set[None] * z, (self.n_series,))
        else:
            columns = [
                make_prior(f"mu_{t}", priors["mu"], dims="regime", **self._ordered(t))
                for t in terms
            ]
            mu = pm.Deterministic("mu", pt.stack(columns, axis=1), dims=("regime", "term"))
            tau = make_prior("tau", priors["tau"], dims=("regime", "term"))
            z = pm.Normal("beta_z", 0.0, 1.0, dims=("asset", "regime", "term"))
            beta = mu[None] + tau[None] * z
        return AnchorParams(alpha, pm.Deterministic("beta", beta, dims=("asset", "regime", "term")))


SIGNS = {"negative": -1.0, "positive": 1.0}  # a declared sign of a (regime, term) loading


@dataclass(frozen=True)
class SignedAnchor(Anchor):
    """One series, every term switching, regimes told apart by declared signs of their loadings
    (e.g. the domain's real-rate anchor: real-rate loading negative; fiscal anchor: real-rate
    loading non-negative, fiscal loading positive), not by an ordering. A signed loading is
    sign · |b| with a half-normal magnitude (prior `beta_signed`); the others are free (prior
    `beta`). The intercept switches."""

    k: int
    terms: Sequence[str]
    names: Sequence[str]  # regime names, the keys of `signs`
    signs: dict[str, dict[str, str]]  # regime name -> term -> "negative" | "positive"

    def cells(self) -> tuple[list[tuple[int, int, float]], list[tuple[int, int]]]:
        """(signed cells (regime, term, sign), free cells (regime, term)) in regime-major order."""
        signed, free = [], []
        for k, name in enumerate(self.names):
            for p, term in enumerate(self.terms):
                word = self.signs.get(name, {}).get(term)
                if word is None:
                    free.append((k, p))
                else:
                    signed.append((k, p, SIGNS[word]))
        return signed, free

    def labels(self) -> tuple[list[str], list[str]]:
        """Coordinate labels "regime:term" of the signed and the free loadings."""
        signed, free = self.cells()
        label = [f"{self.names[k]}:{self.terms[p]}" for k, p, _ in signed]
        return label, [f"{self.names[k]}:{self.terms[p]}" for k, p in free]

    def declare(self, priors: dict[str, PriorSpec]) -> AnchorParams:
        import pymc as pm
        import pytensor.tensor as pt

        k, n_terms = self.k, len(self.terms)
        intercept = make_prior("intercept", priors["intercept"], dims="regime")
        signed, free = self.cells()
        beta = pt.zeros(k * n_terms)
        if signed:  # placed by constant one-hot rows (a product: static shapes for JAX)
            size = make_prior("beta_signed", priors["beta_signed"], dims="signed_coef")
            place = np.zeros((len(signed), k * n_terms))
            for i, (r, p, sign) in enumerate(signed):
                place[i, r * n_terms + p] = sign
            beta = beta + pt.dot(size, place)
        if free:
            values = make_prior("beta_free", priors["beta"], dims="free_coef")
            place = np.zeros((len(free), k * n_terms))
            for i, (r, p) in enumerate(free):
                place[i, r * n_terms + p] = 1.0
            beta = beta + pt.dot(values, place)
        matrix = pm.Deterministic(
            "beta_switch", beta.reshape((k, n_terms)), dims=("regime", "switch_term")
        )
        return AnchorParams(alpha=intercept[None, :] * pt.ones((1, k)), beta=matrix[None])


# ------------------------------------------------------------------ scales


@dataclass(frozen=True)
class Scales:
    """The innovation scale of each series in each state: one σ, one per regime (`by =
    "regime"`, optionally ordered), or one per regime of the volatility chain (ordered, calm
    first); per series (`per_series`, a panel's assets) or common."""

    by: str = "none"  # "none" | "regime" | "volatility"
    n: int = 1  # regimes (by regime) or volatility regimes
    per_series: bool = False
    ordered: bool = False

    def declare(self, priors: dict[str, PriorSpec]) -> Any:
        """σ: (), (n,), (A,) or (A, n)."""
        import pytensor.tensor as pt

        level = {"regime": "regime", "volatility": "volatility"}.get(self.by)
        if self.per_series:
            dims: Any = ("asset", level) if level else "asset"
            return make_prior("sigma", priors["sigma"], dims=dims)
        if self.by == "volatility":
            return make_prior("sigma", priors["sigma"], dims="volatility", **ordered_scales(self.n))
        if self.by == "regime" and self.n > 1:
            extra = ordered_scales(self.n) if self.ordered else {}
            return make_prior("sigma", priors["sigma"], dims="regime", **extra)
        sigma = make_prior("sigma", priors["sigma"])
        return sigma * pt.ones(1) if self.by == "regime" else sigma  # one regime: a (1,) vector

    def per_state(self, sigma: Any, space: StateSpace, n_series: int) -> Any:
        """(A, J): the scale of each series in each expanded state."""
        import pytensor.tensor as pt

        j = space.n_states
        index = {"regime": space.regime, "volatility": space.volatility}.get(self.by)
        if index is None:  # one σ (per series)
            values = sigma[:, None] if self.per_series else sigma[None, None]
            return values * pt.ones((n_series, j))
        values = sigma[:, index] if self.per_series else sigma[index][None, :]
        return values * pt.ones((n_series, 1))


# ------------------------------------------------------------------ noise


class Noise(ABC):
    """The law of the standardised innovation u = e / σ."""

    def declare(self, priors: dict[str, PriorSpec]) -> Any:
        """Its parameters, if any (inside the PyMC model context)."""
        return None

    @abstractmethod
    def log_density(self, u: Any, params: Any) -> Any:
        """log f(u) elementwise (PyTensor); the scale's −log σ is added by the emission."""

    @abstractmethod
    def draw(self, rng: np.random.Generator, params: dict[str, np.ndarray], shape: tuple) -> Any:
        """Standardised draws (numpy) of one series' innovations, given the parameter values by
        name (its marginal law)."""

    def draw_joint(
        self, rng: np.random.Generator, params: dict[str, np.ndarray], n: int, n_series: int
    ) -> Any:
        """(n, A) standardised draws of every series' innovations in n months (their joint law;
        default: independent across series)."""
        return self.draw(rng, params, (n, n_series))

    def joint(self, u: Any, log_sig: Any, mask: Any, params: Any, per_series: Any) -> Any:
        """(n, J): the log density of a month's innovations of every series jointly, from their
        standardised values u (n, A, J), log scales (A, J), the scored `mask` (n, A) and the
        per-series log densities (n, A, J, zero where masked). Default: independent series, the
        sum of the per-series densities."""
        return per_series.sum(axis=1)


class NormalNoise(Noise):
    """Standard Normal innovations."""

    def log_density(self, u: Any, params: Any) -> Any:
        return -0.5 * np.log(2 * np.pi) - 0.5 * u**2

    def draw(self, rng: np.random.Generator, params: dict[str, np.ndarray], shape: tuple) -> Any:
        return rng.standard_normal(shape)


class StudentTParams(NamedTuple):
    nu: Any  # degrees of freedom


class StudentTNoise(Noise):
    """Student-t innovations with ν degrees of freedom (σ is then the t's scale, not its sd):
    months of crisis are heavy tails of one regime instead of a regime of their own."""

    def declare(self, priors: dict[str, PriorSpec]) -> StudentTParams:
        return StudentTParams(make_prior("nu", priors["nu"]))

    def log_density(self, u: Any, params: StudentTParams) -> Any:
        import pytensor.tensor as pt

        nu = params.nu
        return (
            pt.gammaln((nu + 1.0) / 2.0)
            - pt.gammaln(nu / 2.0)
            - 0.5 * pt.log(nu * np.pi)
            - (nu + 1.0) / 2.0 * pt.log1p(u**2 / nu)
        )

    def draw(self, rng: np.random.Generator, params: dict[str, np.ndarray], shape: tuple) -> Any:
        return rng.standard_t(np.asarray(params["nu"]), size=shape)


class FactorParams(NamedTuple):
    rho: Any  # (A,) each series' loading on the one common shock (the first series' ≥ 0)


class FactorNoise(NormalNoise):
    """Normal innovations correlated across series through one common shock: u_a = ρ_a f +
    √(1 − ρ_a²) ε_a, so each series' innovation keeps sd σ_a (its marginal law is Normal) and
    two series correlate by ρ_a ρ_b. With shocks this correlated (metals in one month), a shared
    chain that summed independent densities would count one month's news once per series; the
    joint density counts it once. Missing series drop out of the month's joint density exactly
    (the one-factor form: Woodbury sums over the observed series). The first series' loading is
    non-negative (the common shock's sign); the others' prior is `shock_loading`."""

    def declare(self, priors: dict[str, PriorSpec]) -> FactorParams:
        import pymc as pm
        import pytensor.tensor as pt

        first = pm.Uniform("shock_loading_ref", 0.0, 0.99)
        rest = make_prior("shock_loading", priors["shock_loading"], dims="asset_rest")
        return FactorParams(pt.concatenate([first[None], rest]))

    def joint(self, u: Any, log_sig: Any, mask: Any, params: FactorParams, per_series: Any) -> Any:
        import pytensor.tensor as pt

        rho = params.rho[None, :]  # (1, A)
        d = 1.0 - rho**2
        m = mask  # (n, A)
        s1 = (m * rho**2 / d).sum(axis=1)  # (n,)
        s2 = (m[:, :, None] * (rho / d)[:, :, None] * u).sum(axis=1)  # (n, J)
        quad = (m[:, :, None] * u**2 / d[:, :, None]).sum(axis=1)
        log_det = (m * pt.log(d)).sum(axis=1) + pt.log1p(s1)  # of the observed u's covariance
        n_obs = m.sum(axis=1)
        scale = (m[:, :, None] * log_sig[None]).sum(axis=1)  # Σ log σ over the observed series
        inner = quad - s2**2 / (1.0 + s1)[:, None]
        return -0.5 * (n_obs * np.log(2 * np.pi) + log_det)[:, None] - 0.5 * inner - scale

    def draw_joint(
        self, rng: np.random.Generator, params: dict[str, np.ndarray], n: int, n_series: int
    ) -> Any:
        rho = np.concatenate(
            [np.atleast_1d(params["shock_loading_ref"]), np.atleast_1d(params["shock_loading"])]
        )
        common = rng.standard_normal((n, 1))
        return rho * common + np.sqrt(1.0 - rho**2) * rng.standard_normal((n, n_series))


NOISE: dict[str, type[Noise]] = {
    "normal": NormalNoise,
    "student_t": StudentTNoise,
    "factor": FactorNoise,
}


# ------------------------------------------------------------------ forms


class EmissionParams(NamedTuple):
    anchor: AnchorParams
    sigma: Any
    form: Any
    noise: Any


@dataclass(frozen=True)
class Emissions(ABC):
    """A form's one-step conditional mean around the anchor, a scale per state and a noise law:
    log p(y[t, a] | y[<t], state j) = log f(e / σ) − log σ, with e the innovation."""

    anchor: Anchor
    scales: Scales
    noise: Noise = field(default_factory=NormalNoise)

    n_conditioning: int = 0  # leading months conditioned on (set by each form)
    # what the anchor's intercept is in natural units: a level of the series ("level": the
    # anchor at the factors' means) or a change per period ("drift": forms on changes)
    intercept_kind: ClassVar[str] = "level"

    def declare(self, priors: dict[str, PriorSpec]) -> EmissionParams:
        """The anchor's, the scale's, then the form's and the noise's parameters."""
        anchor = self.anchor.declare(priors)
        sigma = self.scales.declare(priors)
        form = self.declare_form(priors)
        return EmissionParams(anchor, sigma, form, self.noise.declare(priors))

    def declare_form(self, priors: dict[str, PriorSpec]) -> Any:
        """Parameters of the form's dynamics (none for a plain level regression)."""
        return None

    def natural_form(self, post: xr.Dataset) -> dict[str, xr.DataArray]:
        """The form's own parameters in natural units, per draw (`posterior_natural`): none
        for a plain level regression."""
        return {}

    @abstractmethod
    def innovations(self, params: EmissionParams, data: ChainData, space: StateSpace) -> Any:
        """e[t, a, j] = y[t, a] (or its change) − its one-step conditional mean in state j:
        (n, A, J). Affine in y[t] with unit slope, so the mean is y − e whatever y[t] holds."""

    def fair_levels(self, alpha: np.ndarray, beta: np.ndarray, data: ChainData) -> np.ndarray:
        """Each regime's fair value of each series in every month of the frame, model scale,
        from draws of the anchor's parameters (D, A, K) and (D, A, K, P): (D, N, A, K). Default:
        the anchor itself, α + x_t'β."""
        return levels(alpha, beta, data.x_all, data.term_mask)

    def log_likelihood(
        self, params: EmissionParams, data: ChainData, space: StateSpace
    ) -> tuple[Any, Any, Any, Any]:
        """(innovations (n, A, J), scales (A, J), each series' log density (n, A, J), zero where
        a month is not scored, and the month's joint log density of every series (n, J))."""
        import pytensor.tensor as pt

        e = self.innovations(params, data, space)
        sig = self.scales.per_state(params.sigma, space, len(data.series))
        u, log_sig = e / sig[None], pt.log(sig)
        mask = scored_mask(data.mask, self.n_conditioning)
        per_series = (self.noise.log_density(u, params.noise) - log_sig[None]) * mask[:, :, None]
        joint = self.noise.joint(u, log_sig, mask, params.noise, per_series)
        return e, sig, per_series, joint


def scored_mask(mask: Any, c: int) -> Any:
    """(T − c, A): months observed and trained, with the c months they condition on."""
    out = mask[c:]
    n = mask.shape[0]
    for i in range(1, c + 1):
        out = out * mask[c - i : n - i]
    return out


@dataclass(frozen=True)
class LevelEmissions(Emissions):
    """y_t − μ_{s_t}(x_t) = Σ_i φ_i (y_{t−i} − μ_{s_{t−i}}(x_{t−i})) + σ ε_t: a switching
    regression (p = 0) or Hamilton's switching-mean MS-AR(p), on the lag-expanded states."""

    ar_order: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_conditioning", self.ar_order)

    def declare_form(self, priors: dict[str, PriorSpec]) -> Any:
        if not self.ar_order:
            return None
        return make_prior("phi", priors["phi"], dims="lag")

    def innovations(self, params: EmissionParams, data: ChainData, space: StateSpace) -> Any:
        p = self.ar_order
        a = params.anchor
        import pytensor.tensor as pt

        resid = data.y[:, :, None] - levels(a.alpha, a.beta, data.x, data.term_mask, pt)
        lags = space.lags
        e = resid[p:][:, :, lags[:, 0]]  # (T-p, A, J)
        for i in range(1, p + 1):  # lag i: rows p-i .. T-1-i (static bounds, any T)
            e = e - params.form[i - 1] * resid[p - i : -i][:, :, lags[:, i]]
        return e


class CorrectionParams(NamedTuple):
    speed: Any  # (A, K) after broadcasting
    gamma: Any  # (A, P) short-run loadings on the anchor terms' changes, or None
    psi: Any  # (L,) lagged changes of the target, or None


@dataclass(frozen=True)
class ErrorCorrectionEmissions(Emissions):
    """Δy_t = −speed_s (y_{t−1} − μ_s(x_{t−1})) + Δx_t'γ + Σ_i ψ_i Δy_{t−i} + σ ε_t: the regime
    owns the anchor and the speed at which the series returns to it; the lagged changes absorb
    the autocorrelation monthly averaging puts into monthly changes. Speeds and short-run
    loadings per regime (one series) or per series and regime (`per_series`, a panel)."""

    short_run_lags: int = 0
    per_series: bool = False
    k: int = 2
    n_terms: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_conditioning", 1 + self.short_run_lags)

    def declare_form(self, priors: dict[str, PriorSpec]) -> CorrectionParams:
        import pytensor.tensor as pt

        if self.per_series:
            speed = make_prior("speed", priors["speed"], dims=("asset", "regime"))
            gamma = (
                make_prior("gamma", priors["gamma"], dims=("asset", "term"))
                if self.n_terms
                else None
            )
        else:
            speed = make_prior("speed", priors["speed"], dims="regime" if self.k > 1 else None)
            speed = speed * pt.ones((1, self.k))
            gamma = (
                make_prior("gamma", priors["gamma"], dims="anchor_term")[None, :]
                if self.n_terms
                else None
            )
        lags = self.short_run_lags
        psi = make_prior("psi", priors["psi"], dims="sr_lag") if lags else None
        return CorrectionParams(speed, gamma, psi)

    def natural_form(self, post: xr.Dataset) -> dict[str, xr.DataArray]:
        """How fast a gap to the anchor halves: ln 0.5 / ln(1 − speed) periods, per draw."""
        speed = post["speed"].clip(0.0, 1.0 - 1e-12)
        half = np.log(0.5) / np.log1p(-speed)
        half.attrs = {"units": "periods", "long_name": "half-life of a gap to the anchor"}
        return {"anchor_half_life": half}

    def innovations(self, params: EmissionParams, data: ChainData, space: StateSpace) -> Any:
        import pytensor.tensor as pt

        a, form = params.anchor, params.form
        mu_prev = levels(a.alpha, a.beta, data.x[:-1], data.term_mask, pt)
        gap = data.y[:-1, :, None] - mu_prev  # (T-1, A, K)
        dy = data.y[1:] - data.y[:-1]  # row t - 1 holds Δy_t
        e = dy[:, :, None] + form.speed[None] * gap
        if form.gamma is not None:  # short-run terms of the anchor factors' changes
            e = e - pt.dot(data.dx, (form.gamma * data.term_mask).T)[:, :, None]
        lags = self.short_run_lags
        if lags:  # Δy_t also moves with Δy_{t-1..t-L}: months 1 + L.. are scored
            e = e[lags:]
            for i in range(1, lags + 1):
                e = e - form.psi[i - 1] * dy[lags - i : -i][:, :, None]
        return e[:, :, space.regime]


@dataclass(frozen=True)
class LoadingsEmissions(Emissions):
    """Δy_t = a_s + Δx_t'b_s + σ ε_t: each regime owns how the series moves with its drivers'
    changes this month (a drift a_s and loadings b_s, the anchor's intercept and slopes applied
    to Δx), so a month's change alone says which regime holds — the form in which an anchor
    shift is visible month by month. Its fair value is one step ahead: last month's level moved
    by what the drivers did this month (`fair_levels`), not a long-run level."""

    intercept_kind: ClassVar[str] = "drift"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_conditioning", 1)

    def innovations(self, params: EmissionParams, data: ChainData, space: StateSpace) -> Any:
        import pytensor.tensor as pt

        a = params.anchor
        moved = levels(a.alpha, a.beta, data.dx, data.term_mask, pt)  # (T-1, A, K)
        dy = data.y[1:] - data.y[:-1]
        return (dy[:, :, None] - moved)[:, :, space.regime]

    def fair_levels(self, alpha: np.ndarray, beta: np.ndarray, data: ChainData) -> np.ndarray:
        """Last month's observed level moved by the regime's drift and loadings on this month's
        changes of the drivers; after the last observed month, the previous fair value moved
        on (a path of the drivers gives the regime's forecast). The frame's first month, which
        the model conditions on, is its own fair value."""
        moved = levels(alpha, beta, np.diff(data.x_all, axis=0), data.term_mask)  # (D, N-1, A, K)
        y = np.asarray(data.y_all)  # (N, A)
        out = np.full((*moved.shape[:-3], len(y), *moved.shape[-2:]), np.nan)
        out[..., 0, :, :] = y[0][:, None]
        for t in range(1, len(y)):
            known = np.isfinite(y[t - 1])[:, None]  # (A, 1)
            base = np.where(known, np.nan_to_num(y[t - 1])[:, None], out[..., t - 1, :, :])
            out[..., t, :, :] = base + moved[..., t - 1, :, :]
        return out
