#!/bin/bash
# ar v5 (the shipped ar: runs/ar512q step 1200) trained on with a second cosine on fresh renders of a
# new stream (10), one new grid per sample (8 per step, batch 8), lr 1.2e-4 over 500 steps (this AMD EPYC has no native bf16: ~10 s a step in fp32): session 25's
# ar512r recipe, started from the shipped file because runs/ar512q was gone on this machine.
# Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 8 --fresh-initial 64 --fresh-workers 1 --fresh-seed 10 \
  --config configs/defaults/ar_512_fresh.toml --set train.steps=${STEPS:-500} --set train.lr=1.2e-4 \
  --init-from ${INIT:-nar/assets/models/ar.safetensors} --stop-after ${STOP:-${STEPS:-500}} --out runs/ar512s
