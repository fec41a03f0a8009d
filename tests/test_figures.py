"""Memo figures on a synthetic Markov `derived` dataset: shapes, labels, files, reproducibility."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from regimes.figures.fair_value import plot_fair_value
from regimes.figures.regimes import (
    plot_durations,
    plot_regime_ribbon,
    plot_transition_matrix,
    regime_figures,
)

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
NAMES = ["real_rate_anchor", "fiscal_anchor", "crisis_bid"]


def make_derived(
    k: int = 2, n: int = 60, freq: str = "MS", n_forecast: int = 3, seed: int = 0
) -> xr.Dataset:
    """A small, plausible Markov-family `derived` dataset (no sampling), like a run's derived.nc."""
    rng = np.random.default_rng(seed)
    names = NAMES[:k]
    time = pd.date_range("2015-01-01", periods=n, freq=freq)
    q = np.asarray(QUANTILES)

    # transition draws: persistent diagonal, rows sum to one
    alpha = np.full((k, k), 1.0) + np.eye(k) * 30.0
    draws = np.stack([[rng.dirichlet(alpha[i]) for i in range(k)] for _ in range(400)])  # (D,K,K)
    transition = np.moveaxis(np.quantile(draws, q, axis=0), 0, -1)
    durations = np.moveaxis(
        np.quantile(1.0 / (1.0 - np.diagonal(draws, axis1=1, axis2=2)), q, axis=0), 0, -1
    )

    # regime path and smoothed-looking probabilities that sum to one
    state = np.zeros(n, dtype=int)
    for t in range(1, n):
        state[t] = state[t - 1] if rng.random() < 0.9 else rng.integers(k)
    logits = 3.0 * np.eye(k)[state] + rng.normal(0, 0.5, (n, k))
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    spread = np.array([-0.1, -0.04, 0.0, 0.04, 0.1])
    prob_q = np.clip(prob[:, :, None] + spread, 0.0, 1.0)

    level = np.array([1200.0, 1600.0, 2000.0])[:k]
    fv_k = level[None, :, None] * np.exp(np.linspace(0, 0.3, n))[:, None, None] * (1 + spread)
    fv_mid = (prob * fv_k[:, :, 2]).sum(axis=1)
    fair_value = fv_mid[:, None] * (1 + 1.5 * spread)[None, :]
    price = fv_mid * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    price[-2:] = np.nan  # price not yet observed at the end
    deviation = 100.0 * (price[:, None] / fair_value[:, ::-1] - 1.0)
    in_sample = np.ones(n, dtype=np.int8)
    if n_forecast:
        in_sample[-n_forecast:] = 0
    path = np.asarray(names, dtype=object)[state]
    path[in_sample == 0] = ""
    switch = np.r_[0.0, (np.diff(state) != 0).astype(float)]
    switch[in_sample == 0] = np.nan

    return xr.Dataset(
        {
            "price": ("time", price, {"units": "USD per troy oz", "long_name": "gold"}),
            "fair_value": (("time", "quantile"), fair_value, {"units": "USD per troy oz"}),
            "deviation_pct": (("time", "quantile"), deviation, {"units": "%"}),
            "regime_prob": (("time", "regime"), prob),
            "regime_prob_q": (("time", "regime", "quantile"), prob_q),
            "fair_value_by_regime": (("time", "regime", "quantile"), fv_k),
            "expected_duration": (("regime", "quantile"), durations, {"units": "periods"}),
            "transition": (("regime", "regime_to", "quantile"), transition),
            "most_likely_regime": ("time", path.astype(str)),
            "switch_prob": ("time", switch),
            "in_sample": ("time", in_sample),
        },
        coords={"time": time, "quantile": q, "regime": names, "regime_to": names},
        attrs={"experiment": f"synthetic_ms{k}", "k_regimes": k, "regime_names": ",".join(names)},
    )


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test leaves open."""
    yield
    plt.close("all")


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("freq", ["MS", "QS"])
def test_regime_ribbon(k: int, freq: str) -> None:
    derived = make_derived(k=k, freq=freq)
    fig = plot_regime_ribbon(derived, source="synthetic")
    assert isinstance(fig, Figure)
    top, bottom = fig.axes
    assert top.get_title(loc="left").startswith(f"synthetic_ms{k}:")
    assert "USD per troy oz" in top.get_ylabel()
    assert bottom.get_ylabel() == "regime probability"
    assert bottom.get_ylim() == (0.0, 1.0)
    assert bottom.get_xlabel() == ("quarter" if freq == "QS" else "month")
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert {"gold", "fair value, median", "fair value, 90% band"} <= set(legend)
    assert all(name.replace("_", " ") in legend for name in NAMES[:k])
    assert len(bottom.collections) >= k  # one stacked area per regime
    assert any(t.startswith("forecast") for t in legend)
    assert any(t.get_text() == "Source: synthetic" for t in fig.texts)


def test_regime_ribbon_log_and_no_forecast() -> None:
    derived = make_derived(k=2, n_forecast=0)
    fig = plot_regime_ribbon(derived, log_scale=True)
    assert len(fig.axes) == 2
    top = fig.axes[0]
    assert top.get_yscale() == "log"
    assert not any("forecast" in t.get_text() for t in top.get_legend().get_texts())
    assert not fig.texts


@pytest.mark.parametrize("k", [2, 3])
def test_transition_matrix(k: int) -> None:
    derived = make_derived(k=k)
    fig = plot_transition_matrix(derived)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # heatmap + colour bar
    ax, bar = fig.axes
    assert "transition" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"from {n.replace('_', ' ')}" for n in NAMES[:k]
    ]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        f"to {n.replace('_', ' ')}" for n in NAMES[:k]
    ]
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == k * k
    med = derived["transition"].sel(quantile=0.5).values
    assert cells[0].startswith(f"{med[0, 0]:.3f}\n[") and "–" in cells[0]
    assert bar.get_ylim() == (0.0, 1.0)


@pytest.mark.parametrize("k", [2, 3])
def test_durations(k: int) -> None:
    derived = make_derived(k=k)
    fig = plot_durations(derived)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "expected duration (periods)"
    assert "duration" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_yticklabels()] == [n.replace("_", " ") for n in NAMES[:k]]


def test_durations_log_axis_only_when_wide() -> None:
    derived = make_derived(k=2)
    narrow = derived.copy()
    narrow["expected_duration"] = (
        ("regime", "quantile"),
        np.array([[8.0, 10, 12, 14, 18], [20, 25, 30, 35, 45]]),
    )
    assert plot_durations(narrow).axes[0].get_xscale() == "linear"
    wide = derived.copy()
    wide["expected_duration"] = (
        ("regime", "quantile"),
        np.array([[2.0, 4, 6, 12, 30], [10, 30, 60, 120, 400]]),
    )
    assert plot_durations(wide).axes[0].get_xscale() == "log"


def test_regime_figures_files_and_reproducibility(tmp_path: Path) -> None:
    derived = make_derived(k=3)
    first = regime_figures(derived, tmp_path / "a", source="synthetic")
    second = regime_figures(derived, tmp_path / "b", source="synthetic")
    stems = ["regime_ribbon", "transition_matrix", "durations"]
    assert sorted(p.name for p in first) == sorted(
        f"{s}.{e}" for s in stems for e in ("png", "svg")
    )
    for path in first:
        assert path.is_file() and path.stat().st_size > 0
        if path.suffix == ".png":
            image = mpimg.imread(path)
            assert image.shape[0] > 100 and image.shape[1] > 100
            assert np.ptp(image[..., :3]) > 0.1  # not a single flat colour
    for a, b in zip(sorted(first), sorted(second), strict=True):
        if a.suffix == ".svg":
            assert a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.parametrize("k", [2, 3])
def test_fair_value_on_markov_dataset(k: int) -> None:
    derived = make_derived(k=k)
    fig = plot_fair_value(derived, source="synthetic")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert "fair value" in ax.get_title(loc="left")
    assert "USD per troy oz" in ax.get_ylabel()


def test_durations_undefined_for_every_regime_draw_without_a_warning() -> None:
    """A model whose regimes have no expected duration (every quantile NaN) still gets its
    figure, on a linear axis, without NumPy's all-NaN warning."""
    import warnings

    derived = make_derived(k=2)
    derived["expected_duration"] = (("regime", "quantile"), np.full((2, 5), np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_durations(derived)
    assert fig.axes[0].get_xscale() == "linear"
