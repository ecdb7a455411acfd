#!/bin/bash
# One 144-sample quality row at 1024² (class-balanced real sets, cfg 2, one thread), as the shipped set's
# rows of sessions 26-32: PRIOR from the set in runs/s33/SET (make_set.py), into runs/s33/bench144_SET
# (bench seed 0) or runs/s33/bench144_SET_seedS (SEED=S).
#   [SEED=S] bash bench144.sh PRIOR SET
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
SEED=${SEED:-0}
OUT=runs/s33/bench144_$2; [ "$SEED" = 0 ] || OUT=${OUT}_seed$SEED
exec .venv/bin/nar bench --priors "$1" --sizes 1024 --quality-size 1024 --n-quality 144 --repeats 1 --threads 1 \
  --quality-cfg 2 --seed "$SEED" --ckpt-dir "runs/s33/$2" --out "$OUT"
