#!/usr/bin/env bash
# Run scripts/install.sh unless ./.venv already holds this checkout's lock file and package
# (a stamp records the sha256 of requirements/lock.txt and pyproject.toml it was installed from).
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
stamp=.venv/.regimes-installed
if [ -x .venv/bin/regimes ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
bash scripts/install.sh
echo "$want" > "$stamp"
