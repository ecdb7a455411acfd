#!/bin/bash
# The shipped set at bench seed 2 (144 samples, cfg 2, one thread each): lane A sundae then maskgit, lane B ar.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1
row() { .venv/bin/nar bench --priors "$1" --sizes 1024 --quality-size 1024 --n-quality 144 --repeats 1 --threads 1 \
          --quality-cfg 2 --seed 2 --out "runs/s35/bench144_$1_seed2" > "runs/s35/log_$1_seed2.log" 2>&1; }
(row sundae; row maskgit) &
row ar &
wait
