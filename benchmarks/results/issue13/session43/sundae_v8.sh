#!/bin/bash
# sundae v7 (the shipped sundae, depths [1, 8, 1]) trained on with a second cosine on fresh 512² renders of
# a new stream (16): v7's two full-resolution layers started as the identity and had only 300 steps, and
# maskgit's full-resolution probe (session 32) was still falling at 475. lr 1e-4 (half v7's), 20 warm-up,
# STEPS (default 330) in all, 0.5 new grid per step. Resumes exactly when rerun; on the first start it
# copies the package's sundae file, so a later ship cannot change what it started from.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s43
INIT=${INIT:-runs/s43/sundae_v7_init.safetensors}
[ -e "$INIT" ] || cp nar/assets/models/sundae.safetensors "$INIT"
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 16 \
  --config configs/defaults/sundae_512_fullres.toml --set train.steps=${STEPS:-330} --set train.lr=1.0e-4 \
  --set train.warmup_steps=20 --init-from $INIT --stop-after ${STOP:-${STEPS:-330}} --out runs/sundae512v8
