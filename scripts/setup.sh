#!/usr/bin/env bash
# Create .venv with the CPU PyTorch build first (never let pip resolve plain `torch` to a CUDA build),
# then install stripes with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -c "import torch" 2>/dev/null || pip install -q "torch==${STRIPES_TORCH_VERSION:-2.13.0}"
pip install -q -e ".[test]"
