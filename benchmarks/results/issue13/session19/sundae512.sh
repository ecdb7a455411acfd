#!/bin/bash
# sundae on the 512² grid, started from maskgit-512 (runs/mg512, step 3000) as sundae v4 was from maskgit v2;
# reads mg512's pool of stream-3 grids. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 3 \
  --fresh-dir runs/mg512/fresh_tokens --config benchmarks/results/issue13/session19/sundae_512.toml --init-from runs/mg512/model.safetensors \
  --stop-after ${STOP:-400} --out runs/sundae512
