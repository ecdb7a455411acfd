"""Seconds per class-guided 1024² sundae image (batch 1, 2 threads: draw at 512², decode, 2x SR with the
shipped sharpening), per sampling setting; `nar bench`'s speed rows are unconditional, so they do not show
what guidance costs.
  python benchmarks/results/issue13/session49/guided_speed.py [REPEATS]"""
import json, sys, time, torch
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.upscale import load_sr, upscale_tensor, SHARPEN
torch.set_num_threads(2)
repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
pipe = Pipeline.load(priors={"sundae": "nar/assets/models/sundae.safetensors"}, device="cpu")
prior, tok, sr = pipe.prior("sundae"), pipe.tokenizer, load_sr(None, "cpu")
SETTINGS = {"unconditional": dict(cfg_scale=1.0, cond=None),
            "cfg 2.5, every step guided (shipped before)": dict(cfg_scale=2.5, cfg_from=0.0),
            "cfg 2.5, guided from 0.2 of the chain (shipped)": dict(cfg_scale=2.5, cfg_from=0.2)}


def one(seed, **kw):
    kw.setdefault("cond", torch.tensor([1]))
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = prior.sample(1, (32, 32), generator=torch.Generator().manual_seed(seed), **kw)
        t1 = time.perf_counter()
        upscale_tensor(tok.decode_tokens(out.tokens).float().clamp(-1, 1), sr, passes=1, sharpen=SHARPEN)
    return t1 - t0, time.perf_counter() - t1


rows = {}
for name, kw in SETTINGS.items():
    one(0, **kw)   # warm-up
    times = [one(s, **kw) for s in range(1, repeats + 1)]
    draw, rest = (sorted(t[i] for t in times)[len(times) // 2] for i in (0, 1))
    rows[name] = {"draw_s": round(draw, 2), "decode_sr_s": round(rest, 2), "total_s": round(draw + rest, 2)}
    print(name, rows[name], flush=True)
print(json.dumps(rows))
