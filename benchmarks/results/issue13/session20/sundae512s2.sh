#!/bin/bash
# sundae on the 512² grid with a 2x2 merge, started from maskgit 512² s2 (runs/mg512s2) as sundae v4 was
# from maskgit v2; reads mg512s2's pool of stream-4 grids. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 4 \
  --fresh-dir runs/mg512s2/fresh_tokens --config benchmarks/results/issue13/session20/sundae_512_s2.toml \
  --init-from ${INIT:-runs/mg512s2/model.safetensors} --stop-after ${STOP:-400} --out runs/sundae512s2
