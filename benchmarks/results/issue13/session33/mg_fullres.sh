#!/bin/bash
# Session 32's most promising probe again (its runs/ did not survive): maskgit v4 with one transformer
# layer on the 32x32 token grid before and after the valley (model.net.depths [1, 8, 1]; the new layers
# start as the identity, so step 0 is v4), trained from v4 on fresh 512² renders of stream 14 (never seen
# by any shipped prior) made by one render worker while it trains, 8 new grids per step (each read about
# twice), a 450-step cosine at lr 1.5e-4, batch 16 (session32/maskgit_512_probe.toml). Resumes exactly
# when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s33
INIT=runs/s33/maskgit_v4_init.safetensors
[ -e "$INIT" ] || cp nar/assets/models/maskgit.safetensors "$INIT"
exec .venv/bin/nar train --prior maskgit --fresh 512 --fresh-seed 14 --fresh-workers 1 --fresh-per-step 8 \
  --config benchmarks/results/issue13/session32/maskgit_512_probe.toml \
  --set model.net.depths=[1,8,1] --set train.steps=450 \
  --init-from $INIT --stop-after ${STOP:-450} --out runs/mg512fullres_s33
