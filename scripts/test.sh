#!/usr/bin/env bash
# Fresh-machine test command: set up .venv, run the test suite and the linter.
# Real-data tests read ../shared/data (override with STRIPES_DATA); caches go to a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export STRIPES_DATA=${STRIPES_DATA:-$(cd .. && pwd)/shared/data}
python -m pytest -q "$@"
ruff check .
