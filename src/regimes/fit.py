"""One fit of an experiment's model to a fit frame, and what follows it in memory: the family's
derived quantities, the posterior predictive check and the convergence verdict. Shared by runs,
leave-future-out refits, the contract test and notebooks (nothing here touches the disk)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from regimes.config import DICT_LABEL, Experiment, parse_month
from regimes.diagnostics import quick_verdict
from regimes.errors import ConfigError
from regimes.families import get_family
from regimes.families.base import Fit
from regimes.logs import quiet_keyword
from regimes.modes import multimodal_summary, multimodal_verdict, stacked_tree
from regimes.sampling import recorded_on, sample
from regimes.timing import phase

# deferred to the functions that use them: SciPy, statsmodels, xarray (docs/modules.md#imports)

if TYPE_CHECKING:
    import xarray as xr

    from regimes.compiled import Adaptation
    from regimes.dataset import FitFrame

log = logging.getLogger(__name__)


def import_stack(figures: bool = False) -> None:
    """Load the modelling stack a fit needs (PyMC and its JAX bridge, JAX, numpyro, ArviZ;
    matplotlib for figures) at once: a run's timing then counts the imports as one phase
    instead of spreading them over the phases that first need them."""
    import arviz_base  # noqa: F401
    import jax  # noqa: F401
    import numpyro  # noqa: F401
    import pymc
    import pymc.sampling.jax  # noqa: F401

    if figures:  # not pyplot: which backend a figure uses is `figures.memo_style`'s choice
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401


def compile_key(exp: Experiment, frame: FitFrame) -> str:
    """What identifies one compiled model in this process besides its data shapes and constants
    (`regimes.compiled`): the resolved spec as the graph sees it and the layout of the data.
    Refits reuse it, quick or not, and so do copies of the spec elsewhere (a sweep's own
    `models/`): its name, path and description only label it."""
    assert exp.spec is not None
    spec = get_family(exp.spec.family).graph_spec(exp.spec)
    graph = spec.model_dump_json(exclude={"name", "path", "description"})
    return f"{graph}|{frame.target}|{','.join(frame.factors)}"


def posterior_of(exp: Experiment, tree: xr.DataTree) -> tuple[xr.DataTree, dict[str, Any]]:
    """The posterior the outputs read (chains started in several modes stacked by their
    weights) and the convergence verdict (judged within each mode, with the modes and their
    weights under `modes`)."""
    verdict = quick_verdict(tree)  # within each mode where chains started in several
    multimodal = multimodal_summary(tree, verdict)  # several modes: stacked
    if not multimodal:
        return tree, verdict
    combined = stacked_tree(tree, multimodal["weights"], seed=exp.sampler.seed)
    combined.attrs["modes_status"] = multimodal["status"]
    return combined, multimodal_verdict(verdict, multimodal)


def derive_checked(
    exp: Experiment,
    tree: xr.DataTree,
    frame: FitFrame,
    posterior: tuple[xr.DataTree, dict[str, Any]] | None = None,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """After sampling: the family's derived quantities, the posterior predictive check (its
    replicates are added to `tree` as `posterior_predictive`) and the convergence verdict, with
    the run attributes of the public contract on the dataset. `posterior`: `posterior_of(exp,
    tree)` when the caller has it already."""
    import xarray as xr

    from regimes.anchoring import anchor_check, regime_anchor_check
    from regimes.inference_data import arviz_groups
    from regimes.ppc import run_checks

    assert exp.spec is not None
    family = get_family(exp.spec.family)
    combined, verdict = posterior if posterior is not None else posterior_of(exp, tree)
    fitted = Fit(combined, frame, exp.spec)  # one fit: its passes are shared by every output
    derived = family.derive(fitted, exp.outputs.quantiles)
    if "modes_status" in combined.attrs:
        derived.attrs["modes"] = combined.attrs["modes_status"]
    if "smc_log_evidence" in tree.attrs:  # tempered SMC: each run's estimate of log p(y)
        derived.attrs["log_evidence_smc"] = float(np.mean(tree.attrs["smc_log_evidence"]))
    if "log_evidence_bridge" in tree.attrs:  # modes = "mass": bridge sampling's log p(y)
        derived.attrs["log_evidence_bridge"] = float(tree.attrs["log_evidence_bridge"])
    with phase("ppc"):
        pp, additions, ppc_result = run_checks(
            family, fitted, exp.outputs.quantiles, seed=exp.sampler.seed
        )
    tree["posterior_predictive"] = xr.DataTree(pp)
    arviz_groups(tree, family, fitted)  # observed beside replicates; natural-units parameters
    attrs = {**derived.attrs, **additions.attrs}
    derived = derived.merge(additions)
    derived.attrs = attrs
    verdict["ppc"] = {"ok": ppc_result.ok, "reasons": ppc_result.reasons}
    derived.attrs["chain_agreement"] = "ok" if verdict["chains_agree"] else "chains_disagree"
    derived.attrs.update(anchor_check(derived))  # is the fair value an anchor the price visits?
    # and each regime's, while it holds? (merge keeps derived's attributes; no regimes: nothing)
    derived = derived.merge(regime_anchor_check(derived))
    derived.attrs.update(
        {
            "experiment": exp.name,
            "model": exp.spec.name,
            "family": exp.spec.family,
            "target": exp.data.target,
            "factors": ",".join(exp.data.factors),
            "sample_start": frame.attrs["fit_start"],
            "sample_end": frame.attrs["fit_end"],
            "converged": int(verdict["converged"]),
            "max_rhat": verdict["max_rhat"],
            "min_ess_bulk": verdict["min_ess_bulk"],
            "divergences": verdict["divergences"],
            "data_hash": frame.data_hash(),
            "seed": exp.sampler.seed,
        }
    )
    return derived, verdict


def padded_for_sampling(exp: Experiment, frame: FitFrame) -> FitFrame:
    """The frame the sampler's model is built on: `frame` padded to `data.pad_to` (months of
    weight zero after the window: one compiled sampler for windows ending at different months),
    or `frame` itself. A family must honour likelihood weights to be padded."""
    if exp.data.pad_to is None:
        return frame
    assert exp.spec is not None
    if not get_family(exp.spec.family).weighted_likelihood:
        raise ConfigError(
            f"{exp.path or DICT_LABEL}: key 'data.pad_to': the {exp.spec.family} family does not "
            "weight its likelihood by month, so it cannot be fitted on padded arrays; drop pad_to"
        )
    from regimes.dataset import pad_frame

    return pad_frame(frame, parse_month(exp.data.pad_to), exp.data.frequency)


@quiet_keyword
def fit_frame(
    exp: Experiment,
    frame: FitFrame,
    *,
    progress: bool = True,
    log_likelihood: bool = True,
    adaptation: Adaptation | None = None,
) -> xr.DataTree:
    """Build, sample and record the pointwise log-likelihood in natural units: one fit of `exp`'s
    model to `frame` as a DataTree (used by `run_experiment` and by leave-future-out refits;
    `log_likelihood=False` skips a family's own log-likelihood pass, for refits that score
    another frame; `adaptation`, carried across refits, warm-starts each from the last)."""
    import xarray as xr

    assert exp.spec is not None
    family = get_family(exp.spec.family)
    arrays = padded_for_sampling(exp, frame)
    with phase("build"):
        model = family.build(exp.spec, arrays)
    how = (
        f"tempered SMC, {exp.sampler.chains} runs × {exp.sampler.draws} particles"
        if exp.sampler.modes == "smc"
        else f"{exp.sampler.chains} chains × {exp.sampler.draws} draws after "
        f"{exp.sampler.tune} tuning steps"
    )
    if arrays is not frame:
        how += f"; arrays padded to {arrays.attrs['padded_to']}"
    log.info(f"{exp.name}: sampling {exp.spec.family} model ({how}, seed {exp.sampler.seed})")
    init, n_starts = family.sampling_init(exp.spec)
    tree = sample(
        model,
        exp.sampler,
        progress=progress,
        init=init,
        n_starts=n_starts,
        compile_key=compile_key(exp, arrays),
        adaptation=adaptation,
    )
    if arrays is not frame:  # drawn on the padded arrays: recorded against the real window
        with phase("build"):
            tree = recorded_on(tree, family.build(exp.spec, frame))
    if log_likelihood:
        if "log_likelihood" not in tree.children:
            with phase("log_likelihood"):
                ll = family.log_likelihood(Fit(tree, frame, exp.spec))
            tree["log_likelihood"] = xr.DataTree(ll)
        ll = tree["log_likelihood"].to_dataset()
        tree["log_likelihood"] = xr.DataTree(family.natural_log_likelihood(ll, frame, exp.spec))
    return tree
