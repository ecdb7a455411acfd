#!/bin/bash
# ar on the 512² grid (32x32 tokens, the whole grid one 1024-token sequence), started from ar v2;
# reads mg512's pool of stream-3 grids. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 3 \
  --fresh-dir runs/mg512/fresh_tokens --config benchmarks/results/issue13/session19/ar_512.toml --init-from nar/assets/models/ar.safetensors \
  --stop-after ${STOP:-600} --out runs/ar512
