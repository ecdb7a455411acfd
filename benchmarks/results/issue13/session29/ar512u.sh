#!/bin/bash
# ar v7 (the shipped ar: runs/ar512t step 500) trained on with a fourth cosine on fresh renders of a new
# stream (12), one new grid per sample (8 per step, batch 8), lr 1.0e-4 over 500 steps: the recipe of
# ar512s / ar512t one pass further (each pass so far lowered FD: 3.00 -> 2.62 at 144 samples for the
# last one). Resumes exactly when rerun; on the first start it copies the package's ar file, so a later
# ship cannot change what it started from.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s29
INIT=${INIT:-runs/s29/ar_v7_init.safetensors}
[ -e "$INIT" ] || cp nar/assets/models/ar.safetensors "$INIT"
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 8 --fresh-initial 64 --fresh-workers 1 --fresh-seed 12 \
  --config configs/defaults/ar_512_fresh.toml --set train.steps=${STEPS:-500} --set train.lr=1.0e-4 \
  --init-from $INIT --stop-after ${STOP:-${STEPS:-500}} --out runs/ar512u
