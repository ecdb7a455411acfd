#!/bin/bash
# ar v3 fine-tuned with the class added to every input (session 22): a 600-step cosine at lr 2e-4 on
# fresh 512² renders of stream seed 5 (scenes no shipped prior trained on). Resumes exactly when rerun.
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=${THREADS:-1}
exec .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 0.5 --fresh-workers 1 --fresh-seed 5 \
  --config benchmarks/results/issue13/session22/ar_512_class.toml \
  --init-from nar/assets/models/ar.safetensors --stop-after ${STOP:-600} --out runs/ar512c
