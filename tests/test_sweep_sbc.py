"""SBC as a sweep: the quick sweep (4 tiny simulations of the K = 2 switching mean and variance
model, validation/sbc_sweep_quick.toml) gives integer ranks in [0, L] combined along `sim`, with
figures; a resumed sweep reuses every simulation; a deliberately miscalibrated fit (the posterior
shifted by a constant) is flagged by the uniformity check, and exact posteriors are not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from regimes.errors import ConfigError
from regimes.sweep import load_sweep, open_sweep, run_sweep
from regimes.sweep.executor import SerialExecutor
from regimes.sweep.runner import TASKS_JSON
from regimes.sweep.sbc import SBC_JSON, ranks, uniformity

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "validation" / "sbc_sweep_quick.toml"


def tasks_json(folder: Path) -> dict:
    return json.loads((folder / TASKS_JSON).read_text(encoding="utf-8"))


def test_quick_sbc_sweep_ranks_combine_and_resume(tmp_path: Path, data_dir: Path) -> None:
    keep = load_sweep(QUICK).sbc.keep  # type: ignore[union-attr]
    folder = run_sweep(
        QUICK, data_dir=data_dir, out=tmp_path, quick=True, executor=SerialExecutor()
    )
    assert tasks_json(folder)["counts"] == {"complete": 4, "failed": 0, "pending": 0}
    with open_sweep(folder) as ds:  # sbc.nc, lazily
        assert ds["rank"].chunks is not None
        ds = ds.load()
    assert list(ds["sim"].values) == [0, 1, 2, 3]
    assert list(ds["param"].values) == [  # a Dirichlet row's last element is implied
        "intercept[0]", "intercept[1]", "sigma[0]", "sigma[1]", "P[0,0]", "P[1,0]"
    ]  # fmt: skip
    rank = ds["rank"].values
    assert rank.dtype.kind == "i" and rank.min() >= 0 and rank.max() <= keep
    assert ds.attrs["keep"] == keep and ds.attrs["length"] == 36  # 2017-01..2019-12
    assert (ds["n_posterior"] == 60).all()  # quick: one chain of 60 draws
    assert set(np.unique(ds["uniform"].values)) <= {0, 1}
    one = json.loads((folder / "tasks" / "sim-002" / SBC_JSON).read_text(encoding="utf-8"))
    assert one["rank"] == rank[2].tolist() and one["keep"] == keep
    for name in ("sbc_ranks", "sbc_ecdf"):
        assert (folder / "figures" / f"{name}.png").is_file()
    again = run_sweep(  # resumed: every simulation is reused, the same ranks come back
        QUICK, data_dir=data_dir, resume=folder, quick=True, executor=SerialExecutor()
    )
    assert all(row["reused"] for row in tasks_json(again)["tasks"])
    with open_sweep(again) as ds2:
        assert (ds2["rank"].values == rank).all()


def test_a_shifted_posterior_is_flagged(tmp_path: Path, data_dir: Path) -> None:
    """The sweep's own fit with every posterior draw shifted by a constant: every truth lies
    below every draw, each rank is 0, and the check flags every parameter."""
    body = QUICK.read_text(encoding="utf-8")
    body = body.replace('"sbc_markov_k2.toml"', f'"{QUICK.parent / "sbc_markov_k2.toml"}"')
    path = tmp_path / "shifted.toml"
    path.write_text(body.replace("sims = 4", "sims = 8\nshift = 5.0"), encoding="utf-8")
    folder = run_sweep(path, data_dir=data_dir, out=tmp_path, quick=True, executor=SerialExecutor())
    with open_sweep(folder) as ds:
        assert (ds["rank"].values == 0).all()
        assert (ds["uniform"].values == 0).all()
        assert (ds["chi2_p"].values < 0.01).all()  # 8 ranks in the first of 2 bins


def test_uniformity_check_passes_exact_posteriors_and_flags_shifted_ones() -> None:
    """Conjugate normal: mu ~ N(0, 1), y_i ~ N(mu, 1), i = 1..n; the exact posterior gives
    uniform ranks, the same posterior shifted by half a posterior sd does not."""
    rng = np.random.default_rng(5)
    n_sims, n, keep = 300, 10, 99
    sd = np.sqrt(1 / (1 + n))
    good, bad = [], []
    for _ in range(n_sims):
        mu = rng.normal()
        y = rng.normal(mu, 1, size=n)
        draws = rng.normal(y.sum() / (1 + n), sd, size=(400, 1))
        good.append(ranks(draws, np.array([mu]), keep))
        bad.append(ranks(draws + 0.5 * sd, np.array([mu]), keep))
    good_a, bad_a = np.array(good), np.array(bad)
    assert good_a.min() >= 0 and good_a.max() <= keep
    assert uniformity(good_a, keep)["uniform"].tolist() == [1]
    flagged = uniformity(bad_a, keep)
    assert flagged["uniform"].tolist() == [0]
    assert ((flagged["ecdf"] < flagged["lower"]) | (flagged["ecdf"] > flagged["upper"])).any()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[sbc]\nsims = 0\n", "key 'sbc.sims'"),
        ("[sbc]\nsims = 2\nkeeps = 9\n", "unknown key 'sbc.keeps'"),
        ("[sbc]\nsims = 2\ninit = 'best'\n", "key 'sbc.init'"),
        ("seeds = [1]\n[sbc]\nsims = 2\n", "exactly one expansion"),
    ],
)
def test_sbc_table_errors_name_the_key(tmp_path: Path, table: str, expected: str) -> None:
    base = ROOT / "validation" / "sbc_markov_k2.toml"
    path = tmp_path / "bad.toml"
    path.write_text(f'experiment = "{base}"\n{table}', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert expected in str(err.value) and str(path) in str(err.value)
