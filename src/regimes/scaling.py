"""How data go onto a model's scale and back: the one standardisation every family uses.

A model sees its target transformed (log or level), then centred and scaled, and each factor
centred and scaled, by the moments of the frame's scale window (normally the fit window; a
leave-future-out refit keeps its own shorter one). `Scaling` holds those moments, made once from
a frame (`FitFrame.scaling`) and used both ways: onto the model's scale in `build` and back to
natural units in the outputs. A frame may carry a pinned `Scaling` (`FitFrame.fixed_scaling`):
a simulated frame keeps the scaling of the frame it was simulated from, so the parameters it was
drawn with and the parameters a fit on it estimates live on one scale (simulation-based
calibration, recovery and power studies need exactly that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from regimes.draws import Transform, inverse_transform, transform


def _moments(
    values: np.ndarray, rows: np.ndarray, fallback: np.ndarray, ddof: int = 0
) -> tuple[float, float]:
    """Mean and sd of the finite values on `rows`, else on `fallback` rows (a panel asset not yet
    observed in a short leave-future-out window), else (0, 1); a zero sd counts as 1."""
    for where in (rows, fallback):
        v = values[where]
        v = v[np.isfinite(v)]
        if len(v) >= 2:
            return float(v.mean()), float(v.std(ddof=ddof)) or 1.0
    return 0.0, 1.0


@dataclass(frozen=True)
class Scaling:
    """Centre and scale of each target series (after `transform`) and of each factor."""

    transform: Transform
    y_mean: Mapping[str, float]  # per target series (a panel: every asset, reference first)
    y_sd: Mapping[str, float]
    x_mean: Mapping[str, float]  # per factor
    x_sd: Mapping[str, float]

    @classmethod
    def of(
        cls,
        targets: Mapping[str, np.ndarray],
        factors: Mapping[str, np.ndarray],
        scale: np.ndarray,
        fallback: np.ndarray,
        how: Transform,
    ) -> Scaling:
        """The moments of `targets` (natural units, transformed by `how`) and `factors` over the
        `scale` rows (`fallback` rows for a target with fewer than two values there)."""
        y = {name: _moments(transform(v, how), scale, fallback) for name, v in targets.items()}
        # factors: the sample sd (ddof 1), as the switching families have always scaled them
        x = {name: _moments(np.asarray(v, float), scale, scale, 1) for name, v in factors.items()}
        return cls(
            transform=how,
            y_mean={n: m for n, (m, _) in y.items()},
            y_sd={n: s for n, (_, s) in y.items()},
            x_mean={n: m for n, (m, _) in x.items()},
            x_sd={n: s for n, (_, s) in x.items()},
        )

    # ------------------------------------------------------------------ targets

    def _target_moments(self, series: Sequence[str] | str | None) -> tuple[np.ndarray, np.ndarray]:
        names = [next(iter(self.y_mean))] if series is None else series
        if isinstance(names, str):
            return np.asarray(self.y_mean[names]), np.asarray(self.y_sd[names])
        return (
            np.array([self.y_mean[n] for n in names]),
            np.array([self.y_sd[n] for n in names]),
        )

    def target(self, values: np.ndarray, series: Sequence[str] | str | None = None) -> np.ndarray:
        """Natural units onto the model's scale: (transform(y) − mean) / sd. `series`: one name
        (or None: the first target) for a (..., N) array, a list of names for (..., N, A)."""
        if series is None:
            series = next(iter(self.y_mean))
        mean, sd = self._target_moments(series)
        return (transform(np.asarray(values, dtype=float), self.transform) - mean) / sd

    def natural(self, z: np.ndarray, series: Sequence[str] | str | None = None) -> np.ndarray:
        """The model's scale back to natural units (the inverse of `target`)."""
        if series is None:
            series = next(iter(self.y_mean))
        mean, sd = self._target_moments(series)
        return inverse_transform(mean + sd * z, self.transform)  # (an xarray object stays one)

    def transformed(self, z: np.ndarray, series: str | None = None) -> np.ndarray:
        """The model's scale back to the transformed scale (log units for a log target)."""
        mean, sd = self._target_moments(series or next(iter(self.y_mean)))
        return mean + sd * np.asarray(z, dtype=float)

    def log_jacobian(self, values: np.ndarray, series: Sequence[str] | str | None = None):
        """log |dz/dy| of natural values y: −log sd, and −log y for a log target (NaN stays)."""
        if series is None:
            series = next(iter(self.y_mean))
        _, sd = self._target_moments(series)
        y = np.asarray(values, dtype=float)
        jac = np.broadcast_to(-np.log(sd), y.shape).copy()
        if self.transform == "log":
            with np.errstate(invalid="ignore", divide="ignore"):
                jac = jac - np.log(y)
        return jac

    def y_sd_of(self, series: str | None = None) -> float:
        """The sd of one target series on its transformed scale (the first target by default)."""
        return float(self.y_sd[series or next(iter(self.y_sd))])

    def moments(self, series: str | None = None) -> tuple[float, float]:
        """(mean, sd) of one target series on its transformed scale (the first by default)."""
        name = series or next(iter(self.y_mean))
        return float(self.y_mean[name]), float(self.y_sd[name])

    # ------------------------------------------------------------------ factors

    def factors(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Factor columns (..., N, P) in natural units onto the model's scale."""
        if not len(names):
            return np.zeros((*np.shape(x)[:-1], 0))
        mean = np.array([self.x_mean[n] for n in names])
        sd = np.array([self.x_sd[n] for n in names])
        return (np.asarray(x, dtype=float) - mean) / sd

    def intercept(self, a: np.ndarray, b: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """A standardised intercept `a` (...) with slopes `b` (..., P) as the intercept on the
        transformed scale, at factors of zero: mean_y + sd_y·(a − Σ b·mean_x/sd_x)."""
        mean = np.array([self.x_mean[n] for n in names])
        sd = np.array([self.x_sd[n] for n in names])
        return self.transformed(np.asarray(a) - (np.asarray(b) * mean / sd).sum(axis=-1))

    def slope(self, b: np.ndarray, names: Sequence[str], series: str | None = None) -> np.ndarray:
        """Standardised slopes (..., P) in natural units: change of the transformed target per
        unit of each factor, b · sd_y / sd_x."""
        sd = np.array([self.x_sd[n] for n in names])
        return np.asarray(b) * self.y_sd_of(series) / sd
