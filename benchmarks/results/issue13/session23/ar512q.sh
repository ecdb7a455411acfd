#!/bin/bash
# ar v4 on fresh renders of stream 8, one new grid per sample (8 per step; a render worker makes them
# while it trains), a 1500-step cosine from runs/ar512p's step 800 (= ar v4). Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 8 --fresh-initial 64 --fresh-workers 1 --fresh-seed 8 \
  --config configs/defaults/ar_512_fresh.toml \
  --init-from ${INIT:-runs/ar512p/model.safetensors} --stop-after ${STOP:-1500} --out runs/ar512q
