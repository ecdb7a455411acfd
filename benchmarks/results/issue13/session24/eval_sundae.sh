#!/bin/bash
# bench rows for a sundae sampling candidate: guided seeds 0/1/2, class fidelity, unconditional, inpainting
cd "$(dirname "$0")/../../../.."
D=runs/s24/sd_dir; O=runs/s24/sd_eval; mkdir -p $O
.venv/bin/python benchmarks/results/issue13/session24/make_dir.py $D sampling sundae "$@" || exit 1
for S in 0 1 2; do
  .venv/bin/nar bench --priors sundae --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads 2 --quality-cfg 2 --seed $S --ckpt-dir $D --out $O/bench_seed$S > $O/bench_seed$S.log 2>&1
done
PYTHONPATH=. .venv/bin/python benchmarks/bench_class_fidelity.py --priors sundae --size 1024 --per-class 8 --cfg 2 --threads 2 --ckpt-dir $D --out $O/cf > $O/cf.log 2>&1
.venv/bin/nar bench --priors sundae --sizes 1024 --quality-size 1024 --n-quality 48 --repeats 1 --threads 2 --seed 0 --ckpt-dir $D --out $O/bench_uncond > $O/bench_uncond.log 2>&1
PYTHONPATH=. .venv/bin/python benchmarks/bench_inpaint.py --prior sundae --ckpt $D/sundae.safetensors --n 48 --size 1024 --fd --settings default --threads 2 --out $O/inpaint > $O/inpaint.log 2>&1
echo done > $O/DONE
