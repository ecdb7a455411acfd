#!/usr/bin/env bash
# The headline table on one H100 / H200 (issue 15), in under 8 minutes:
#   AR (static KV cache, torch.compile + CUDA graphs, bf16) vs MaskGIT vs SUNDAE (12 and 20 steps)
#   at 256², 512², 1024²; batch-1 latency and batch-16 throughput; decode included.
# Results: benchmarks/results/gpu_headline/<device>/ (bench.json/.md/.csv, headline.md).
# Usage: bash benchmarks/gpu.sh [extra bench_gpu.py options]; PY=... to pick the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
cat /proc/loadavg
# hard stop at 9 minutes so that a stuck compile cannot eat a whole device lease
timeout 540 "$PY" benchmarks/bench_gpu.py --preset gpu "$@"
