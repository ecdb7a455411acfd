#!/bin/bash
# One 144-sample quality row at 1024² (as session33/bench144.sh: cfg 2, one thread) with autoguidance
# from an earlier version of the prior, on the shipped set or on runs/s33/SET:
#   [SEED=S] [SET=name] bash ag144.sh PRIOR BAD MODE W   (BAD: runs/s35/bad/BAD.safetensors; MODE add|uncond)
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1 AG_BAD=runs/s35/bad/$2.safetensors AG_MODE=$3 AG_W=$4
SEED=${SEED:-0}
OUT=runs/s35/bench144_$1_$2_$3_w$4${SET:+_$SET}; [ "$SEED" = 0 ] || OUT=${OUT}_seed$SEED
exec .venv/bin/python benchmarks/results/issue13/session35/autoguide_bench.py --priors "$1" --sizes 1024 \
  --quality-size 1024 --n-quality 144 --repeats 1 --threads 1 --quality-cfg 2 --seed "$SEED" --out "$OUT" \
  ${SET:+--ckpt-dir runs/s33/$SET}
