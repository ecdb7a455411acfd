#!/bin/bash
# maskgit v4 with a 12-layer valley (DEPTH=deep), with a full-resolution layer on each side of it
# (DEPTH=fullres) or as it is (DEPTH=control), trained on the grids of streams 10-12 (runs/s32/pool_s10_12:
# `nar tokenizer join-pools runs/ar512{s,t,u}/fresh_tokens`, 12 168 grids, none seen by v4) for a 600-step
# cosine at lr 1.5e-4, batch 16 (maskgit_512_probe.toml). Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
DEPTH=${DEPTH:-deep}
case $DEPTH in deep) DEPTHS="[0,12,0]" ;; fullres) DEPTHS="[1,8,1]" ;; control) DEPTHS="[0,8,0]" ;;
  *) echo "DEPTH must be deep, fullres or control" >&2; exit 2 ;; esac
[ -e runs/s32/pool_s10_12/tokens.npy ] || .venv/bin/nar tokenizer join-pools runs/ar512s/fresh_tokens \
  runs/ar512t/fresh_tokens runs/ar512u/fresh_tokens --out runs/s32/pool_s10_12
mkdir -p runs/s32
INIT=runs/s32/maskgit_v4_init.safetensors
[ -e "$INIT" ] || cp nar/assets/models/maskgit.safetensors "$INIT"
exec .venv/bin/nar train --prior maskgit --tokens runs/s32/pool_s10_12 \
  --config benchmarks/results/issue13/session32/maskgit_512_probe.toml --set model.net.depths=$DEPTHS \
  --init-from $INIT --stop-after ${STOP:-600} --out runs/mg512$DEPTH
