"""Convergence checks on a posterior DataTree: `quick_verdict` at fit time, `diagnose` as the full gate."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from regimes.errors import ConfigError

# deferred to the functions that use them: ArviZ (docs/modules.md#imports)

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
BFMI_MIN = 0.3
DEFAULT_MAX_TREEDEPTH = 10  # PyMC and numpyro NUTS default
DIVERGENCE_HINT = "raise target_accept or reparametrise"  # regimes.advice may say better
LP_GAP_MIN = 2.0  # log-density units: a chain this far below the best sits in another mode


def element_diagnostics(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat and bulk ESS (Vehtari et al. 2021, arviz-stats) of each
    scalar of (chain, draw, param) draws: the same estimators `diagnose` reports per element."""
    from arviz_stats.base import array_stats

    by_param = np.moveaxis(np.asarray(draws, dtype=float), -1, 0)  # (param, chain, draw)
    with warnings.catch_warnings():  # constant draws (a structural zero): NaN
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        rhat = array_stats.rhat(by_param, chain_axis=1, draw_axis=2)
        ess = array_stats.ess(by_param, chain_axis=1, draw_axis=2, method="bulk")
    return np.asarray(rhat), np.asarray(ess)


def chain_agreement(tree) -> dict[str, Any]:
    """Do all chains explore the same mode? Compares per-chain mean log density.

    A chain stuck in a degenerate mode of a mixture (two regimes with nearly equal means) has a
    clearly lower log density than the others; it is named, never silently averaged in.
    """
    stats = tree["sample_stats"]
    if "lp" not in stats:
        return {"agree": True, "chain_mean_lp": [], "off_chains": []}
    lp = np.asarray(stats["lp"].values, dtype=float)  # (chain, draw)
    means = lp.mean(axis=1)
    n_draw = lp.shape[1]
    se = lp.std(axis=1).max() / np.sqrt(max(n_draw / 20.0, 1.0))
    threshold = LP_GAP_MIN + 4.0 * se
    best = means.max()
    off = [int(c) for c in np.flatnonzero(best - means > threshold)]
    return {
        "agree": not off,
        "chain_mean_lp": [round(float(m), 2) for m in means],
        "off_chains": off,
        "lp_gap_threshold": round(float(threshold), 2),
    }


def quick_verdict(tree) -> dict[str, Any]:
    """The full gate (`diagnose`) summarised as the JSON-able verdict stored in the manifest."""
    d = diagnose(tree)
    agree = bool(d.chain_agreement["agree"])
    return {
        "converged": d.passed,
        "status": "ok" if d.passed else ("chains_disagree" if not agree else "not_converged"),
        "reasons": list(d.reasons),
        "max_rhat": round(float(d.max_rhat), 4),
        "min_ess_bulk": round(float(d.min_ess_bulk), 1),
        "min_ess_tail": round(float(d.min_ess_tail), 1),
        "divergences": int(d.divergences),
        "bfmi": [round(float(b), 3) for b in d.bfmi],
        "chains_agree": agree,
        "chain_agreement": d.chain_agreement,
        "thresholds": {
            "rhat_max": d.thresholds.rhat_max,
            "ess_bulk_min_per_chain": d.thresholds.ess_min_per_chain,
            "ess_tail_min_per_chain": d.thresholds.ess_min_per_chain,
            "bfmi_min": d.thresholds.bfmi_min,
            "divergences_max": d.thresholds.divergences_max,
        },
    }


@dataclass(frozen=True)
class Thresholds:
    """Limits of the full convergence gate; defaults follow Vehtari et al. (2021) and Stan."""

    rhat_max: float = RHAT_MAX
    ess_min_per_chain: float = ESS_PER_CHAIN_MIN  # bulk and tail ESS, times the number of chains
    bfmi_min: float = BFMI_MIN
    divergences_max: int = 0

    def __post_init__(self) -> None:
        if not self.rhat_max >= 1.0 or self.ess_min_per_chain < 0 or self.bfmi_min < 0:
            raise ConfigError(
                f"invalid diagnostic thresholds: R-hat max {self.rhat_max} (must be >= 1), "
                f"ESS min {self.ess_min_per_chain} and E-BFMI min {self.bfmi_min} (must be >= 0)"
            )


