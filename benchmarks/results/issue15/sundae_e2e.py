"""SUNDAE 1024² (64x64 tokens), 20 steps, + decode, batch 1; same seeds; prints JSON lines.

    python sundae_e2e.py THREADS RUNS [auto|fp32]   (run with PYTHONPATH at the tree to time)

Each tree times its own shipped models (nar/assets/models). Trees that know about precision
(after 37443b8) sample and decode in the precision given (default auto: bf16 on CPUs with
AVX512-BF16/AMX); older trees run fp32."""
import json, sys, time
import nar  # before torch, as the nar command does (nar sets THP_MEM_ALLOC_ENABLE)
import torch
threads, runs = int(sys.argv[1]), int(sys.argv[2])
precision = sys.argv[3] if len(sys.argv) > 3 else "auto"
torch.set_num_threads(threads)
import nar
try:
    from nar.tokenizer.load import load_tokenizer
except ImportError:
    from nar.tokenizer.api import load_tokenizer
from nar.priors import load_prior
import contextlib, os
models = os.path.join(os.path.dirname(nar.__file__), 'assets', 'models')
tok = load_tokenizer(os.path.join(models, 'tokenizer.safetensors'), decode_only=True)
prior = load_prior(os.path.join(models, 'sundae.safetensors'))
try:
    from nar.core.device import precision_context
    kw, decode_precision = {"precision": precision}, lambda: precision_context(torch.device("cpu"), precision)
    bf16 = prior.samples_in_bf16(precision)
except ImportError:  # a tree from before the precision option: fp32
    kw, decode_precision, bf16 = {}, contextlib.nullcontext, False
def one(seed):
    g = torch.Generator().manual_seed(seed)
    l0 = open('/proc/loadavg').read().split()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out = prior.sample(1, (64, 64), steps=20, generator=g, **kw)
    t1, c1 = time.perf_counter(), time.process_time()
    with torch.inference_mode(), decode_precision():
        img = tok.decode_tokens(out.tokens).float()
    t2, c2 = time.perf_counter(), time.process_time()
    return dict(tree=os.path.dirname(os.path.dirname(nar.__file__)), bf16=bf16, seed=seed, sample_s=t1 - t0, decode_s=t2 - t1, total_s=t2 - t0,
                sample_cpu_s=c1 - c0, decode_cpu_s=c2 - c1, steps_run=out.steps_run, load=l0,
                img_sum=float(img.double().sum()), tokens_sum=int(out.tokens.sum()))
g = torch.Generator().manual_seed(100); _o = prior.sample(1, (16, 16), steps=2, generator=g, **kw)
with torch.inference_mode(), decode_precision(): tok.decode_tokens(_o.tokens)  # warm-up
for r in range(runs):
    print(json.dumps(one(r)), flush=True)
