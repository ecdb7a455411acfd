#!/bin/bash
# sundae on the 512² grid (2x2 merge) from maskgit 512² s2 at the end of its schedule (runs/mg512s2, step
# 2500), a 300-step cosine run to its end; reads mg512s2's pool of stream-4 grids. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 4 \
  --fresh-dir runs/mg512s2/fresh_tokens --config benchmarks/results/issue13/session21/sundae_512_s3.toml \
  --init-from ${INIT:-runs/s21/mg2500/maskgit.safetensors} --stop-after ${STOP:-300} --out runs/sundae512s3
