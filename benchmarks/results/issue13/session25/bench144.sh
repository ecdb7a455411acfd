#!/bin/bash
# The FD target on 144 samples per row against 144 real images (24 per class, class-balanced cfg 2),
# bench seed 0, for the priors in $PRIORS from $DIR (default: the shipped set), into $OUT.
cd "$(dirname "$0")/../../../.."
PRIORS=${PRIORS:-maskgit,sundae,ar}; OUT=${OUT:-runs/s25/bench144}; DIR=${DIR:-nar/assets/models}; T=${T:-2}
.venv/bin/nar bench --priors $PRIORS --sizes 1024 --quality-size 1024 --n-quality 144 --repeats 1 --threads $T \
  --quality-cfg 2 --seed ${SEED:-0} --ckpt-dir $DIR --out $OUT > $OUT.log 2>&1
