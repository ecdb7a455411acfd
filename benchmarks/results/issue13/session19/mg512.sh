#!/bin/bash
# maskgit on the 512² grid (32x32 tokens), started from maskgit v2; resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
exec .venv/bin/nar train --prior maskgit --fresh 512 --fresh-per-step 2 --fresh-workers 1 --fresh-seed 3 \
  --config benchmarks/results/issue13/session19/maskgit_512.toml --init-from nar/assets/models/maskgit.safetensors \
--stop-after ${STOP:-3000} --out runs/mg512
