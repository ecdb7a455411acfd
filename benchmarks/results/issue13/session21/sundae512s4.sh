#!/bin/bash
# sundae512s3 (step 300, the end of its schedule) trained on: a second 300-step cosine at lr 2e-4 on the
# same pool of stream-4 grids (plus 0.5 new grids per step). Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 4 \
  --fresh-dir runs/mg512s2/fresh_tokens --config benchmarks/results/issue13/session21/sundae_512_s4.toml \
  --init-from ${INIT:-runs/sundae512s3/model.safetensors} --stop-after ${STOP:-300} --out runs/sundae512s4
