"""Benchmark: sample the fed-funds 2-regime switching mean-and-variance model several ways (issue 6).

Entrants, all on the same data (USMACRO_FEDFUNDS, T=226 quarters) and the same chains/draws/tune:

1. ``regimes run experiments/fedfunds_msv.toml`` as a whole subprocess, twice (cold, then warm caches);
   with ``--reference COMMIT``, the code of that commit (a temporary git worktree, its ``src`` first
   on PYTHONPATH) runs the same command twice as well, after, and the warm runs are compared.
2. A minimal hand-written numpyro model of the same likelihood (the reference for "within 1.5x").
3. statsmodels ``MarkovRegression(..., switching_variance=True).fit()`` (MLE: wall time only).
4. pymc-extras marginalised model with nutpie: in this environment when both import, else as a
   subprocess with `benchmarks/.venv-peers` (made by `benchmarks/peers/make_env.sh`; pymc-extras
   0.15.1 pins pymc 6.3.x), timed as a whole process; skipped with the reason when neither works.

No wall-clock assertions: the script reports times, min bulk ESS, ESS/s and ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import loadavg, reference_tree, text_table

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "fedfunds_msv.toml"
SERIES = "USMACRO_FEDFUNDS"
PEERS_PYTHON = ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "pymc_extras_nutpie.py"
SKIP_PYMC_EXTRAS = (
    "skipped (pymc-extras not installed here, it pins pymc 6.3.x, incompatible with this "
    "environment's pymc 6.4; and no peer environment at benchmarks/.venv-peers: make it with "
    "`bash benchmarks/peers/make_env.sh`)"
)
REFERENCE = "regimes_run_1"
ENTRANTS_WITH_PHASES = ("regimes_run_1", "regimes_run_2", "regimes_before_1", "regimes_before_2")


def data_dir() -> Path | None:
    """The data directory from $REGIMES_DATA_DIR, if set."""
    value = os.environ.get("REGIMES_DATA_DIR")
    return Path(value) if value else None


def load_y() -> np.ndarray:
    """The fed funds series as the regimes model sees it: standardised levels over the sample."""
    from regimes.data import load_series

    exp = tomllib.loads(EXPERIMENT.read_text(encoding="utf-8"))
    s = load_series(SERIES, data_dir())
    s = s.loc[exp["data"]["start"] : exp["data"]["end"]].dropna()
    y = s.to_numpy(dtype=float)
    return (y - y.mean()) / y.std()


def write_experiment(folder: Path, chains: int, draws: int, tune: int) -> Path:
    """A copy of the fed-funds experiment with the benchmark's sampler sizes."""
    import tomli_w

    raw = tomllib.loads(EXPERIMENT.read_text(encoding="utf-8"))
    raw.setdefault("name", EXPERIMENT.stem)
    raw.setdefault("sampler", {}).update({"chains": chains, "draws": draws, "tune": tune})
    path = folder / EXPERIMENT.name
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def run_regimes(
    experiment: Path, out: Path, seed: int, src: Path | None = None
) -> dict[str, Any]:
    """Time one whole `regimes run` subprocess (the `regimes` console script's own two lines,
    with `src` first on PYTHONPATH when given: the code before); read min bulk ESS from its
    manifest."""
    args = ["run", str(experiment), "--out", str(out), "--no-progress", "--seed", str(seed)]
    cmd = [sys.executable, "-c", "import sys; from regimes.cli import main; sys.exit(main())"]
    env = {**os.environ, **({"PYTHONPATH": str(src)} if src else {})}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cmd, *args], cwd=ROOT, capture_output=True, text=True, check=False, env=env
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"regimes run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    manifests = sorted(out.rglob("manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise RuntimeError(f"regimes run wrote no manifest.json under {out}")
    manifest = json.loads(manifests[-1].read_text(encoding="utf-8"))
    ess = float(manifest["verdict"]["min_ess_bulk"])
    timing = manifest.get("timing", {})
    return {"wall_s": wall, "min_ess_bulk": ess, "phases": timing.get("phases", {}),
            "total_s": timing.get("total_s")}  # fmt: skip


