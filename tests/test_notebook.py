"""The example notebook (docs/notebook.ipynb) runs as a researcher would run it: copied to a
folder outside the repository, executed in a fresh kernel with the installed package, fitting a
DataFrame with a dict experiment. Its summary must agree with statsmodels' maximum-likelihood
regime means, and importing regimes and fitting must leave the kernel's process as it was
(environment, BLAS threads, logging handlers)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebook.ipynb"
MLE_MEANS = {
    "low_rate": 3.70877,
    "high_rate": 9.556793,
}  # statsmodels (test_validation_statsmodels)
PROCESS_VARS = ("XLA_FLAGS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "PYTENSOR_FLAGS", "NUMBA_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR",
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")  # fmt: skip

# run first and last in the kernel (not part of the notebook): the process state around it
STATE = (
    f"VARS = {PROCESS_VARS!r}\n"
    + """
import json as _json, logging as _logging, os as _os
from threadpoolctl import threadpool_info as _info
def _state():
    return {
        "env": {k: _os.environ.get(k) for k in VARS},
        "blas": sorted(i["num_threads"] for i in _info() if i["user_api"] == "blas"),
        "root": [type(h).__name__ for h in _logging.getLogger().handlers],
        "regimes": [type(h).__name__ for h in _logging.getLogger("regimes").handlers],
        "propagate": _logging.getLogger("regimes").propagate,
    }
"""
)
BEFORE = STATE + "import numpy\n_before = _state()"
AFTER = """
table = run.summary()
rows = table.loc["level"]  # each regime's level in natural units (posterior_natural)
print("RESULT " + _json.dumps({"before": _before, "after": _state(),
      "means": {r: [float(rows.loc[r, "5%"]), float(rows.loc[r, "95%"])] for r in rows.index}}))
"""


@pytest.mark.slow
def test_notebook_runs_outside_the_repository(tmp_path: Path, data_dir: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    folder = tmp_path / "analysis"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / "notebook.ipynb")
    nb = nbformat.read(folder / "notebook.ipynb", as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(BEFORE), *nb.cells, nbformat.v4.new_code_cell(AFTER)]
    # a clean process: none of the settings the command line (or this test run) makes
    env = {k: v for k, v in os.environ.items() if k not in (*PROCESS_VARS, "MPLBACKEND")}
    env["REGIMES_DATA_DIR"] = str(data_dir)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    result = json.loads(out.split("RESULT ", 1)[1])
    before, after = result["before"], result["after"]
    assert after["env"] == before["env"], "the environment changed"
    assert set(after["blas"]) == set(before["blas"]), "BLAS thread counts changed"
    assert after["root"] == before["root"], "root logging handlers changed"
    assert after["regimes"] == ["NullHandler"] and after["propagate"] is True
    for regime, mle in MLE_MEANS.items():
        lo, hi = result["means"][regime]
        assert lo <= mle <= hi, f"{regime}: statsmodels' {mle} outside the 90% interval"
    summary = "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )
    assert "QUICK RUN — not for citation" in summary  # the notebook's summary was shown
    assert (folder / "results" / "fedfunds_notebook").is_dir()  # written where the notebook is
    plots = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert plots, "the regime-probability figure was not drawn"
