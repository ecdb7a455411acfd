#!/bin/bash
# after ar's float-path rows: drop the maskgit-32 rows, run the shipped maskgit / sundae at seed 0 instead
until grep -q "tokens_ar_t1_seed2 sigma=1.0 amount=1.0" runs/s39/unsharp_f16.log; do sleep 10; done
pkill -f queue_f16.sh; sleep 1; pkill -f "unsharp.py runs/s38/tokens_mg32"
for t in runs/s37/tokens_maskgit_seed0 runs/s37/tokens_sundae_seed0; do
  T=2 python runs/s39/unsharp.py $t.pt 0:0,1.0:1.0
done
