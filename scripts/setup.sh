#!/usr/bin/env bash
# Create .venv with the CPU PyTorch build first (never let pip resolve plain `torch` to a CUDA build),
# then install stripes with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
# STRIPES_TORCH_INDEX: a wheel index for torch, e.g. https://download.pytorch.org/whl/cpu on a stock PyPI
# setup, where plain `pip install torch` would fetch the CUDA build (unset: pip's configured index)
IDX=()
[ -n "${STRIPES_TORCH_INDEX:-}" ] && IDX=(--index-url "$STRIPES_TORCH_INDEX")
python -c "import torch" 2>/dev/null || pip install -q "${IDX[@]}" "torch==${STRIPES_TORCH_VERSION:-2.13.0}"
pip install -q -e ".[test,app]"  # app: gradio for `stripes serve` (its tests run in CI)