@dataclass(frozen=True)
class VariableDiagnostic:
    """Diagnostics of one scalar posterior element, e.g. `beta[real_rate]`."""

    name: str
    r_hat: float
    ess_bulk: float
    ess_tail: float
    mcse_mean: float
    problems: tuple[str, ...] = ()
    severity: float = 0.0  # >1 fails; used to sort the table worst first

    @property
    def ok(self) -> bool:
        """Whether this element passes every per-variable check."""
        return not self.problems


@dataclass(frozen=True)
class Diagnosis:
    """The full gate's result: per-variable rows, sampler checks and a verdict with reasons."""

    variables: list[VariableDiagnostic]
    chains: int
    draws: int
    divergences: int
    treedepth_share: float | None
    max_treedepth: int | None
    bfmi: list[float]
    chain_agreement: dict[str, Any]
    thresholds: Thresholds
    passed: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def max_rhat(self) -> float:
        """Largest R-hat over all elements (NaN if none is defined)."""
        return _nan_extreme([v.r_hat for v in self.variables], max)

    @property
    def min_ess_bulk(self) -> float:
        """Smallest bulk ESS over all elements."""
        return _nan_extreme([v.ess_bulk for v in self.variables], min)

    @property
    def min_ess_tail(self) -> float:
        """Smallest tail ESS over all elements."""
        return _nan_extreme([v.ess_tail for v in self.variables], min)


def _nan_extreme(values: list[float], pick) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(pick(finite)) if finite else float("nan")


def _max_treedepth(stats) -> int:
    for key in ("max_treedepth", "max_tree_depth"):
        if key in stats.attrs:
            return int(stats.attrs[key])
    return DEFAULT_MAX_TREEDEPTH


def _e_bfmi(energy: np.ndarray) -> list[float]:
    """E-BFMI per chain: summed squared energy jumps over summed squared deviations (Betancourt
    2016), as `arviz.bfmi` computes it."""
    energy = np.asarray(energy, dtype=float)
    num = np.sum(np.square(np.diff(energy, axis=1)), axis=1)
    den = np.sum(np.square(energy - energy.mean(axis=1, keepdims=True)), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(x) for x in num / den]


def _mode_groups(tree) -> dict[int, list[int]]:
    """Chains by the mode they were started in (`regimes.modes`); empty for one mode."""
    modes = np.asarray(tree.attrs.get("chain_mode", []), dtype=int).ravel()
    if len(set(modes.tolist())) < 2:
        return {}
    return {int(m): [int(c) for c in np.flatnonzero(modes == m)] for m in np.unique(modes)}


def _diagnose_by_mode(tree, groups: dict[int, list[int]], th: Thresholds) -> Diagnosis:
    """The gate within each mode's chains (chains of different modes are not expected to mix),
    combined: it passes when every mode passes."""
    parts = {}
    for m, chains in groups.items():
        sub = tree.isel(chain=chains)
        sub.attrs = {k: v for k, v in tree.attrs.items() if k != "chain_mode"}
        parts[m] = diagnose(sub, th)
    first = next(iter(parts.values()))
    rows = [replace(v, name=f"{v.name} (mode {m})") for m, d in parts.items() for v in d.variables]
    rows.sort(key=lambda r: (-len(r.problems), -r.severity, r.name))
    shares = [d.treedepth_share for d in parts.values() if d.treedepth_share is not None]
    return Diagnosis(
        variables=rows,
        chains=sum(d.chains for d in parts.values()),
        draws=first.draws,
        divergences=sum(d.divergences for d in parts.values()),
        treedepth_share=float(np.mean(shares)) if shares else None,
        max_treedepth=first.max_treedepth,
        bfmi=[b for d in parts.values() for b in d.bfmi],
        chain_agreement={
            "agree": all(d.chain_agreement["agree"] for d in parts.values()),
            "off_chains": [],
            "modes": {str(m): c for m, c in groups.items()},
        },
        thresholds=th,
        passed=all(d.passed for d in parts.values()),
        reasons=[f"mode {m}: {r}" for m, d in parts.items() for r in d.reasons],
        notes=[
            f"{len(parts)} modes sampled separately (chains {list(groups.values())}); mixing is "
            "judged within each mode",
            *[f"mode {m}: {n}" for m, d in parts.items() for n in d.notes],
        ],
    )


