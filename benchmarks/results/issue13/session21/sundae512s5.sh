#!/bin/bash
# sundae512s3's recipe (300-step cosine, lr 3e-4) started from maskgit 512² s3 (runs/mg512s3, step 800) instead of
# s2's step 2500. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 4 \
  --fresh-dir runs/mg512s2/fresh_tokens --config benchmarks/results/issue13/session21/sundae_512_s3.toml \
  --init-from ${INIT:-runs/mg512s3/model.safetensors} --stop-after ${STOP:-300} --out runs/sundae512s5
