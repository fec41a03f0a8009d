"""Property-based fault hunting (issue 17, item 5): generated configs and corrupted data and
result files thrown at the loaders. Whatever the input, a loader returns or raises a
`RegimesError` (never another exception), `regimes.cli.main` returns 0, 1 or 2 (never raises),
and nothing is written outside the output folder.

No sampling: runs are built by hand with `write_run` (as tests/test_faults.py does) and only
configs that fail validation are passed to `regimes run`. Seeds are derandomized so CI is
reproducible; the example counts below sum to about 4,000 cases."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from handmade_runs import make_run
from regimes.cli import main
from regimes.config import SHIPPED_MODELS, Experiment, load_experiment
from regimes.data import check_data_dir, load_series
from regimes.data.sources import clear_cache
from regimes.errors import DataError, RegimesError
from regimes.results import CONFIG, DERIVED, MANIFEST, POSTERIOR, open_run
from test_refused_inputs import EXPERIMENT, table

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "experiments").glob("*.toml")) + sorted(
    (ROOT / "experiments" / "gold").glob("*.toml")
)


def _prop(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _listing(*roots: Path) -> set[str]:
    out: set[str] = set()
    for root in roots:
        if root.exists():
            out |= {str(p) for p in root.rglob("*")} | {str(root)}
    return out


def _quiet_main(argv: list[str]) -> int:
    """`main(argv)` with stdout/stderr swallowed; it must return an int and never raise."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


# ------------------------------------------------------------------ generic byte mutations

NASTY_TEXT = [
    "",
    " ",
    ".",
    "..",
    "../",
    "../../escape",
    "/abs",
    "a/b",
    "a\\b",
    ".hidden",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "NaN",
    "\x00",
    "tab\there",
    "line\nbreak",
    "\x7f",
    "\u202e",
    "é",
    "💥",
    "a" * 300,
    "x" * 5000,
    "1954-07-01",
    "1154-07-01",
    "2300-01-01",
    "0001-01",
    "9999-12-01",
    "2000-13",
    "0000-00",
    "--",
    "#",
    '"',
    "'",
    ",",
    "=",
    "[",
    "]",
    "{",
    "}",
    "null",
    "true",
]
texts = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=40))


def _pos(data: bytes, frac: float) -> int:
    return min(len(data), int(frac * (len(data) + 1)))


fracs = st.floats(0.0, 1.0)
byte_ops = st.one_of(
    st.tuples(st.just("truncate"), fracs),
    st.tuples(st.just("insert"), fracs, st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("delete"), fracs, st.integers(1, 400)),
    st.tuples(st.just("replace"), fracs, st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("empty")),
    st.tuples(st.just("flip"), fracs, st.integers(1, 255)),
)


def apply_byte_op(data: bytes, op: tuple) -> bytes:
    kind = op[0]
    if kind == "empty":
        return b""
    i = _pos(data, op[1])
    if kind == "truncate":
        return data[:i]
    if kind == "insert":
        return data[:i] + op[2] + data[i:]
    if kind == "delete":
        return data[:i] + data[i + op[2] :]
    if kind == "replace":
        return data[:i] + op[2] + data[i + len(op[2]) :]
    if kind == "flip" and data:
        i = min(i, len(data) - 1)
        return data[:i] + bytes([data[i] ^ op[2]]) + data[i + 1 :]
    return data


# ------------------------------------------------------------------ 1. experiment configs


