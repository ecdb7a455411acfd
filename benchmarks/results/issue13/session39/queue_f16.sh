#!/bin/bash
# float-path figures (the bench's path): ar T=1 at seeds 0/1/2, maskgit 32 steps at seeds 1/2
while pgrep -f "unsharp.py runs/s38/tokens_mg32" > /dev/null; do sleep 10; done
for t in tokens_ar_t1_seed0 tokens_ar_t1_seed1 tokens_ar_t1_seed2 tokens_mg32_seed1 tokens_mg32_seed2; do
  T=2 python runs/s39/unsharp.py runs/s38/$t.pt 0:0,1.0:0.75,1.0:1.0
done
