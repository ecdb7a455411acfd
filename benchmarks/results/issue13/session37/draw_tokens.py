"""Draw the bench's 144 class-balanced samples (cfg 2, shipped defaults) of one prior; keep the tokens."""
import sys, torch, time
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.bench.settings import BenchSettings
from nar.pipelines.bench.quality import sample_seed
from nar.pipelines.bench.speed import _generator
torch.set_num_threads(1)
name, seed = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
s = BenchSettings(seed=seed, quality_cfg=2.0)
pipe = Pipeline.load(priors={name: f"nar/assets/models/{name}.safetensors"}, device="cpu")
prior = pipe.prior(name)
classes = int(prior.num_classes)
toks, t0 = [], time.time()
for i in range(0, 144, 8):
    cond = torch.arange(i, i + 8) % classes
    with torch.inference_mode():
        out = prior.sample(8, (32, 32), steps=None, temperature=s.temperature, generator=_generator(torch.device("cpu"), sample_seed(s, i)),
                           precision=s.precision, cond=cond, cfg_scale=2.0)
    toks.append(out.tokens.cpu()); print(i, time.time() - t0, flush=True)
torch.save(torch.cat(toks), f"runs/s37/tokens_{name}_seed{seed}.pt")
