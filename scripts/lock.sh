#!/usr/bin/env bash
# Re-resolve the pinned dependency set from pyproject.toml (run after changing dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/uv pip compile pyproject.toml --extra dev --python-version 3.12 -o requirements/lock.txt "$@"
