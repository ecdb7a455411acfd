#!/bin/bash
# Next probe (started at the end of session 33): sundae v7 with a second full-resolution layer on each
# side of its valley (model.net.depths [2, 8, 2]; the two new layers start as the identity, so step 0
# is v7), the v7 recipe (configs/defaults/sundae_512_fullres.toml: 300-step cosine, lr 2e-4) on fresh
# 512² renders of stream 15, 0.5 new grid per step by its own render worker. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s33
INIT=runs/s33/sundae_v7_init.safetensors
[ -e "$INIT" ] || cp nar/assets/models/sundae.safetensors "$INIT"
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 15 \
  --config configs/defaults/sundae_512_fullres.toml --set model.net.depths=[2,8,2] \
  --init-from $INIT --stop-after ${STOP:-300} --out runs/sundae512fullres2
