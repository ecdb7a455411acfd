#!/bin/bash
# ar v6 (the shipped ar: runs/ar512s step 500) trained on with a third cosine on fresh renders of a new
# stream (11), one new grid per sample (8 per step, batch 8), lr 1.0e-4 over 500 steps: session 26's
# ar512s recipe one pass further (each pass so far lowered the held-out loss: 2.11 -> 2.09). Started in
# session 28 on the 2-core AMD EPYC (fp32, ~10-13 s a step on one thread). Resumes exactly when rerun.
# The config file carries no top_p: ship with `scripts/ship_models.py --finetune ar runs/ar512t`, then
# `--sampling ar top_p=...` once its filter is measured.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 8 --fresh-initial 64 --fresh-workers 1 --fresh-seed 11 \
  --config configs/defaults/ar_512_fresh.toml --set train.steps=${STEPS:-500} --set train.lr=1.0e-4 \
  --init-from ${INIT:-nar/assets/models/ar.safetensors} --stop-after ${STOP:-${STEPS:-500}} --out runs/ar512t
