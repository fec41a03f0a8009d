#!/usr/bin/env bash
# Install regimes and its test tools into ./.venv with Python >= 3.12 (PyMC 6 / ArviZ 1.x need it).
# Exact versions come from requirements/lock.txt (regenerate: scripts/lock.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidates=(python3.13 python3.12 python3)
    for exe in "${candidates[@]}"; do
        if command -v "$exe" >/dev/null 2>&1 && "$exe" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$exe"; return 0
        fi
    done
    # pyenv installs that are not on PATH (the plain python3 here is 3.11)
    for exe in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 /usr/bin/python3.1[2-9]; do
        if [ -x "$exe" ] && "$exe" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            echo "$exe"; return 0
        fi
    done
    return 1
}

PY=$(find_python) || { echo "install: need Python >= 3.12 (PyMC 6 and ArviZ 1.x require it); none found" >&2; exit 1; }
echo "install: using $PY ($("$PY" --version))"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip uv
# --compile-bytecode: write .pyc files now; without them (uv does not compile by default, and
# PYTHONDONTWRITEBYTECODE stops Python from caching them) every process recompiles JAX, PyMC and
# friends from source on import: measured 42.6 s -> 12.8 s for `import pymc, jax, numpyro, arviz`
# on a loaded 2-core machine
.venv/bin/uv pip install --python .venv/bin/python --quiet --compile-bytecode -r requirements/lock.txt
.venv/bin/uv pip install --python .venv/bin/python --quiet --no-deps -e .
.venv/bin/regimes --help >/dev/null
# headless Chromium for the report rendering test (tests/test_report.py); Debian/Ubuntu as root only
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "install: installing chromium (headless browser for the report test)"
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq || true  # one stale list must not stop it
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/dev/null \
          || echo "install: note: could not install chromium; the browser test of reports will be skipped" >&2
    else
        echo "install: note: chromium not found (needs apt-get and root to install); the browser test of reports will be skipped" >&2
    fi
fi
echo "install: ok ($(.venv/bin/python -c 'import pymc, arviz; print("pymc", pymc.__version__, "arviz", arviz.__version__)'))"
