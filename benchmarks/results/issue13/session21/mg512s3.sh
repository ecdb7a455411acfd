#!/bin/bash
# maskgit 512² s2 (runs/mg512s2, step 2500, the end of its schedule) trained on: a second cosine, 800 steps
# at lr 1.5e-4, on mg512's pool of stream-3 scenes (6068 grids that only the 4x4 parent saw) plus 0.25 new
# grids per step. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior maskgit --fresh 512 --fresh-per-step 0.25 --fresh-initial 6000 --fresh-workers 1 \
  --fresh-seed 3 --fresh-dir runs/mg512/fresh_tokens --config benchmarks/results/issue13/session21/maskgit_512_s3.toml \
  --init-from ${INIT:-runs/s21/mg2500/maskgit.safetensors} --stop-after ${STOP:-800} --out runs/mg512s3
