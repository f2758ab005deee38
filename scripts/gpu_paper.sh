#!/usr/bin/env bash
# Paper-scale P1 Table III (BIN and TIME rows by default) on one GPU, packed (several small runs share the
# device), inside a time budget; resumable (rerun the same command to continue), writes runs that
# `stripes report` reads and, at the end, the report of whatever is evaluated.
#
#   bash scripts/gpu_paper.sh [--budget-min 12] [--profile paper] [--jobs 4] [--contexts bin,time]
#                             [--seeds 5] [--lrs 5e-4] [--out results/gpu-paper] [-- extra stripes options]
#
# Tested on CPU with `--profile smoke` (tests/experiments/test_gpu_script.py). On a machine without CUDA the
# runs use the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=12 PROFILE=paper JOBS=4 CONTEXTS=bin,time SEEDS=5 LRS=5e-4 OUT=results/gpu-paper
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budget-min) BUDGET=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --contexts) CONTEXTS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --lrs) LRS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "gpu_paper.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || bash scripts/setup.sh
  . .venv/bin/activate
fi
if [ -z "${STRIPES_DATA:-}" ] && [ -d ../shared/data/POP909 ]; then export STRIPES_DATA=$(cd .. && pwd)/shared/data; fi
DEVICE=$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
echo "gpu_paper: profile $PROFILE, contexts $CONTEXTS, $SEEDS seeds, lr $LRS, $JOBS runs at a time on $DEVICE, budget ${BUDGET} min -> $OUT"
rc=0
stripes reproduce --tables p1-table3 --profile "$PROFILE" --contexts "$CONTEXTS" --seeds "$SEEDS" --lrs "$LRS" \
  --jobs "$JOBS" --budget-min "$BUDGET" --no-mi --out "$OUT" --set "train.device=$DEVICE" "${EXTRA[@]}" || rc=$?
if [ -d "$OUT/runs" ]; then stripes sweep p1-table3 --profile "$PROFILE" --contexts "$CONTEXTS" --seeds "$SEEDS" \
  --lrs "$LRS" --out "$OUT/runs" --dry-run --set "train.device=$DEVICE" "${EXTRA[@]}" | tail -n 40 || true; fi
exit $rc
