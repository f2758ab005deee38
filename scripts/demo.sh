#!/usr/bin/env bash
# Fresh-machine main job: set up .venv, then run the stripes demo (data, training, evaluation).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if [ -z "${STRIPES_DATA:-}" ] && [ -d ../shared/data/POP909 ]; then export STRIPES_DATA=$(cd .. && pwd)/shared/data; fi
stripes demo "$@"
