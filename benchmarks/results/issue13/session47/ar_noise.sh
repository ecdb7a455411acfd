#!/bin/bash
# ar v7 trained on with noisy context (model.input_noise) on fresh 512² renders of stream 17; resumes exactly when rerun.
cd /work/main
OMP_NUM_THREADS=1 .venv/bin/nar train --prior ar --fresh 512 --fresh-per-step 8 --fresh-initial 64 --fresh-workers 1 \
  --fresh-seed 17 --fresh-dir runs/fresh_512_s17 --tokenizer nar/assets/models/tokenizer.safetensors \
  --config configs/defaults/ar_512_fresh.toml --set train.steps=300 --set train.lr=1.5e-4 --set model.input_noise=0.2 \
  --init-from nar/assets/models/ar.safetensors --out runs/ar512noise "$@"
