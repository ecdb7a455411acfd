#!/bin/bash
# ar candidate (runs/ar512q or $RUN): held-out loss, guided FD seeds 0/1/2, class fidelity, unconditional FD
cd "$(dirname "$0")/../../../.."
RUN=${RUN:-runs/ar512q}; D=runs/s24/ar_dir; O=runs/s24/ar_eval; mkdir -p $O
cp $RUN/model.safetensors $O/candidate.safetensors
OMP_NUM_THREADS=2 PYTHONPATH=. .venv/bin/python benchmarks/ar_class_information.py $O/candidate.safetensors > $O/heldout.log 2>&1
.venv/bin/python benchmarks/results/issue13/session24/make_dir.py $D finetune ar $RUN || exit 1
for S in 0 1 2; do
  .venv/bin/nar bench --priors ar --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads 2 --quality-cfg 2 --seed $S --ckpt-dir $D --out $O/bench_seed$S > $O/bench_seed$S.log 2>&1
  [ $S = 0 ] && PYTHONPATH=. .venv/bin/python benchmarks/bench_class_fidelity.py --priors ar --size 1024 --per-class 8 --cfg 2 --threads 2 --ckpt-dir $D --out $O/cf > $O/cf.log 2>&1
done
.venv/bin/nar bench --priors ar --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads 2 --seed 0 --ckpt-dir $D --out $O/bench_uncond > $O/bench_uncond.log 2>&1
echo done > $O/DONE
