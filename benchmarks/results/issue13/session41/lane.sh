#!/bin/bash
# lane.sh WAITPID TAG KEY=VALUE... : wait for WAITPID, then run one sweep row at bench seed ${SEED:-0}
pid=$1; shift; tag=$1; shift
while kill -0 $pid 2>/dev/null; do sleep 20; done
cd /work/main && source .venv/bin/activate
T=1 python benchmarks/results/issue13/session40/sweep.py ${PRIOR:-sundae} ${SEED:-0} $tag "$@" > runs/s41/log_${tag}_s${SEED:-0}.txt 2>&1
