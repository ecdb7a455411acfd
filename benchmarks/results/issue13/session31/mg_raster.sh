#!/bin/bash
# maskgit in the raster layout (configs/defaults/maskgit_512_raster.toml) from the shipped ar v7, on
# fresh 512² renders of a new stream (13), 4 new grids per step (batch 8: each grid read about twice),
# a 1500-step cosine at lr 2e-4. Resumes exactly when rerun; on the first start it copies the package's
# ar file, so a later ship cannot change what it started from. STOP=N stops (and checkpoints) at step N.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s31
INIT=${INIT:-runs/s31/ar_v7_init.safetensors}
[ -e "$INIT" ] || cp nar/assets/models/ar.safetensors "$INIT"
exec .venv/bin/nar train --prior maskgit --fresh 512 --fresh-per-step 4 --fresh-initial 64 --fresh-workers 1 \
  --fresh-seed 13 --config configs/defaults/maskgit_512_raster.toml \
  --init-from $INIT --stop-after ${STOP:-1500} --out runs/mg512raster
