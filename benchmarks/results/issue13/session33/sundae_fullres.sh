#!/bin/bash
# sundae with transformer layers on the 32x32 token grid before and after its valley; the new layers start
# as the identity, so step 0 is the parent. configs/defaults/sundae_512_fullres.toml: SUNDAE's objective for
# a 300-step cosine at lr 2e-4 (30 warm-up), batch 16, 0.5 new grid of fresh 512² renders per step.
#   LAYERS=1 (default): sundae v6 -> depths [1, 8, 1] on stream 14, reading the grids mg_fullres.sh's run
#            made (shipped as sundae v7); v6 is taken from git, as the package now holds v7.
#   LAYERS=2: sundae v7 -> depths [2, 8, 2] on stream 15, its own render worker (the next probe).
# Resumes exactly when rerun with the same LAYERS.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p runs/s33
case ${LAYERS:-1} in
  1) PARENT=e9fa72b INIT=runs/s33/sundae_v6_init.safetensors DEPTHS="[1,8,1]" OUT=runs/sundae512fullres_s33
     DATA=(--fresh-seed 14 --fresh-dir runs/mg512fullres_s33/fresh_tokens) ;;
  2) PARENT=98eaf34 INIT=runs/s33/sundae_v7_init.safetensors DEPTHS="[2,8,2]" OUT=runs/sundae512fullres2
     DATA=(--fresh-seed 15) ;;
  *) echo "LAYERS must be 1 or 2" >&2; exit 2 ;;
esac
[ -e "$INIT" ] || git show "$PARENT:nar/assets/models/sundae.safetensors" > "$INIT"
exec .venv/bin/nar train --prior sundae --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 "${DATA[@]}" \
  --config configs/defaults/sundae_512_fullres.toml --set model.net.depths=$DEPTHS \
  --init-from $INIT --stop-after ${STOP:-300} --out $OUT
