#!/usr/bin/env bash
# The flagship: the gold anchor study (experiments/gold/), installing ./.venv first if needed.
# Extra arguments go to `regimes run` (e.g. --quick for the smoke version, --out DIR). On a
# machine with several cores the study's runs go to a local Dask cluster of one worker per core
# (`--workers N`), unless the arguments already say --workers or --scheduler.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_installed.sh
parallel=()
cores="$(nproc 2>/dev/null || echo 1)"
case " $* " in
  *" --workers"* | *" --scheduler"*) ;;
  *) if [ "$cores" -gt 1 ]; then parallel=(--workers "$cores"); fi ;;
esac
exec .venv/bin/regimes run experiments/gold/ --data-dir "${REGIMES_DATA_DIR:-../shared/data}" \
  "${parallel[@]}" "$@"
