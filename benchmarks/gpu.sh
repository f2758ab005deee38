#!/usr/bin/env bash
# Run the issue #14 benchmarks on a CUDA GPU (device auto-detected; falls back to CPU with a warning).
# Prints the same table as `python benchmarks/run_all.py`, with the train step also timed under bf16
# autocast. Usage: bash benchmarks/gpu.sh [extra run_all.py options, e.g. --quick]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
device=$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
if [ "$device" != cuda ]; then
  echo "gpu.sh: no CUDA device visible to torch; running on the CPU instead" >&2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec python benchmarks/run_all.py --device "$device" "$@"
