#!/bin/bash
# ar on the 512² grid trained on from session 19's run (runs/ar512, step 600): a new 600-step cosine at lr 2e-4
# on mg512s2's pool of stream-4 grids (scenes it has not seen). Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 4 \
  --fresh-dir runs/mg512s2/fresh_tokens --config benchmarks/results/issue13/session20/ar_512_b.toml \
  --init-from runs/ar512/model.safetensors --stop-after ${STOP:-600} --out runs/ar512b