def numpyro_model(y: Any) -> None:
    """2-state HMM, switching mean and sd, forward filter in log space with lax.scan."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    k = 2
    # ordered means with a Normal(0, 1.5) density on the ordered values (as PyMC's ordered transform)
    mu = numpyro.sample("mu", dist.ImproperUniform(dist.constraints.ordered_vector, (), (k,)))
    numpyro.factor("mu_prior", dist.Normal(0.0, 1.5).log_prob(mu).sum())
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0).expand([k]))
    P = numpyro.sample("P", dist.Dirichlet(jnp.ones(k)).expand([k]))
    # stationary initial distribution of the 2-state chain
    p01, p10 = P[0, 1], P[1, 0]
    init = jnp.stack([p10, p01]) / (p01 + p10)
    log_lik = dist.Normal(mu[None, :], sigma[None, :]).log_prob(y[:, None])  # (T, K)
    log_p = jnp.log(P)

    def step(alpha: Any, ll: Any) -> tuple[Any, None]:
        alpha = jax.nn.logsumexp(alpha[:, None] + log_p, axis=0) + ll
        return alpha, None

    alpha0 = jnp.log(init) + log_lik[0]
    alpha, _ = jax.lax.scan(step, alpha0, log_lik[1:])
    numpyro.factor("hmm_loglik", jax.nn.logsumexp(alpha))


def run_numpyro(y: np.ndarray, chains: int, draws: int, tune: int, seed: int) -> dict[str, Any]:
    """Time the hand-written numpyro model (compile + sampling); min bulk ESS via ArviZ."""
    import arviz as az
    import jax
    import jax.numpy as jnp
    import numpyro.infer
    from numpyro.infer import MCMC, NUTS

    t0 = time.perf_counter()
    mcmc = MCMC(
        NUTS(numpyro_model, target_accept_prob=0.9),
        num_warmup=tune,
        num_samples=draws,
        num_chains=chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(y))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0
    # arviz_base reads numpyro.infer.initialization as an attribute, which is not always bound
    numpyro.infer.initialization = importlib.import_module("numpyro.infer.initialization")
    ess = az.ess(az.from_numpyro(mcmc), method="bulk")
    return {"wall_s": wall, "min_ess_bulk": min_ess(ess)}


def min_ess(ess: Any) -> float:
    """The smallest value over every variable of an ArviZ ESS result (Dataset or DataTree)."""
    ds = ess.to_dataset() if hasattr(ess, "to_dataset") else ess
    if hasattr(ds, "children") and not hasattr(ds, "data_vars"):
        ds = ds["posterior"].to_dataset()
    if "posterior" in getattr(ds, "children", {}):
        ds = ds["posterior"].to_dataset()
    values = [float(np.nanmin(np.asarray(v))) for v in ds.data_vars.values()]
    return min(values)


def run_statsmodels(y: np.ndarray) -> dict[str, Any]:
    """Time statsmodels' MLE fit of the same model (no ESS)."""
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    t0 = time.perf_counter()
    res = MarkovRegression(y, k_regimes=2, switching_variance=True).fit()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "min_ess_bulk": None, "llf": float(res.llf)}


def pymc_extras_available() -> bool:
    """Whether both pymc-extras and nutpie import."""
    if not (importlib.util.find_spec("pymc_extras") and importlib.util.find_spec("nutpie")):
        return False
    try:
        import nutpie  # noqa: F401
        import pymc_extras  # noqa: F401
    except Exception:
        return False
    return True


def run_pymc_extras(y: np.ndarray, chains: int, draws: int, tune: int, seed: int) -> dict[str, Any]:
    """Time the peer model (benchmarks/peers/pymc_extras_nutpie.py) in this process (compile +
    sampling, not imports), for an environment where pymc-extras and nutpie import."""
    import arviz as az
    import nutpie

    sys.path.insert(0, str(PEER_SCRIPT.parent))
    from pymc_extras_nutpie import build_model

    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(
        build_model(y), initial_points={"mu": np.array([-0.5, 0.5])}
    )
    trace = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        target_accept=0.9,
        progress_bar=False,
    )
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "min_ess_bulk": min_ess(az.ess(trace, method="bulk"))}


def run_peer(
    y: np.ndarray, folder: Path, chains: int, draws: int, tune: int, seed: int
) -> dict[str, Any]:
    """Time the pymc-extras + nutpie entrant as a whole subprocess in the peer environment."""
    data = folder / "fedfunds_y.json"
    data.write_text(json.dumps(y.tolist()), encoding="utf-8")
    cmd = [str(PEERS_PYTHON), str(PEER_SCRIPT), "--data", str(data), "--chains", str(chains)]
    cmd += ["--draws", str(draws), "--tune", str(tune), "--seed", str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"skipped (peer script failed, exit {proc.returncode}: {tail})"}
    result = json.loads(lines[-1])
    return {"wall_s": wall, **result}


