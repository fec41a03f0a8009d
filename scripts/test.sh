#!/usr/bin/env bash
# Lint, then run the test suite (fast tests and the marked sampling runs that fit CI's budget).
# Installs ./.venv first when it is missing or older than the lock file (scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_installed.sh
export REGIMES_DATA_DIR="${REGIMES_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export REGIMES_CACHE_DIR="${REGIMES_CACHE_DIR:-$PWD/.cache}"
export MPLBACKEND=Agg
.venv/bin/ruff check .
# full-size validation runs (-m validation, minutes each) are left to validation/ and to hand
.venv/bin/python -m pytest -n 2 --dist worksteal --durations=25 -m "not validation" "$@"
