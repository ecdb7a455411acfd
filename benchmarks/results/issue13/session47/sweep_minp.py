"""sweep.py with ar's draws through a min-p filter (Nguyen et al. 2024: keep codes with p >= MIN_P * p_max)
in place of the nucleus filter.  MIN_P=0.05 T=1 python runs/s47/sweep_minp.py ar SEED TAG [KEY=VALUE ...]"""
import os, runpy, sys, torch
import nar.priors.ar as ar
from nar.sampling.filters import sample_logits, NEG_INF
min_p = float(os.environ["MIN_P"])
def min_p_sample(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    x = logits.float() / (temperature or 1.0)
    probs = x.softmax(-1)
    x = x.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), NEG_INF)
    return sample_logits(x, 1.0, None, None, generator)
ar.sample_logits = min_p_sample
sys.argv = ["sweep.py"] + sys.argv[1:]
runpy.run_path("benchmarks/results/issue13/session40/sweep.py", run_name="__main__")
