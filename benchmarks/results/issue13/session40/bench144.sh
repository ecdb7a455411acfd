#!/bin/bash
# One 144-sample quality row at 1024² (cfg 2, one thread): PRIOR from set runs/s40/SET -> runs/s40/b_SET_sSEED
#   [SEED=S] bash benchmarks/results/issue13/session40/bench144.sh PRIOR SET   (SET made by session33/make_set.py runs/s40/SET --sampling ...)
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
SEED=${SEED:-0}
exec .venv/bin/nar bench --priors "$1" --sizes 1024 --quality-size 1024 --n-quality 144 --repeats 1 --threads 1 \
  --quality-cfg 2 --seed "$SEED" --ckpt-dir "runs/s40/$2" --out "runs/s40/b_$2_s$SEED"
