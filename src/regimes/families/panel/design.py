"""The data a panel model sees: every asset's transformed series standardised on its own observed
months, a mask of the months each asset contributes (observed and trained; never filled in), the
anchor terms standardised on the fit window, and which terms each asset is anchored on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from regimes.dataset import FitFrame
from regimes.draws import transform
from regimes.errors import ConfigError
from regimes.families.panel.options import Options


@dataclass(frozen=True)
class PanelDesign:
    """Standardised arrays of the fit window (T months, A assets, P anchor terms) and what is
    needed to go back to natural units."""

    y: np.ndarray  # (T, A) standardised; 0 where the mask is 0 (never read there)
    mask: np.ndarray  # (T, A) 1.0 where the asset's month enters the likelihood, else 0.0
    x: np.ndarray  # (T, P) standardised anchor terms
    x_all: np.ndarray  # (N, P) over every month of the frame (fair value)
    dx: np.ndarray  # (T-1, P) month-on-month changes of x (error-correction short-run terms)
    term_mask: np.ndarray  # (A, P) 1.0 where asset a is anchored on term p
    regime_mask: np.ndarray | None  # (K, P) 1.0 where term p is in regime k's anchor set
    z: np.ndarray  # (T, Q) standardised transition covariates
    z_all: np.ndarray  # (N, Q)
    assets: list[str]
    terms: list[str]
    covariates: list[str]
    y_mean: np.ndarray  # (A,)
    y_sd: np.ndarray  # (A,)
    x_mean: dict[str, float]
    x_sd: dict[str, float]

    def scored_mask(self, c: int) -> np.ndarray:
        """(T - c, A): 1.0 where an asset's month is scored — observed, and for the
        error-correction form (c = 1) observed the month before too."""
        return self.mask[c:] * self.mask[: len(self.mask) - c] if c else self.mask


def _moments(values: np.ndarray, rows: np.ndarray, fallback: np.ndarray) -> tuple[float, float]:
    """Mean and sd of a series' finite values on `rows`, else on `fallback` rows (an asset not
    yet observed in a short leave-future-out window), else (0, 1)."""
    for where in (rows, fallback):
        v = values[where]
        v = v[np.isfinite(v)]
        if len(v) >= 2:
            return float(v.mean()), float(v.std()) or 1.0
    return 0.0, 1.0


def anchor_sets(opts: Options, terms: list[str], where: str) -> np.ndarray | None:
    """(K, P) mask of each regime's anchor set (None without `anchors`); every listed term must
    be an anchor term, and every anchor term must price some regime."""
    if opts.anchors is None:
        return None
    for name, listed in opts.anchors.items():
        unknown = [t for t in listed if t not in terms]
        if unknown:
            raise ConfigError(
                f"{where}: key 'options.anchors.{name}': {unknown} are not anchor terms of this "
                f"experiment; use factors from {terms} (add others to data.factors)"
            )
    unused = [t for t in terms if not any(t in v for v in opts.anchors.values())]
    if unused:
        raise ConfigError(
            f"{where}: key 'options.anchors': the factors {unused} price no regime; list them in "
            "a regime's anchor set or drop them from data.factors"
        )
    return np.array([[float(t in opts.anchors[n]) for t in terms] for n in opts.names])


def design(frame: FitFrame, opts: Options, where: str = "model options") -> PanelDesign:
    """Standardise every asset and anchor term; check the options against the frame's factors."""
    missing = [c for c in opts.transition_covariates if c not in frame.factors]
    if missing:
        raise ConfigError(
            f"{where}: key 'options.transition_covariates': {missing} are not factors of this "
            f"experiment; add them to data.factors (factors: {list(frame.factors)})"
        )
    terms = [t for t in frame.factors if t not in opts.transition_covariates]
    if opts.ordered and opts.order_by != "intercept" and opts.order_by not in terms:
        raise ConfigError(
            f"{where}: key 'options.order_by': {opts.order_by!r} must be 'intercept' or an anchor "
            f"term {terms}"
        )
    regime_mask = anchor_sets(opts, terms, where)
    assets = list(frame.panel_assets)
    fit, scale, train = frame.fit.to_numpy(), frame.scale, frame.train
    try:
        y_all = transform(frame.Y.to_numpy(dtype=float), opts.transform)  # (N, A)
    except ValueError:
        raise ConfigError(
            f"{where}: key 'options.transform': 'log' needs positive prices for every asset "
            f"{assets}; use transform = 'level'"
        ) from None
    moments = [_moments(y_all[:, a], scale, fit) for a in range(len(assets))]
    y_mean = np.array([m for m, _ in moments])
    y_sd = np.array([s for _, s in moments])
    y_std = (y_all - y_mean) / y_sd
    observed = np.isfinite(y_std) & train[:, None]
    mask = observed[fit].astype(float)
    y = np.where(observed, y_std, 0.0)[fit]
    x_frame = frame.X
    x_mean = {c: float(x_frame[c][scale].mean()) for c in frame.factors}
    x_sd = {c: float(x_frame[c][scale].std()) or 1.0 for c in frame.factors}

    def std(cols: list[str]) -> np.ndarray:
        if not cols:
            return np.zeros((len(frame.time), 0))
        return np.column_stack([(x_frame[c].to_numpy() - x_mean[c]) / x_sd[c] for c in cols])

    xs, zs = std(terms), std(list(opts.transition_covariates))
    term_mask = np.array(
        [[float(t in frame.anchor_terms(a)) for t in terms] for a in assets]
    ).reshape(len(assets), len(terms))
    return PanelDesign(
        y=y,
        mask=mask,
        x=xs[fit],
        x_all=xs,
        dx=np.diff(xs[fit], axis=0),
        term_mask=term_mask,
        regime_mask=regime_mask,
        z=zs[fit],
        z_all=zs,
        assets=assets,
        terms=terms,
        covariates=list(opts.transition_covariates),
        y_mean=y_mean,
        y_sd=y_sd,
        x_mean=x_mean,
        x_sd=x_sd,
    )