def peer_entrant(
    y: np.ndarray, folder: Path, sizes: tuple[int, int, int, int], no_peers: bool
) -> dict[str, Any]:
    """Run pymc-extras + nutpie here if it imports, else in the peer venv; else say why skipped."""
    if no_peers:
        return {"skipped": "skipped (--no-peers)"}
    if pymc_extras_available():
        print("running pymc-extras + nutpie (in this environment) ...", flush=True)
        return run_pymc_extras(y, *sizes)
    if PEERS_PYTHON.exists():
        print("running pymc-extras + nutpie (benchmarks/.venv-peers subprocess) ...", flush=True)
        return run_peer(y, folder, *sizes)
    return {"skipped": SKIP_PYMC_EXTRAS}


def finish(rows: dict[str, dict[str, Any]]) -> None:
    """Add ESS/s and the wall-time ratio against the reference (first regimes run)."""
    ref = rows.get(REFERENCE, {}).get("wall_s")
    for row in rows.values():
        wall, ess = row.get("wall_s"), row.get("min_ess_bulk")
        row["ess_per_s"] = ess / wall if wall and ess is not None and math.isfinite(ess) else None
        row["ratio_wall_vs_regimes"] = wall / ref if wall and ref else None


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The results as an aligned text table, then one line per skipped entrant."""
    cols = ["entrant", "wall_s", "min_ess_bulk", "ess_per_s", "ratio_wall_vs_regimes"]
    body = [
        [name] + [r.get(c) if "skipped" not in r else "-" for c in cols[1:]]
        for name, r in rows.items()
    ]
    skipped = [f"{name}: {r['skipped']}" for name, r in rows.items() if "skipped" in r]
    return "\n".join([text_table(cols, body), *skipped])


PHASES = [
    "imports", "data", "build", "compile", "multistart", "sampling", "posterior",
    "log_likelihood", "derive", "ppc", "netcdf", "figures", "report",
]  # fmt: skip


def phase_rows(rows: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Where each whole `regimes run` spent its time: seconds per phase (the run's manifest,
    `regimes.timing`; compilation counted under "compile" wherever it happened), the rest of
    the run ("other") and of the process before the run began ("start-up": the interpreter,
    `regimes` and argument parsing), and the run over its own NUTS phase."""
    names = [n for n in ENTRANTS_WITH_PHASES if "phases" in rows.get(n, {})]
    body = []
    for ph in PHASES:
        body.append([ph] + [rows[n]["phases"].get(ph) for n in names])
    other, startup, ratio = ["other"], ["start-up"], ["run / sampling"]
    for n in names:
        r = rows[n]
        total = r.get("total_s") or sum(r["phases"].values())
        other.append(max(total - sum(r["phases"].values()), 0.0))
        startup.append(max(r["wall_s"] - total, 0.0))
        nuts = r["phases"].get("sampling")
        ratio.append(r["wall_s"] / nuts if nuts else None)
    body += [other, startup, ["whole process"] + [rows[n]["wall_s"] for n in names], ratio]
    return ["phase_s", *names], body


