#!/usr/bin/env bash
# Issue 13 (quality) measurements of the shipped defaults on this CPU: every row >= 48 images at
# 1024², seeds not used in training (the shipped priors draw 512² and the SR net brings them to
# 1024², as `nar sample --size 1024` does). Writes benchmarks/results/issue13/ (about 40 min on 2 threads).
#   bash benchmarks/issue13_cpu.sh [THREADS]   PRIORS=ar,maskgit,sundae by default (the three priors on the
#                                              one 32x32 grid); INPAINT_PRIORS=maskgit,sundae (the parallel
#                                              samplers); SKIP_TOKENIZER=1 skips the tokenizer rows; OUT=DIR
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
OUT=${OUT:-benchmarks/results/issue13}
PY=${PY:-.venv/bin/python}
NAR=${NAR:-.venv/bin/nar}
PRIORS=${PRIORS:-ar,maskgit,sundae}
INPAINT_PRIORS=${INPAINT_PRIORS:-maskgit,sundae}
mkdir -p "$OUT"
# tokenizer targets: PSNR, sharpness, block ratio at its factor, usage (48 held-out 1024² renders)
if [ -z "${SKIP_TOKENIZER:-}" ]; then
  OMP_NUM_THREADS=$T $NAR tokenizer eval --n 48 --size 1024 --json "$OUT/tokenizer_1024.json" | tee "$OUT/tokenizer_1024.txt"
fi
# prior targets: FD vs reconstruction FD, sharpness, block ratios at 16 px and at the merge size; speed
$NAR bench --priors "$PRIORS" --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 3 --threads "$T" \
  --out "$OUT/bench" | tee "$OUT/bench.txt"
# the same FD with class-balanced samples at the README's guidance (--class NAME --cfg 2)
$NAR bench --priors "$PRIORS" --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads "$T" \
  --quality-cfg 2 --out "$OUT/bench_cfg2" | tee "$OUT/bench_cfg2.txt"
# class fidelity with the README's settings (--class NAME --cfg 2)
PYTHONPATH=. $PY benchmarks/bench_class_fidelity.py --priors "$PRIORS" --size 1024 --per-class 8 --cfg 2 \
  --threads "$T" --out "$OUT/class_fidelity" | tee "$OUT/class_fidelity.txt"
# inpainting: a quarter-image box on 48 held-out scenes, FD vs reconstruction FD, border ratio
for PRIOR in ${INPAINT_PRIORS//,/ }; do
  PYTHONPATH=. $PY benchmarks/bench_inpaint.py --prior "$PRIOR" --n 48 --size 1024 --fd --settings default \
    --threads "$T" --out "$OUT/inpaint_$PRIOR" | tail -n 4 | tee "$OUT/inpaint_$PRIOR.txt"
done
