#!/bin/bash
# ar v3 on the joined pool of earlier runs' fresh grids (10 204 grids, 512², streams 3 and 4), a
# 800-step cosine. Make the pool first (once):
#   nar tokenizer join-pools runs/mg512/fresh_tokens runs/mg512s2/fresh_tokens --out runs/pool512
# (or render the same grids again: they are items 0-6199 of stream 3, 0-4003 of 4).
# Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --tokens runs/pool512 --config benchmarks/results/issue13/session23/ar_512_pool.toml \
  --init-from ${INIT:-nar/assets/models/ar.safetensors} --stop-after ${STOP:-800} --out runs/ar512p
