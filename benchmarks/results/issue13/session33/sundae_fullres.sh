#!/bin/bash
# sundae v6 with one transformer layer on the 32x32 token grid before and after the valley
# (model.net.depths [1, 8, 1]; the new layers start as the identity, so step 0 is v6), trained on with
# SUNDAE's objective: a 300-step cosine at lr 2e-4 (30 warm-up), batch 16, reading the grids of fresh
# 512² renders of stream 14 that mg_fullres.sh's run makes (0.5 new grid per step; it renders its own
# when that pool runs short). Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s33
INIT=runs/s33/sundae_v6_init.safetensors
[ -e "$INIT" ] || cp nar/assets/models/sundae.safetensors "$INIT"
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 14 \
  --fresh-dir runs/mg512fullres_s33/fresh_tokens --config configs/defaults/sundae_512.toml \
  --set model.net.depths=[1,8,1] --set train.lr=2e-4 --set train.warmup_steps=30 --set train.ckpt_every=25 \
  --init-from $INIT --stop-after ${STOP:-300} --out runs/sundae512fullres_s33
