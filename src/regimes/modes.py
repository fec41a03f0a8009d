"""Multimodal posteriors, handled rather than averaged (Yao, Vehtari & Gelman 2022, "Stacking
for non-mixing Bayesian computations", JMLR 23).

When the multi-start optimisation finds several distinct optima whose log densities are close
(`distinct_modes`), the sampler starts chains at each (`SamplerSection.modes = "stack"`), and
the run records which mode each chain started in (`chain_mode`). Afterwards:

- convergence is judged *within* each mode (`diagnostics.diagnose` reads `chain_mode`): chains
  of one mode must mix with each other; chains of different modes are not expected to;
- each mode's pointwise PSIS-LOO predictive densities give the stacking weights
  (`stacking_weights`): the weights w on the simplex that maximise Σ_i log Σ_k w_k p_k(y_i | y_−i);
- the combined posterior (`stacked_tree`) draws from each mode in proportion to its weight, and
  the derived quantities are computed from it.

With `SamplerSection.modes = "mass"` the chains start the same way, but the modes are where the
chains end up (each chain its own, merged with the chains it mixes with: `merge_mixing_modes`)
and each mode's weight is its share of the posterior mass, estimated by bridge sampling from its
own chains (`mode_masses`, `regimes.bridge`): the weights a single sampler that crossed between
the modes would give, so the combined draws are the posterior, not a predictive ensemble.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from regimes.bridge import BridgeEstimate, log_mass, weights_from_log_masses
from regimes.diagnostics import quick_verdict

# deferred to the functions that use them: ArviZ, SciPy, xarray (docs/modules.md#imports)

MODE_GAP = 10.0  # log-density units: optima further below the best are not sampled
MODE_DISTANCE = 1.0  # unconstrained space, max-abs: optima closer than this are one mode
# `modes = "mass"`: chains whose union has R-hat within this are one mode (Gelman & Rubin's
# classical bound: modes far enough apart to matter give far more; one mode counted as two
# would double its weight, so merging errs on the side of merging)
MERGE_RHAT = 1.1


def distinct_modes(
    optima: list[tuple[float, np.ndarray]], gap: float = MODE_GAP, limit: int = 4
) -> list[tuple[float, np.ndarray]]:
    """The distinct optima (best first) within `gap` of the best, at most `limit`."""
    kept: list[tuple[float, np.ndarray]] = []
    for lp, x in sorted(optima, key=lambda o: -o[0]):
        if kept and lp < kept[0][0] - gap:
            break
        if all(np.max(np.abs(x - y)) > MODE_DISTANCE for _, y in kept):
            kept.append((lp, x))
        if len(kept) == limit:
            break
    return kept


def merge_mixing_modes(
    draws: np.ndarray,
    chain_mode: list[int],
    mode_lps: list[float],
    rhat_max: float | None = None,
) -> tuple[list[int] | None, list[float]]:
    """Chains started in different optima that ended up sampling one distribution (R-hat of
    every scalar over the union of their chains within `rhat_max`, by default the gate's) are
    one mode: the optima were bumps of one basin. `draws` (chain, draw, param); returns the
    chains' relabelled modes (None where one mode is left) and each remaining mode's best
    optimum (`mode_lps` ordered best first, as `distinct_modes` gives them)."""
    from regimes.diagnostics import RHAT_MAX, element_diagnostics

    rhat_max = RHAT_MAX if rhat_max is None else rhat_max

    labels = sorted(set(chain_mode))
    parent = {m: m for m in labels}

    def root(m: int) -> int:
        while parent[m] != m:
            m = parent[m]
        return m

    chain_of = np.asarray(chain_mode)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            if root(a) == root(b):
                continue
            both = np.flatnonzero((chain_of == a) | (chain_of == b))
            rhat, _ = element_diagnostics(draws[both])
            if np.all(np.isfinite(rhat)) and float(np.max(rhat)) <= rhat_max:
                parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for m in labels:
        groups.setdefault(root(m), []).append(m)
    best = {r: max(members, key=lambda m: mode_lps[m]) for r, members in groups.items()}
    roots = sorted(groups, key=lambda r: -mode_lps[best[r]])  # best mode first
    if len(roots) == 1:
        return None, [mode_lps[best[roots[0]]]]
    new = {r: k for k, r in enumerate(roots)}
    return [new[root(m)] for m in chain_mode], [mode_lps[best[r]] for r in roots]


def chain_modes(tree: Any) -> np.ndarray | None:
    """The mode of each chain as the sampler recorded it (the optimum it started in; with
    `modes = "mass"`, where it ended up), or None for one mode."""
    modes = tree.attrs.get("chain_mode")
    if modes is None:
        return None
    modes = np.asarray(modes, dtype=int).ravel()
    return modes if len(set(modes.tolist())) > 1 else None


def _chains_of(modes: np.ndarray) -> dict[int, list[int]]:
    return {int(m): [int(c) for c in np.flatnonzero(modes == m)] for m in np.unique(modes)}


def _mode_tree(tree: Any, chains: list[int]) -> Any:
    """The chains of one mode, as a tree of a single mode."""
    sub = tree.isel(chain=chains)
    sub.attrs = {k: v for k, v in tree.attrs.items() if k != "chain_mode"}
    return sub


def pointwise_elpd(tree: Any) -> dict[int, np.ndarray]:
    """Each mode's PSIS-LOO pointwise log predictive densities (from its own chains)."""
    import arviz as az

    modes = chain_modes(tree)
    if modes is None or "log_likelihood" not in tree.children:
        return {}
    var = next(iter(tree["log_likelihood"].data_vars))
    return {
        m: np.asarray(az.loo(_mode_tree(tree, c), pointwise=True, var_name=var).elpd_i).ravel()
        for m, c in _chains_of(modes).items()
    }


EQUAL_GAIN = 1.0  # log-score gain over equal weights below which the modes predict alike


def stack(lpd: np.ndarray) -> np.ndarray:
    """Stacking weights for pointwise log densities lpd (n, K): argmax over the simplex of
    Σ_i log Σ_k w_k exp(lpd_ik) (softmax parametrisation, L-BFGS). Where the best weights gain
    less than `EQUAL_GAIN` over equal weights, the modes predict alike, prediction cannot tell
    them apart (e.g. mirror-image modes), and the weights are equal."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    lpd = np.asarray(lpd, dtype=float)
    k = lpd.shape[1]
    if k == 1:
        return np.ones(1)

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        logw = z - logsumexp(z)
        mix = lpd + logw[None, :]
        total = logsumexp(mix, axis=1)  # (n,)
        resp = np.exp(mix - total[:, None])  # (n, K): share of each mode in each point
        w = np.exp(logw)
        grad = resp.sum(axis=0) - len(lpd) * w
        return -float(total.sum()), -grad

    res = minimize(objective, np.zeros(k), jac=True, method="L-BFGS-B")
    if objective(np.zeros(k))[0] - res.fun < EQUAL_GAIN:
        return np.full(k, 1.0 / k)
    return softmax(res.x)


def mode_masses(
    tree: Any,
    free_names: list[str],
    flatten: Callable[[list[np.ndarray]], np.ndarray],
    log_density: Callable[[np.ndarray], np.ndarray],
    seed: int,
) -> dict[int, BridgeEstimate]:
    """Each mode's log posterior mass by bridge sampling over its own chains' draws (one mode,
    every chain, where the chains started in one: the log evidence log p(y)): `flatten`
    maps the free variables' draws (each (n, *shape)) to unconstrained vectors (n, d), and
    `log_density` gives the log density (Jacobians included) at a batch of them."""
    post = tree["posterior"]
    modes = chain_modes(tree)
    if modes is None:  # one mode: every chain
        modes = np.zeros(post.sizes["chain"], dtype=int)
    rng = np.random.default_rng(seed)
    out = {}
    for m, chains in _chains_of(modes).items():
        rvs = []
        for name in free_names:
            values = post[name].isel(chain=chains).transpose("chain", "draw", ...).values
            rvs.append(values.reshape(-1, *values.shape[2:]))
        flat = flatten(rvs)
        out[m] = log_mass(flat, log_density(flat), log_density, rng)
    return out


def mass_weights(tree: Any) -> dict[int, float]:
    """Each mode's share of the posterior mass, from the log masses the sampler recorded."""
    log_masses = tree.attrs.get("mode_log_mass")
    modes = chain_modes(tree)
    if log_masses is None or modes is None:
        return {}
    keys = [int(m) for m in np.unique(modes)]
    return weights_from_log_masses(dict(zip(keys, map(float, log_masses), strict=True)))


def mode_weights(tree: Any) -> dict[int, float]:
    """The weights the modes are combined with: their posterior mass where the sampler
    estimated it (`modes = "mass"`), else stacking."""
    return mass_weights(tree) or stacking_weights(tree)


def stacking_weights(tree: Any) -> dict[int, float]:
    """Stacking weight of each mode from its pointwise LOO densities."""
    elpd = pointwise_elpd(tree)
    if not elpd:
        return {}
    keys = sorted(elpd)
    weights = stack(np.column_stack([elpd[m] for m in keys]))
    return {m: float(w) for m, w in zip(keys, weights, strict=True)}


def stacked_tree(tree: Any, weights: dict[int, float], seed: int = 0) -> Any:
    """A posterior of the same (chain, draw) size whose draws come from each mode in proportion
    to its weight (resampled from that mode's chains), for the derived quantities. Chains lose
    their meaning in it: diagnostics are read from the original tree."""
    import xarray as xr

    modes = chain_modes(tree)
    if modes is None:
        return tree
    post = tree["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    total = n_chain * n_draw
    rng = np.random.default_rng(seed)
    flat = post.stack(sample=("chain", "draw"))
    chain_of = np.repeat(np.arange(n_chain), n_draw)
    counts = np.floor(np.array([weights.get(int(m), 0.0) for m in np.unique(modes)]) * total)
    counts = counts.astype(int)
    counts[np.argmax(counts)] += total - counts.sum()
    picks = []
    for m, count in zip(np.unique(modes), counts, strict=True):
        pool = np.flatnonzero(np.isin(chain_of, np.flatnonzero(modes == m)))
        if count:
            picks.append(rng.choice(pool, size=count, replace=count > len(pool)))
    idx = rng.permutation(np.concatenate(picks))
    picked = flat.isel(sample=idx).drop_vars(["sample", "chain", "draw"])
    values = {
        name: (
            ("chain", "draw", *[d for d in var.dims if d != "sample"]),
            np.moveaxis(var.values, var.dims.index("sample"), 0).reshape(
                n_chain, n_draw, *[picked.sizes[d] for d in var.dims if d != "sample"]
            ),
        )
        for name, var in picked.data_vars.items()
    }
    coords = {k: v for k, v in post.coords.items() if k not in ("chain", "draw")}
    coords |= {"chain": post["chain"].values, "draw": post["draw"].values}
    out = tree.copy()
    out["posterior"] = xr.DataTree(xr.Dataset(values, coords=coords, attrs=post.attrs))
    out.attrs = {**tree.attrs, "stacked": 1}
    return out


def stacked(tree: Any, seed: int = 0) -> tuple[Any, dict[int, float]]:
    """The tree with its modes combined by stacking (`stacked_tree`) and the weights; the tree
    as it is and no weights when its chains started in one mode."""
    if chain_modes(tree) is None:
        return tree, {}
    weights = mode_weights(tree)
    return stacked_tree(tree, weights, seed=seed), weights


def multimodal_summary(tree: Any, verdict: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Modes, their log densities, weights and whether every mode mixes within itself (from
    `verdict`, the tree's gate, which judges each mode on its own; computed when not given), for
    the manifest and derived.nc; None for a single mode."""
    modes = chain_modes(tree)
    if modes is None:
        return None
    weights = mode_weights(tree)
    by = "posterior mass" if "mode_log_mass" in tree.attrs else "stacking"
    verdict = quick_verdict(tree) if verdict is None else verdict
    order = sorted(weights, key=lambda m: -weights[m])
    text = " / ".join(f"{weights[m]:.2f}" for m in order)
    return {
        "n_modes": len(weights),
        "weights": weights,
        "weighted_by": by,
        "status": f"multimodal: {len(weights)} modes, weights by {by} {text}",
        "log_densities": list(tree.attrs.get("mode_log_densities", [])),
        "converged_within": verdict["converged"],
    }


def multimodal_verdict(verdict: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The run's verdict for stacked modes (the gate already judged mixing within each mode):
    its status names the modes and their weights."""
    return {
        **verdict,
        "status": summary["status"] if verdict["converged"] else "not_converged",
        "modes": {
            "n_modes": summary["n_modes"],
            "weights": {str(k): round(w, 4) for k, w in summary["weights"].items()},
            "log_densities": summary["log_densities"],
            "weighted_by": summary["weighted_by"],
        },
    }
