#!/bin/bash
# ar512q's step 1500 (the end of its cosine) trained on with a second, shorter cosine on fresh renders
# of a new stream (9), one new grid per sample (8 per step, batch 8), lr 1.2e-4 over 800 steps.
# Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 8 --fresh-initial 64 --fresh-workers 1 --fresh-seed 9 \
  --config configs/defaults/ar_512_fresh.toml --set train.steps=800 --set train.lr=1.2e-4 \
  --init-from ${INIT:-runs/ar512q/model.safetensors} --stop-after ${STOP:-800} --out runs/ar512r
