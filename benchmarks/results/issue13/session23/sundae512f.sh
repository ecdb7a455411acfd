#!/bin/bash
# sundae from maskgit v4's weights on fresh renders of stream 6 (one new grid per sample, made by a
# render worker while it trains), a 300-step cosine. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 16 --fresh-initial 64 --fresh-workers 1 --fresh-seed 6 \
  --config benchmarks/results/issue13/session23/sundae_512_fresh.toml \
  --init-from ${INIT:-runs/s21/mg2500/maskgit.safetensors} --stop-after ${STOP:-300} --out runs/sundae512f