def targets(rows: dict[str, dict[str, Any]]) -> list[str]:
    """One line per target from issue 6, with the measured ratio."""
    ref = rows.get(REFERENCE, {}).get("wall_s")
    out = []
    pe = rows.get("pymc_extras_nutpie", {}).get("wall_s")
    if pe and ref:
        out.append(
            f"target: regimes >= 5x faster than pymc-extras+nutpie: measured {pe / ref:.2f}x "
            f"({'met' if pe / ref >= 5 else 'not met'})"
        )
    else:
        out.append("target: regimes >= 5x faster than pymc-extras+nutpie: not measured")
    npy = rows.get("numpyro_handwritten", {}).get("wall_s")
    if npy and ref:
        out.append(
            f"target: regimes within 1.5x of hand-written numpyro: measured {ref / npy:.2f}x "
            f"({'met' if ref / npy <= 1.5 else 'not met'})"
        )
    else:
        out.append("target: regimes within 1.5x of hand-written numpyro: not measured")
    second = rows.get("regimes_run_2", {}).get("wall_s")
    if second and ref:
        out.append(
            f"target: second regimes run >= 2x faster than first: measured {ref / second:.2f}x "
            f"({'met' if ref / second >= 2 else 'not met'})"
        )
    else:
        out.append("target: second regimes run >= 2x faster than first: not measured")
    warm = rows.get("regimes_run_2", {})
    if "wall_s" in warm:  # issue 30
        w = warm["wall_s"]
        out.append(
            f"target: warm regimes run <= 10 s: measured {w:.1f} s ({'met' if w <= 10 else 'not met'})"
        )
        peer = rows.get("pymc_extras_nutpie_2", {}).get("wall_s")
        if peer:
            out.append(
                f"target: warm regimes run >= 2.7x faster than the warm peer: measured "
                f"{peer / w:.2f}x ({'met' if peer / w >= 2.7 else 'not met'})"
            )
        before = rows.get("regimes_before_2", {}).get("wall_s")
        if before:
            out.append(f"warm run against the code before (warm): {before:.1f} s -> {w:.1f} s, "
                       f"{before / w:.2f}x")  # fmt: skip
        nuts = warm.get("phases", {}).get("sampling")
        if nuts:
            out.append(
                f"target: warm regimes run <= 3x its own NUTS phase: measured {w / nuts:.2f}x "
                f"({'met' if w / nuts <= 3 else 'not met'})"
            )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument(
        "--smoke", action="store_true", help="chains 2, draws 100, tune 100; one regimes run"
    )
    p.add_argument("--json", type=Path, default=None, help="write results to this JSON file")
    p.add_argument("--no-peers", action="store_true", help="skip the pymc-extras + nutpie entrant")
    p.add_argument(
        "--reference", default="", help="also run the code of this commit twice (e.g. HEAD~3)"
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.chains, args.draws, args.tune = 2, 100, 100
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every entrant, print the table and the targets, optionally write JSON."""
    args = parse_args(argv)
    load_start = loadavg()
    y = load_y()
    print(
        f"fed funds: T={len(y)}; chains={args.chains} draws={args.draws} tune={args.tune} "
        f"seed={args.seed}{' (smoke)' if args.smoke else ''}; load average at start {load_start}",
        flush=True,
    )
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_fedfunds_") as tmp:
        folder = Path(tmp)
        exp = write_experiment(folder, args.chains, args.draws, args.tune)
        print("running regimes (1st) ...", flush=True)
        rows["regimes_run_1"] = run_regimes(exp, folder / "out1", args.seed)
        if args.smoke:
            rows["regimes_run_2"] = {"skipped": "skipped (--smoke)"}
        else:
            print("running regimes (2nd, warm caches) ...", flush=True)
            rows["regimes_run_2"] = run_regimes(exp, folder / "out2", args.seed)
        print("running hand-written numpyro ...", flush=True)
        rows["numpyro_handwritten"] = run_numpyro(y, args.chains, args.draws, args.tune, args.seed)
        print("running statsmodels MLE ...", flush=True)
        rows["statsmodels_mle"] = run_statsmodels(y)
        sizes = (args.chains, args.draws, args.tune, args.seed)
        rows["pymc_extras_nutpie"] = peer_entrant(y, folder, sizes, args.no_peers)
        if "wall_s" in rows["pymc_extras_nutpie"] and not args.smoke:  # and warm, as regimes
            rows["pymc_extras_nutpie_2"] = peer_entrant(y, folder, sizes, args.no_peers)
        with reference_tree(ROOT, args.reference) as tree:
            if tree is not None:
                for i in (1, 2):
                    print(f"running regimes at {args.reference} ({i}) ...", flush=True)
                    rows[f"regimes_before_{i}"] = run_regimes(
                        exp, folder / f"before{i}", args.seed, tree / "src"
                    )
    load_end = loadavg()
    finish(rows)
    print()
    print(table(rows))
    cols, body = phase_rows(rows)
    if body and len(cols) > 1:
        print()
        print(text_table(cols, body))
    print()
    print("\n".join(targets(rows)))
    pe = rows["pymc_extras_nutpie"]
    if "compile_s" in pe:
        print(
            f"pymc_extras_nutpie: compile {pe['compile_s']:.1f} s + sampling {pe['sample_s']:.1f} s "
            f"inside its {pe['wall_s']:.1f} s process ({pe.get('versions')})"
        )
    print(f"load average at start {load_start}, at end {load_end}")
    if args.json:
        payload = {
            "settings": {
                "chains": args.chains,
                "draws": args.draws,
                "tune": args.tune,
                "seed": args.seed,
                "smoke": args.smoke,
                "T": len(y),
            },
            "reference": REFERENCE,
            "entrants": rows,
            "targets": targets(rows),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
