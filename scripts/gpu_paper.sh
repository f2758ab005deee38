#!/usr/bin/env bash
# Paper-scale P1 Table III (BIN and TIME rows by default) on one GPU, packed (several small runs share the
# device), inside a time budget; resumable (rerun the same command to continue), writes runs that
# `stripes report` reads and, at the end, the report of whatever is evaluated.
#
#   bash scripts/gpu_paper.sh [--budget-min 12] [--profile paper] [--jobs 4] [--contexts bin,time]
#                             [--seeds 5] [--lrs 5e-4] [--tables p1-table3] [--out results/gpu-paper]
#                             [-- extra stripes options, e.g. --methods "S S-RPE" --reuse DIR]
#
# e.g. the cpu-profile S-RPE rows of P2 Table I (1.5 h a run on one CPU thread, minutes on a GPU):
#   bash scripts/gpu_paper.sh --profile cpu --tables p2-table1 --contexts melody,chord,phrase --seeds 3 \
#       --lrs 2e-3 -- --methods "S S-RPE" --set train.bf16=false
#
# Tested on CPU with `--profile smoke` (tests/experiments/test_gpu_script.py). On a machine without CUDA the
# runs use the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=12 PROFILE=paper JOBS=4 CONTEXTS=bin,time SEEDS=5 LRS=5e-4 TABLES=p1-table3 OUT=results/gpu-paper
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budget-min) BUDGET=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --contexts) CONTEXTS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --lrs) LRS=$2; shift 2 ;;
    --tables) TABLES=$2; shift 2 ;;
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
echo "gpu_paper: tables $TABLES, profile $PROFILE, contexts $CONTEXTS, $SEEDS seeds, lr $LRS, $JOBS runs at a time on $DEVICE, budget ${BUDGET} min -> $OUT"
rc=0
stripes reproduce --tables "$TABLES" --profile "$PROFILE" --contexts "$CONTEXTS" --seeds "$SEEDS" --lrs "$LRS" \
  --jobs "$JOBS" --budget-min "$BUDGET" --no-mi --out "$OUT" --set "train.device=$DEVICE" "${EXTRA[@]}" || rc=$?
if [ -d "$OUT/runs" ]; then
  DRY=() skip=0  # the listing takes the extra options but --reuse (a reproduce option)
  for a in "${EXTRA[@]}"; do
    if [ $skip = 1 ]; then skip=0; elif [ "$a" = --reuse ]; then skip=1; else DRY+=("$a"); fi
  done
  for t in ${TABLES//,/ }; do
    stripes sweep "$t" --profile "$PROFILE" --contexts "$CONTEXTS" --seeds "$SEEDS" --lrs "$LRS" --out "$OUT/runs" \
      --dry-run --set "train.device=$DEVICE" "${DRY[@]}" | tail -n 40 || true
  done
fi
exit $rc
