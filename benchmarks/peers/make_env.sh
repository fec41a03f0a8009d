#!/usr/bin/env bash
# Create benchmarks/.venv-peers: a separate environment for the pymc-extras + nutpie entrant of
# bench_fedfunds.py. pymc-extras 0.15.1 pins pymc 6.3.x, which conflicts with the project's
# pymc 6.4, so it cannot share the project's .venv.
#
# Usage (from anywhere): bash benchmarks/peers/make_env.sh [python3.12-executable]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(dirname "$here")"
# default: python3.12 if it runs, else the interpreter behind the project's .venv
if [[ $# -ge 1 ]]; then
    python="$1"
elif python3.12 -V >/dev/null 2>&1; then
    python=python3.12
else
    python="$("$bench/../.venv/bin/python" -c 'import sys; print(sys._base_executable)')"
fi
venv="$bench/.venv-peers"

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$bench/../requirements/peers.txt"
"$venv/bin/python" -c "import pymc, pymc_extras, nutpie; print('peers env:', 'pymc', pymc.__version__, 'pymc-extras', pymc_extras.__version__, 'nutpie', nutpie.__version__)"
