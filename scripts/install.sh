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
.venv/bin/uv pip install --python .venv/bin/python --quiet -r requirements/lock.txt
.venv/bin/uv pip install --python .venv/bin/python --quiet --no-deps -e .
.venv/bin/regimes --help >/dev/null
echo "install: ok ($(.venv/bin/python -c 'import pymc, arviz; print("pymc", pymc.__version__, "arviz", arviz.__version__)'))"