def diagnose(tree, thresholds: Thresholds | None = None) -> Diagnosis:
    """The full convergence gate: R-hat, bulk/tail ESS, MCSE per element, divergences, tree
    depth, E-BFMI and chain agreement, with a pass/fail verdict and plain-English reasons.
    Chains started in different modes (`regimes.modes`) are judged within their mode."""
    import arviz as az

    th = thresholds or Thresholds()
    groups = _mode_groups(tree)
    if groups:
        return _diagnose_by_mode(tree, groups, th)
    post = tree["posterior"]
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    ess_need = th.ess_min_per_chain * chains
    with warnings.catch_warnings():  # constant draws (a structural zero): NaN, noted below
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        summ = az.summary(tree, kind="diagnostics", fmt="wide", round_to="none")
    rows: list[VariableDiagnostic] = []
    for name, rec in summ.iterrows():
        rhat, bulk, tail = float(rec["r_hat"]), float(rec["ess_bulk"]), float(rec["ess_tail"])
        problems = []
        if np.isfinite(rhat) and rhat > th.rhat_max:
            problems.append("r_hat")
        if np.isfinite(bulk) and bulk < ess_need:
            problems.append("ess_bulk")
        if np.isfinite(tail) and tail < ess_need:
            problems.append("ess_tail")
        scores = [
            (rhat - 1.0) / max(th.rhat_max - 1.0, 1e-12) if np.isfinite(rhat) else 0.0,
            ess_need / bulk if np.isfinite(bulk) and bulk > 0 else 0.0,
            ess_need / tail if np.isfinite(tail) and tail > 0 else 0.0,
        ]
        rows.append(
            VariableDiagnostic(
                name=str(name),
                r_hat=rhat,
                ess_bulk=bulk,
                ess_tail=tail,
                mcse_mean=float(rec["mcse_mean"]),
                problems=tuple(problems),
                severity=float(max(scores)),
            )
        )
    rows.sort(key=lambda r: (-len(r.problems), -r.severity, r.name))

    stats = tree["sample_stats"] if "sample_stats" in tree.children else None
    divergences = (
        int(np.asarray(stats["diverging"].values).sum())
        if stats is not None and "diverging" in stats
        else 0
    )
    treedepth_share: float | None = None
    max_depth: int | None = None
    if stats is not None and ("reached_max_treedepth" in stats or "tree_depth" in stats):
        max_depth = _max_treedepth(stats)
        if "reached_max_treedepth" in stats:
            hit = np.asarray(stats["reached_max_treedepth"].values, dtype=bool)
        else:
            hit = np.asarray(stats["tree_depth"].values) >= max_depth
        treedepth_share = float(hit.mean())
    bfmi = _e_bfmi(stats["energy"].values) if stats is not None and "energy" in stats else []
    agreement = chain_agreement(tree) if stats is not None else {"agree": True, "off_chains": []}

    reasons: list[str] = []
    notes: list[str] = []
    bad_rhat = [r for r in rows if "r_hat" in r.problems]
    if bad_rhat:
        worst = max(bad_rhat, key=lambda r: r.r_hat)
        reasons.append(
            f"R-hat above {th.rhat_max} for {len(bad_rhat)} of {len(rows)} elements "
            f"(worst {worst.name}: {worst.r_hat:.4f}); chains have not mixed"
        )
    for kind, label in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        bad = [r for r in rows if kind in r.problems]
        if bad:
            worst = min(bad, key=lambda r: getattr(r, kind))
            reasons.append(
                f"{label} ESS below {ess_need:g} ({th.ess_min_per_chain:g} per chain x {chains}) "
                f"for {len(bad)} of {len(rows)} elements (worst {worst.name}: "
                f"{getattr(worst, kind):.0f}); draw more or reparametrise"
            )
    if divergences > th.divergences_max:
        reasons.append(
            f"{divergences} divergent transitions ({divergences / (chains * draws):.1%} of draws); "
            f"the sampler missed part of the posterior, {DIVERGENCE_HINT}"
        )
    low_bfmi = [(c, b) for c, b in enumerate(bfmi) if not b >= th.bfmi_min]
    if low_bfmi:
        listed = ", ".join(f"chain {c}: {b:.2f}" for c, b in low_bfmi)
        reasons.append(
            f"E-BFMI below {th.bfmi_min} ({listed}); momentum resampling explores the energy "
            "distribution poorly (heavy tails or bad scaling)"
        )
    if not agreement["agree"]:
        reasons.append(
            f"chains {agreement['off_chains']} sit in a lower-density mode than the others "
            f"(mean log density per chain {agreement.get('chain_mean_lp')}); do not average them"
        )
    if treedepth_share:
        notes.append(
            f"{treedepth_share:.1%} of draws hit the maximum tree depth {max_depth} "
            "(efficiency, not validity; consider reparametrising)"
        )
    nan_rhat = [r.name for r in rows if not np.isfinite(r.r_hat)]
    if nan_rhat:
        notes.append(f"R-hat undefined (constant draws?) for {len(nan_rhat)} elements")
    return Diagnosis(
        variables=rows,
        chains=chains,
        draws=draws,
        divergences=divergences,
        treedepth_share=treedepth_share,
        max_treedepth=max_depth,
        bfmi=bfmi,
        chain_agreement=agreement,
        thresholds=th,
        passed=not reasons,
        reasons=reasons,
        notes=notes,
    )


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"


