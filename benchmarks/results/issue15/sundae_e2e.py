"""SUNDAE 1024² (64x64 tokens), 20 steps, + decode, batch 1; same seeds; prints JSON lines."""
import json, sys, time
import nar  # before torch, as the nar command does (nar sets THP_MEM_ALLOC_ENABLE)
import torch
threads, runs = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
import nar
try:
    from nar.tokenizer.load import load_tokenizer
except ImportError:
    from nar.tokenizer.api import load_tokenizer
from nar.priors import load_prior
tok = load_tokenizer('/work/main/nar/assets/models/tokenizer.safetensors', decode_only=True)
prior = load_prior('/work/main/nar/assets/models/sundae.safetensors')
def one(seed):
    g = torch.Generator().manual_seed(seed)
    l0 = open('/proc/loadavg').read().split()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out = prior.sample(1, (64, 64), steps=20, generator=g)
    t1, c1 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        img = tok.decode_tokens(out.tokens)
    t2, c2 = time.perf_counter(), time.process_time()
    return dict(tree=nar.__file__.split('/')[2], seed=seed, sample_s=t1 - t0, decode_s=t2 - t1, total_s=t2 - t0,
                sample_cpu_s=c1 - c0, decode_cpu_s=c2 - c1, steps_run=out.steps_run, load=l0,
                img_sum=float(img.double().sum()), tokens_sum=int(out.tokens.sum()))
g = torch.Generator().manual_seed(100); _o = prior.sample(1, (16, 16), steps=2, generator=g)
with torch.inference_mode(): tok.decode_tokens(_o.tokens)  # warm-up
for r in range(runs):
    print(json.dumps(one(r)), flush=True)
