#!/usr/bin/env bash
# The flagship: the gold anchor study (experiments/gold/), installing ./.venv first if needed.
# Extra arguments go to `regimes run` (e.g. --quick for the smoke version, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_installed.sh
exec .venv/bin/regimes run experiments/gold/ --data-dir "${REGIMES_DATA_DIR:-../shared/data}" "$@"
