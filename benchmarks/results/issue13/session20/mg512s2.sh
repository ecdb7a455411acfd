#!/bin/bash
# maskgit on the 512² grid with a 2x2 outer merge (a 16x16 valley), started from mg512 (4x4 merge, runs/mg512):
# `nar train --init-from` refines the parent's merge and split to 2x2 (nar.nn.hourglass.refine_patch_weights;
# the run was started from the same weights, written by a one-off script, checked tensor for tensor equal).
# Fresh 512² renders of stream seed 4. Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
exec .venv/bin/nar train --prior maskgit --fresh 512 --fresh-per-step 1.5 --fresh-initial 256 --fresh-workers 1 --fresh-seed 4 \
  --config benchmarks/results/issue13/session20/maskgit_512_s2.toml --init-from runs/mg512/model.safetensors \
  --stop-after ${STOP:-2500} --out runs/mg512s2
