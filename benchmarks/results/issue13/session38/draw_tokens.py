"""Draw the bench's 144 class-balanced samples (cfg 2) of one shipped prior, as `nar bench` does
(batches of 8, seeds sample_seed(seed, i)); keep the tokens.
  python runs/s38/draw_tokens.py PRIOR SEED TAG [temperature=T] [KEY=VALUE sampling options ...]"""
import sys, json, torch, time
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.bench.settings import BenchSettings
from nar.pipelines.bench.quality import sample_seed
from nar.pipelines.bench.speed import _generator
torch.set_num_threads(1)
name, seed, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
opts = dict(a.split("=", 1) for a in sys.argv[4:])
opts = {k: json.loads(v) for k, v in opts.items()}
temperature = opts.pop("temperature", None)
steps = opts.pop("steps", None)
s = BenchSettings(seed=seed, quality_cfg=2.0)
pipe = Pipeline.load(priors={name: f"nar/assets/models/{name}.safetensors"}, device="cpu")
prior = pipe.prior(name)
classes = int(prior.num_classes)
toks, t0 = [], time.time()
for i in range(0, 144, 8):
    cond = torch.arange(i, i + 8) % classes
    with torch.inference_mode():
        out = prior.sample(8, (32, 32), steps=steps, temperature=temperature, generator=_generator(torch.device("cpu"), sample_seed(s, i)),
                           precision=s.precision, cond=cond, cfg_scale=2.0, **opts)
    toks.append(out.tokens.cpu()); print(i, round(time.time() - t0), flush=True)
torch.save(torch.cat(toks), f"runs/s38/tokens_{tag}.pt")