def table(diagnosis: Diagnosis, max_rows: int | None = 30) -> str:
    """Render a Diagnosis as aligned plain text: verdict header, sampler checks, worst rows first."""
    d, th = diagnosis, diagnosis.thresholds
    verdict = "PASSED" if d.passed else "FAILED"
    lines = [
        f"verdict: {verdict} ({d.chains} chains x {d.draws} draws; R-hat <= {th.rhat_max}, "
        f"bulk/tail ESS >= {th.ess_min_per_chain:g}/chain, E-BFMI >= {th.bfmi_min}, "
        f"divergences <= {th.divergences_max})"
    ]
    lines += [f"  - {r}" for r in d.reasons]
    lines += [f"  note: {n}" for n in d.notes]
    lines.append("")
    depth = (
        f"{d.treedepth_share:.1%} of draws at max depth {d.max_treedepth}"
        if d.treedepth_share is not None
        else "n/a"
    )
    bfmi = ", ".join(f"{b:.2f}" for b in d.bfmi) if d.bfmi else "n/a"
    agree = d.chain_agreement
    lines += [
        f"{'divergences':<16}{d.divergences}",
        f"{'tree depth':<16}{depth}",
        f"{'E-BFMI / chain':<16}{bfmi}",
        f"{'chain agreement':<16}"
        + ("ok" if agree["agree"] else f"chains {agree['off_chains']} off")
        + (f" (mean lp {agree['chain_mean_lp']})" if agree.get("chain_mean_lp") else ""),
        "",
    ]
    shown = d.variables if max_rows is None else d.variables[:max_rows]
    header = ("variable", "r_hat", "ess_bulk", "ess_tail", "mcse_mean", "status")
    body = [
        (
            v.name,
            _fmt(v.r_hat, ".4f"),
            _fmt(v.ess_bulk, ".0f"),
            _fmt(v.ess_tail, ".0f"),
            _fmt(v.mcse_mean, ".3g"),
            "ok" if v.ok else "FAIL " + ",".join(v.problems),
        )
        for v in shown
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:5], widths[1:5], strict=True)
        ]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    if len(shown) < len(d.variables):
        lines.append(f"... {len(d.variables) - len(shown)} more elements, all no worse than above")
    return "\n".join(lines)
