#!/bin/bash
# ar candidate ($RUN, default runs/ar512q): class fidelity, guided FD at bench seeds $SEEDS, held-out
# loss, unconditional FD, into $OUT. The candidate is shipped into a copy of the shipped set first.
cd "$(dirname "$0")/../../../.."
RUN=${RUN:-runs/ar512q}; OUT=${OUT:-runs/s25/ar_eval}; T=${T:-2}; SEEDS=${SEEDS:-"0 1 2"}
D=$OUT/dir; mkdir -p $OUT
.venv/bin/python benchmarks/results/issue13/session24/make_dir.py $D finetune ar $RUN || exit 1
PYTHONPATH=. .venv/bin/python benchmarks/bench_class_fidelity.py --priors ar --size 1024 --per-class 8 --cfg 2 --threads $T --ckpt-dir $D --out $OUT/cf > $OUT/cf.log 2>&1
for S in $SEEDS; do
  .venv/bin/nar bench --priors ar --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads $T --quality-cfg 2 --seed $S --ckpt-dir $D --out $OUT/bench_seed$S > $OUT/bench_seed$S.log 2>&1
done
OMP_NUM_THREADS=$T PYTHONPATH=. .venv/bin/python benchmarks/ar_class_information.py $D/ar.safetensors > $OUT/heldout.log 2>&1
.venv/bin/nar bench --priors ar --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads $T --seed 0 --ckpt-dir $D --out $OUT/bench_uncond > $OUT/bench_uncond.log 2>&1
echo done > $OUT/DONE
