#!/usr/bin/env bash
# Reproduce the default models shipped in nar/assets/models from scratch, with nar's own commands.
# CPU recipe (2 cores, ~1.5 h): f16 tokenizer on 256² procedural landscapes, token cache of
# 1136 images (16x16 tokens each), three class-conditional priors trained side by side.
# Usage: bash scripts/train_defaults.sh [RUN_DIR]    (every step resumes if interrupted)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/defaults}
NAR=${NAR:-.venv/bin/nar}
mkdir -p "$RUN"

# 1. tokenizer (f16, 512 codes) -> RUN/tokenizer/model.safetensors
$NAR tokenizer train --config configs/tokenizer/f16_small.toml --out "$RUN/tokenizer"
# 2. token cache: 1136 procedural 256² images -> (1136, 16, 16) tokens with scene labels
[ -f "$RUN/tokens/header.json" ] || \
  $NAR tokenizer encode --ckpt "$RUN/tokenizer/model.safetensors" --n 1136 --size 256 --seed 0 --out "$RUN/tokens"
# 3. priors, one process each (one thread each: small models on a 2-core CPU)
for prior in ar maskgit sundae; do
  OMP_NUM_THREADS=1 $NAR train --prior $prior --tokens "$RUN/tokens" --config configs/defaults/$prior.toml \
    --out "$RUN/$prior" > "$RUN/$prior.log" 2>&1 &
done
wait
# 4. ship: fp16 copies with their metadata into the package
.venv/bin/python scripts/ship_models.py "$RUN"
