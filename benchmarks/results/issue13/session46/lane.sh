#!/bin/bash
# [LOG=DIR] lane.sh WAITPID PRIOR SEED TAG KEY=VALUE... : wait for WAITPID, then run one sweep row (log in DIR, runs/s46 by default)
pid=$1; shift; prior=$1; shift; seed=$1; shift; tag=$1; shift
while kill -0 $pid 2>/dev/null; do sleep 10; done
cd /work/main && source .venv/bin/activate
T=${T:-1} python benchmarks/results/issue13/session40/sweep.py $prior $seed $tag "$@" > ${LOG:-runs/s46}/log_${tag}_s${seed}.txt 2>&1