def _shipped(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


SHIPPED_DOCS = [_shipped(p) for p in SHIPPED]
MODEL_NAMES = sorted(p.stem for p in SHIPPED_MODELS.glob("*.toml"))

scalars = st.one_of(
    st.integers(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    texts,
    st.dates(),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "dist"]) | texts, inner, max_size=3),
    ),
    max_leaves=8,
)
model_names = st.one_of(
    st.sampled_from(MODEL_NAMES),
    st.sampled_from(
        [
            "../models/ms_ecm.toml",
            "models/ms_ecm.toml",
            "ms_ecm.toml",
            "/etc/passwd",
            "models",
            "../../x",
            "",
            ".",
            "/",
            "nope",
            "MS_ECM",
            "ms ecm",
            "m\x00",
            "m" * 255,
            "m" * 256,
            "x" * 5000,
            "a/" + "b" * 300,
        ]
    ),
    texts,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a parsed TOML document."""
    out: list[tuple] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    return out


@st.composite
def mutated_config(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(draw(st.sampled_from(SHIPPED_DOCS)), default=str))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2, 2, 3, 5]))):
        keys = _paths(doc)
        op = draw(st.sampled_from(["drop", "replace", "add", "model", "name"]))
        if op in ("drop", "replace") and keys:
            key = draw(st.sampled_from(keys))
            parent = doc
            for k in key[:-1]:
                parent = parent[k]
            if op == "drop":
                del parent[key[-1]]
            else:
                parent[key[-1]] = draw(toml_values)
        elif op == "add":
            tables = [()] + [k for k in keys if isinstance(_get(doc, k), dict)]
            where = _get(doc, draw(st.sampled_from(tables)))
            where[draw(texts | st.sampled_from(["seed", "name", "window", "priors"]))] = draw(
                toml_values
            )
        elif op == "model":
            doc["model"] = draw(model_names)
        else:
            doc["name"] = draw(texts)
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # a value tomli_w cannot write: fall back to the original
        text = tomli_w.dumps(draw(st.sampled_from(SHIPPED_DOCS)))
    data = text.encode("utf-8")
    for op in draw(st.lists(byte_ops, max_size=2)):
        data = apply_byte_op(data, op)
    return data


def _get(doc: Any, key: tuple) -> Any:
    for k in key:
        doc = doc[k]
    return doc


@st.composite
def nested_config(draw: st.DrawFn) -> bytes:
    n = draw(st.sampled_from([1, 10, 59, 60, 61, 62, 100, 999, 1000, 5000, 30000]))
    base = tomli_w.dumps(draw(st.sampled_from(SHIPPED_DOCS)))
    kind = draw(st.sampled_from(["array", "inline", "dotted", "tables"]))
    if kind == "array":
        extra = "deep = " + "[" * n + "]" * n + "\n"
    elif kind == "inline":
        extra = "deep = " + "{a = " * n + "1" + "}" * n + "\n"
    elif kind == "dotted":
        extra = "a." * min(n, 3000) + "b = 1\n"
    else:
        extra = "[" + ".".join(["t"] * min(n, 3000)) + "]\nx = 1\n"
    where = draw(st.sampled_from(["top", "options", "priors", "data"]))
    if where == "top":
        return (extra + base).encode()
    return (base + f"\n[{where}.z]\n" + extra).encode()


@st.composite
def one_change_config(draw: st.DrawFn) -> bytes:
    """A shipped config with only `model` or `name` changed (so validation reaches them)."""
    doc = dict(draw(st.sampled_from(SHIPPED_DOCS)))
    if draw(st.booleans()):
        doc["model"] = draw(model_names)
    else:
        doc["name"] = draw(texts)
    return tomli_w.dumps(doc).encode("utf-8")


configs = st.one_of(
    one_change_config(),
    mutated_config(),
    mutated_config(),
    nested_config(),
    st.binary(max_size=200),
    st.binary(max_size=50).map(lambda b: b'model = "ms_ecm"\n' + b),
)
file_names = st.sampled_from(["e.toml", "gold.toml", ".hidden.toml", "my run.toml", "a..b.toml"])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a copy of the shipped model specs in models/ and an experiments/ folder
    for the configs."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(SHIPPED_MODELS, root / "models")
    (root / "experiments").mkdir()
    return root


def _check_experiment(path: Path) -> Experiment | None:
    try:
        exp = load_experiment(path)
    except RegimesError:
        return None
    assert isinstance(exp, Experiment)
    name = exp.name
    assert name and "/" not in name and "\\" not in name and ".." not in name, name
    assert not name.startswith("."), name
    return exp


@_prop(1500)
@given(data=configs, file=file_names)
@example(data=b'model = "' + b"m" * 300 + b'"\n', file="e.toml")
def test_load_experiment_raises_only_regimes_errors(project: Path, data: bytes, file: str) -> None:
    path = project / "experiments" / file
    path.write_bytes(data)
    _check_experiment(path)


# ------------------------------------------------------------------ 2. data files

DATA_TARGETS = [
    ("hamilton1989_rgnp_quarterly.csv", "HAMILTON_RGNP"),
    ("hamilton1989_rgnp_quarterly.csv", "HAMILTON_REC"),
    ("usmacro_fedfunds_ogap_inf_quarterly.csv", "USMACRO_FEDFUNDS"),
    ("usmacro_fedfunds_ogap_inf_quarterly.csv", "USMACRO_INF"),
    ("us_fiscal_annual.csv", "FYFSD"),
    ("us_fiscal_annual.csv", "FYOIGDA188S"),
]

line_ops = st.one_of(
    st.tuples(st.just("del_line"), fracs),
    st.tuples(st.just("dup_line"), fracs),
    st.tuples(st.just("swap_lines"), fracs, fracs),
    st.tuples(st.just("shuffle"), st.randoms(use_true_random=False)),
    st.tuples(st.just("swap_cols"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("cell"), fracs, st.integers(0, 3), texts),
    st.tuples(st.just("header"), texts),
    st.tuples(st.just("crlf")),
)


def apply_line_op(data: bytes, op: tuple) -> bytes:
    kind = op[0]
    lines = data.split(b"\n")
    body = lines[1:] if len(lines) > 1 else []
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "header":
        return b"\n".join([op[1].encode("utf-8", "surrogatepass"), *body])
    if kind == "swap_cols":
        out = []
        for line in lines:
            cells = line.split(b",")
            a, b = op[1] % max(len(cells), 1), op[2] % max(len(cells), 1)
            if cells and a < len(cells) and b < len(cells):
                cells[a], cells[b] = cells[b], cells[a]
            out.append(b",".join(cells))
        return b"\n".join(out)
    if not body:
        return data
    i = min(len(body) - 1, int(op[1] * len(body))) if kind != "shuffle" else 0
    if kind == "del_line":
        del body[i]
    elif kind == "dup_line":
        body.insert(i, body[i])
    elif kind == "swap_lines":
        j = min(len(body) - 1, int(op[2] * len(body)))
        body[i], body[j] = body[j], body[i]
    elif kind == "shuffle":
        op[1].shuffle(body)
    elif kind == "cell":
        cells = body[i].split(b",")
        cells[op[2] % len(cells)] = op[3].encode("utf-8", "surrogatepass")
        body[i] = b",".join(cells)
    return b"\n".join([lines[0], *body])


def mutate_file(data: bytes, ops: list[tuple]) -> bytes:
    for op in ops:
        data = apply_line_op(data, op) if op[0] in _LINE_KINDS else apply_byte_op(data, op)
    return data


_LINE_KINDS = {"del_line", "dup_line", "swap_lines", "shuffle", "swap_cols", "cell", "header",
               "crlf"}  # fmt: skip
file_ops = st.lists(st.one_of(line_ops, line_ops, byte_ops), min_size=1, max_size=4)


@pytest.fixture
def data_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the data snapshot (once per test function)."""
    source = Path(os.environ["REGIMES_DATA_DIR"])
    if not (source / "hamilton1989_rgnp_quarterly.csv").is_file():
        pytest.skip(f"data snapshot not found at {source}")
    dest = tmp_path_factory.mktemp("data") / "data"
    shutil.copytree(source, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


@contextlib.contextmanager
def corrupted(data_dir: Path, file: str, ops: list[tuple]):
    """`data_dir/file` corrupted by `ops` for the duration of the block, then restored."""
    path = data_dir / file
    original = path.read_bytes()
    try:
        path.write_bytes(mutate_file(original, ops))
        clear_cache()  # the table cache keys on (mtime, size): never let it mask the rewrite
        yield path
    finally:
        path.write_bytes(original)
        clear_cache()


@_prop(1000)
@given(target=st.sampled_from(DATA_TARGETS), ops=file_ops)
@example(target=DATA_TARGETS[2], ops=[("cell", 0.0, 0, "1154-07-01")])
def test_corrupt_data_files_raise_only_data_errors(
    data_copy: Path, target: tuple[str, str], ops: list[tuple]
) -> None:
    file, sid = target
    with corrupted(data_copy, file, ops):
        try:
            values = load_series(sid, data_copy)
        except DataError:
            values = None
        if values is not None:  # what loads is clean: floats on unique, sorted dates
            assert values.dtype == np.float64 and not values.isna().any()
            assert values.index.is_monotonic_increasing and values.index.is_unique
            assert np.isfinite(values.to_numpy()).all()
        results = check_data_dir(data_copy, [sid])  # must not raise at all
        assert len(results) == 1 and results[0].series_id == sid
        assert (results[0].problem is None) == results[0].ok
        if values is None:
            assert results[0].problem  # a series that does not load is reported


# ------------------------------------------------------------------ 3. run directories


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete run directory written as `regimes run` writes one."""
    return make_run(tmp_path_factory.mktemp("runs"), "good", 1.0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
file_names_in_manifest = st.one_of(
    st.sampled_from(
        [DERIVED, POSTERIOR, CONFIG, MANIFEST, "figures", "figures/", "figures/fair_value.png",
         "../x", "/etc/passwd", "", ".", "./derived.nc", "a" * 300, "d/" * 200 + "x",
         "nul\x00.nc", "derived.nc/"]
    ),
    texts,
)  # fmt: skip
manifest_ops = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(["status", "files", "run_id", "seed"]), json_values),
    st.tuples(st.just("del"), st.sampled_from(["status", "files", "run_id", "seed"])),
    st.tuples(st.just("file"), file_names_in_manifest, json_values | st.text(max_size=64)),
    st.tuples(st.just("unlist"), st.sampled_from([DERIVED, POSTERIOR, CONFIG])),
    st.tuples(st.just("whole"), json_values),
)


def apply_manifest_op(data: bytes, op: tuple) -> bytes:
    manifest = json.loads(data)
    kind = op[0]
    if kind == "set":
        manifest[op[1]] = op[2]
    elif kind == "del":
        manifest.pop(op[1], None)
    elif kind == "file" and isinstance(manifest.get("files"), dict):
        manifest["files"][op[1]] = op[2]
    elif kind == "unlist" and isinstance(manifest.get("files"), dict):
        manifest["files"].pop(op[1], None)
    elif kind == "whole":
        manifest = op[1]
    return json.dumps(manifest).encode()


run_damage = st.one_of(
    # a file changed after the run was written (its recorded sha256 no longer matches)
    st.tuples(st.sampled_from([DERIVED, POSTERIOR, CONFIG, MANIFEST]), file_ops, st.just(False)),
    # a file already corrupt when it was written (the manifest records the corrupt bytes)
    st.tuples(st.sampled_from([DERIVED, POSTERIOR, CONFIG]), file_ops, st.just(True)),
    # a manifest with a well-formed JSON body but generated contents
    st.tuples(
        st.just(MANIFEST), st.lists(manifest_ops, min_size=1, max_size=3), st.just(False)
    ),  # a manifest that lists one generated file name (with a well-formed digest)
    st.tuples(
        st.just(MANIFEST),
        st.tuples(st.just("file"), file_names_in_manifest, st.just("0" * 64)).map(lambda op: [op]),
        st.just(False),
    ),
)


def damage_run(run: Path, damage: tuple) -> None:
    name, ops, rehash = damage
    path = run / name
    data = path.read_bytes()
    for op in ops:
        if op[0] in ("set", "del", "file", "unlist", "whole"):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                data = apply_manifest_op(data, op)
        else:
            data = mutate_file(data, [op])
    path.write_bytes(data)
    if rehash:
        manifest = json.loads((run / MANIFEST).read_bytes())
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
        (run / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


@contextlib.contextmanager
def damaged_copy(good_run: Path, scratch: Path, damage: tuple):
    tmp = Path(tempfile.mkdtemp(dir=scratch))
    run = tmp / "exp" / "r"
    try:
        shutil.copytree(good_run, run)
        damage_run(run, damage)
        yield run
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _open_everything(run_dir: Path) -> None:
    try:
        run = open_run(run_dir)
    except RegimesError:
        return
    for load in (run.derived, run.posterior):
        with contextlib.suppress(RegimesError):
            load()
    with contextlib.suppress(RegimesError):
        run.config_text  # noqa: B018


@_prop(600)
@given(damage=run_damage)
@example(damage=(MANIFEST, [("file", "a" * 300, "0" * 64)], False))
def test_corrupt_run_directories_raise_only_run_errors(
    good_run: Path, scratch: Path, damage: tuple
) -> None:
    with damaged_copy(good_run, scratch, damage) as run:
        _open_everything(run)


@_prop(40)
@given(damage=run_damage)
def test_diagnose_on_corrupt_runs_exits_0_1_or_2(
    good_run: Path, scratch: Path, damage: tuple
) -> None:
    with damaged_copy(good_run, scratch, damage) as run:
        before = _listing(run.parent.parent)
        assert _quiet_main(["diagnose", str(run)]) in (0, 1, 2)
        assert _listing(run.parent.parent) == before


# ------------------------------------------------------------------ 4. the CLI


@_prop(30)
@given(target=st.sampled_from(DATA_TARGETS), ops=file_ops)
def test_data_check_on_corrupt_data_exits_0_1_or_2(
    data_copy: Path, target: tuple[str, str], ops: list[tuple]
) -> None:
    before = _listing(data_copy)
    with corrupted(data_copy, target[0], ops):
        assert _quiet_main(["data", "check", "--data-dir", str(data_copy)]) in (0, 1, 2)
    assert _listing(data_copy) == before


@_prop(300)
@given(data=configs, file=file_names, out=st.sampled_from(["out", "deep/out", "o u t"]))
def test_run_with_invalid_configs_exits_2_and_writes_nothing(
    project: Path, data: bytes, file: str, out: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / "experiments" / file
    path.write_bytes(data)
    if _check_experiment(path) is not None:
        return  # valid: `regimes run` would sample; only failing configs are run here
    work = Path(tempfile.mkdtemp(dir=project))  # the working directory and the --out root
    results = ROOT / "results"
    before, before_results = _listing(project), _listing(results)
    monkeypatch.chdir(work)
    out_dir = work / out
    argv = ["run", str(path), "--out", str(out_dir), "--no-progress", "--quick"]
    assert _quiet_main(argv) == 2
    after = _listing(project)
    new = {p for p in after - before if not p.startswith(str(out_dir))}
    assert not new, new
    assert not out_dir.exists()  # a config error creates nothing at all, not even --out
    assert _listing(results) == before_results


# ------------------------------------------------------------------ 5. issue 31: fitted data,
# bounds and paths. A user's own series file with cells that are not finite, huge or tiny, a
# column made constant or collinear, dates at and past pandas' range; sampler sizes, seeds and
# horizons at and past their bounds; paths too long, with NUL bytes, through files and folders.

CELLS = ["inf", "-inf", "+inf", "Infinity", "1e400", "-1e400", "1e300", "1e-300", "1e155",
         "NaN", "nan", "NA", "", ".", "0", "-0", "n/a", "1,5", "0x10", "1_000"]  # fmt: skip
DATES = ["1677-09-21", "1677-09-22", "1677-10-01", "2262-04-01", "2262-04-11", "2262-04-12",
         "1500-01-01", "2300-01-01", "0001-01-01", "9999-12-31", "2015-02-30", "2015-13-01"]  # fmt: skip
csv_ops = st.one_of(
    st.tuples(st.just("cell"), st.integers(0, 131), st.sampled_from(["asset", "factor"]),
              st.sampled_from(CELLS)),
    st.tuples(st.just("date"), st.integers(0, 131), st.sampled_from(DATES)),
    st.tuples(st.just("constant"), st.sampled_from(["asset", "factor"]),
              st.sampled_from([0.0, 1.0, -3.5, 1e300])),
    st.tuples(st.just("scale"), st.sampled_from(["asset", "factor"]),
              st.sampled_from([1e-300, 1e-120, 1e-8, 1e8, 1e99, 1e101, 1e300])),
    st.tuples(st.just("collinear"), st.sampled_from([1.0, -2.0, 1e-6]), st.floats(-5, 5)),
    st.tuples(st.just("window"), st.sampled_from([*DATES[:8], "2012-01", "2019-12"])),
)  # fmt: skip


def user_table(ops: list[tuple]) -> tuple[pd.DataFrame, str, str]:
    """The researcher's file (monthly 2010..2020, an asset priced by a factor) after `ops`,
    and the window end it is fitted to."""
    df = table().astype(object)
    start, end = "2012-01", "2019-12"
    for op in ops:
        if op[0] == "cell":
            df.loc[op[1], op[2]] = op[3]
        elif op[0] == "date":
            df.loc[op[1], "date"] = op[2]
        elif op[0] == "constant":
            df[op[1]] = op[2]
        elif op[0] == "scale":
            df[op[1]] = pd.to_numeric(df[op[1]], errors="coerce") * op[2]
        elif op[0] == "collinear":
            df["asset"] = op[1] * pd.to_numeric(df["factor"], errors="coerce") + op[2]
        else:
            start, end = (op[1][:7], end) if op[1] < "2019" else (start, op[1][:7])
        df = df.astype(object)  # any cell may take text next
    return df, start, end


def _user_experiment(folder: Path, ops: list[tuple], frequency: str) -> Path:
    df, start, end = user_table(ops)
    df.to_csv(folder / "mine.csv", index=False)
    text = EXPERIMENT.replace("{frequency}", frequency)
    text = text.replace('start = "2012-01"', f'start = "{start}"').replace(
        'end = "2019-12"', f'end = "{end}"'
    )
    path = folder / "mine.toml"
    path.write_text(text, encoding="utf-8")
    return path


@_prop(250)
@given(
    ops=st.lists(csv_ops, min_size=1, max_size=3), frequency=st.sampled_from(["M", "M", "Q", "D"])
)
@example(ops=[("cell", 40, "asset", "inf")], frequency="M")
@example(ops=[("date", 0, "1500-01-01")], frequency="M")
@example(ops=[("constant", "factor", 1.0)], frequency="M")
@example(ops=[("collinear", -2.0, 1.0)], frequency="M")
@example(ops=[("scale", "asset", 1e300)], frequency="M")
def test_user_files_fit_or_raise_one_data_error(
    scratch: Path, data_dir: Path, ops: list[tuple], frequency: str
) -> None:
    """Whatever the researcher's file holds, its frame is built or refused with a DataError
    (or ConfigError for a window the config cannot hold); a frame that is built holds only
    finite values of a size standardisation handles, and a target and factor that vary and
    are not collinear over the fit window."""
    from regimes.data.checks import COLLINEAR, MAGNITUDE_MAX
    from regimes.userdata import experiment_frame

    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        exp = load_experiment(_user_experiment(folder, ops, frequency))
    except RegimesError:
        return
    try:
        frame = experiment_frame(exp, data_dir)
    except DataError:
        return
    window = frame.frame.loc[frame.fit.to_numpy(), ["asset", "factor"]].to_numpy(dtype=float)
    values = frame.frame.to_numpy(dtype=float)
    assert np.isfinite(window).all()
    assert (np.abs(values[np.isfinite(values)]) <= MAGNITUDE_MAX).all() and not np.isinf(
        values
    ).any()
    assert (window.std(axis=0) > 0).all()
    corr = np.corrcoef(window.T)
    assert 1 - abs(corr[0, 1]) > COLLINEAR


@_prop(25)
@given(ops=st.lists(csv_ops, min_size=1, max_size=3))
@example(ops=[("date", 131, "2300-01-01")])
def test_run_on_unusable_user_files_exits_2_and_writes_nothing(
    scratch: Path, data_dir: Path, ops: list[tuple]
) -> None:
    from regimes.userdata import experiment_frame

    folder = Path(tempfile.mkdtemp(dir=scratch))
    path = _user_experiment(folder, ops, "M")
    try:
        experiment_frame(load_experiment(path), data_dir)
        return  # usable: `regimes run` would sample
    except RegimesError:
        pass
    out = folder / "out"
    argv = ["run", str(path), "--quick", "--out", str(out), "--data-dir", str(data_dir)]
    assert _quiet_main(argv) == 2
    assert not out.exists()


frame_ops = st.one_of(
    csv_ops,
    st.tuples(st.just("tz"), st.sampled_from(["UTC", "Europe/Berlin"])),
    st.tuples(st.just("repeat"), st.integers(0, 131)),
    st.tuples(st.just("unit"), st.sampled_from(["s", "ms", "us", "ns"])),
)


@_prop(150)
@given(ops=st.lists(frame_ops, min_size=1, max_size=3))
@example(ops=[("tz", "UTC")])
@example(ops=[("repeat", 5)])
@example(ops=[("cell", 40, "factor", "n/a")])
def test_dataframes_fit_or_raise_one_data_error(
    scratch: Path, data_dir: Path, ops: list[tuple]
) -> None:
    """`run_dataframe`'s input: the user's DataFrame (time zones, repeated dates, text or
    non-finite cells, other date units) gives a fit frame or one DataError, never another
    exception (its checks run before any model; here without the fit)."""
    from regimes.api import dataframe_inputs
    from regimes.userdata import experiment_frame

    folder = Path(tempfile.mkdtemp(dir=scratch))
    path = _user_experiment(folder, [op for op in ops if op[0] in ("cell", "constant", "scale",
                                                                   "collinear")], "M")  # fmt: skip
    df, _, _ = user_table([op for op in ops if op[0] in ("cell", "constant", "scale", "collinear")])
    df = df.set_index(pd.DatetimeIndex(pd.to_datetime(df.pop("date"))))
    for op in ops:
        if op[0] == "tz":
            df = df.tz_localize(op[1]) if df.index.tz is None else df.tz_convert(op[1])
        elif op[0] == "repeat":
            df = pd.concat([df, df.iloc[[op[1]]]]).sort_index()
        elif op[0] == "unit":
            df.index = df.index.as_unit(op[1])
    exp = load_experiment(path)
    try:
        frame = experiment_frame(exp, data_dir, columns=dataframe_inputs(df, exp))
    except DataError:
        return
    assert np.isfinite(frame.frame.loc[frame.fit.to_numpy()].to_numpy(dtype=float)).all()


BOUND_VALUES = [-(2**64), -1, 0, 1, 9, 10, 64, 65, 200, 201, 100_000, 100_001, 10**9, 2**31 - 1,
                2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, True, 1.5, "10", float("nan")]  # fmt: skip
SAMPLER_KEYS = ["draws", "tune", "chains", "cores", "seed", "quick.draws", "quick.tune",
                "quick.chains", "quick.n_starts"]  # fmt: skip


@_prop(200)
@given(key=st.sampled_from(SAMPLER_KEYS), value=st.sampled_from(BOUND_VALUES) | st.integers(),
       seed=st.none() | st.sampled_from(BOUND_VALUES) | st.integers())  # fmt: skip
def test_sampler_bounds_hold_on_load_and_override(
    project: Path, key: str, value: Any, seed: Any
) -> None:
    """Sizes, seeds and the `--seed` override are in bounds or refused with a ConfigError."""
    from regimes.config import MAX_CHAINS, MAX_DRAWS, MAX_SEED, MAX_STARTS, run_version

    doc = json.loads(json.dumps(SHIPPED_DOCS[0], default=str))
    table, _, name = f"sampler.{key}".rpartition(".")
    node = doc
    for part in table.split("."):
        node = node.setdefault(part, {})
    node[name] = value
    path = project / "experiments" / "bounds.toml"
    try:
        path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    except (TypeError, ValueError):  # nan: TOML writes it; an unwritable value is no config
        return
    try:
        exp = run_version(
            load_experiment(path), quick=isinstance(seed, int) and seed % 2 == 0, seed=seed
        )
    except RegimesError:
        return
    s, q = exp.sampler, exp.sampler.quick
    assert 10 <= s.draws <= MAX_DRAWS and 10 <= s.tune <= MAX_DRAWS and 1 <= s.chains <= MAX_CHAINS
    assert 0 <= s.seed <= MAX_SEED and type(s.seed) is int
    assert 1 <= q.n_starts <= MAX_STARTS and 10 <= q.draws <= MAX_DRAWS


@_prop(60)
@given(horizon=st.sampled_from([-(2**63), -1, 0, 1201, 10**5, 2**63]) | st.integers(max_value=0))
def test_forecast_horizons_out_of_bounds_are_refused(good_run: Path, horizon: int) -> None:
    from regimes.forecast import ForecastError, forecast_run

    with pytest.raises(ForecastError, match="--horizon must be from 1 to 1200"):
        forecast_run(good_run, horizon=horizon)


def _odd_paths(base: Path) -> list[str]:
    """Paths no file system call may turn into a traceback."""
    a_file = base / "a_file"
    a_file.write_text("x\n", encoding="utf-8")
    loop = base / "loop"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    return [
        "x" * 5000,
        str(base / ("y" * 300)),
        str(base / ("d/" * 2100)) + "z",
        str(base / "nul\x00name"),
        str(a_file),
        str(a_file / "below"),
        str(loop),
        str(loop / "below"),
    ]


PATH_VERBS = [
    ["run", "{p}"],
    ["run", "{e}", "--out", "{p}"],
    ["run", "{s}", "--resume", "{p}", "--out", "{p}"],
    ["run", "{e}", "--data-dir", "{p}"],
    ["diagnose", "{p}"],
    ["lfo", "{p}"],
    ["forecast", "{p}"],
    ["forecast", "{g}", "--scenario", "{p}", "--horizon", "2"],
    ["report", "{p}"],
    ["compare", "{p}", "{g}"],
    ["compare", "{g}", "{r}", "--out", "{p}"],
    ["report", "--compare", "{g}", "{r}", "--out", "{p}"],
    ["sweep", "{p}"],
    ["sweep", "{w}", "--resume", "{p}", "--serial"],
    ["data", "list", "--data-dir", "{p}"],
]


@_prop(120)
@given(verb=st.sampled_from(PATH_VERBS), which=st.integers(0, 7))
def test_odd_paths_never_raise_from_the_command_line(
    project: Path, good_run: Path, scratch: Path, verb: list[str], which: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Every verb given a path too long, with a NUL byte, through a file or a link loop: exit
    0, 1 or 2 (never a traceback, never a sampling run), nothing written outside its folder."""
    from regimes import api

    def no_fit(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("sampled")

    monkeypatch.setattr(api, "fit_frame", no_fit)
    base = Path(tempfile.mkdtemp(dir=scratch))
    odd = _odd_paths(base)[which]
    study = base / "study"
    study.mkdir()
    (study / "study.toml").write_text('title = "t"\n', encoding="utf-8")
    experiment = project / "experiments" / "odd.toml"
    experiment.write_bytes(tomli_w.dumps(SHIPPED_DOCS[0]).encode())
    sweep = base / "s.toml"
    sweep.write_text(f'experiment = "{experiment}"\nseeds = [1]\n', encoding="utf-8")
    other = base / "other" / "exp" / "r"
    shutil.copytree(good_run, other)
    fill = {"{p}": odd, "{e}": str(experiment), "{g}": str(good_run), "{s}": str(study),
            "{w}": str(sweep), "{r}": str(other)}  # fmt: skip
    argv = [fill.get(a, a) for a in verb]
    monkeypatch.chdir(base)
    before = _listing(project, good_run.parent)
    assert _quiet_main(argv) in (0, 1, 2)
    assert _listing(project, good_run.parent) == before
