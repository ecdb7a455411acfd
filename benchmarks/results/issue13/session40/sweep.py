"""One 144-sample quality row as `nar bench` makes it (same sample seeds, batch 8, cfg 2 unless cfg=C, fp32, decode,
2x SR with the shipped sharpening), against a cached copy of the bench's first real set.
  T=1 python benchmarks/results/issue13/session40/sweep.py PRIOR SEED TAG [steps=S] [temperature=T] [cfg=C] [ckpt=PATH] [KEY=VALUE ...]
Appends a JSON line to runs/s40/sweep.jsonl; tokens kept in runs/s40/tok_TAG_sSEED.pt."""
import json, os, sys, time, torch
from nar.core.config import parse_overrides
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.bench.settings import BenchSettings, _generator
from nar.pipelines.bench.quality import sample_seed, render_real
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.upscale import load_sr, upscale_tensor, SHARPEN
torch.set_num_threads(int(os.environ.get("T", 1)))
name, seed, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
opts = parse_overrides(sys.argv[4:])   # KEY=VALUE, typed as config overrides are
temperature, steps = opts.pop("temperature", None), opts.pop("steps", None)
sharpen = float(opts.pop("sharpen", SHARPEN))
cfg = float(opts.pop("cfg", 2.0))
ckpt = opts.pop("ckpt", f"nar/assets/models/{name}.safetensors")   # another weights file of the same prior
s, n = BenchSettings(seed=seed, quality_cfg=cfg), 144
os.makedirs("runs/s40", exist_ok=True)
real_path = "runs/s40/real_a.pt"
if not os.path.exists(real_path):
    torch.save(render_real(n, 1024, s.quality_seed, True).half(), real_path + ".tmp"); os.replace(real_path + ".tmp", real_path)
pipe = Pipeline.load(priors={name: ckpt}, device="cpu")
prior, tok = pipe.prior(name), pipe.tokenizer
classes = int(prior.num_classes)
toks, t0 = [], time.time()
tok_path = f"runs/s40/tok_{tag}_s{seed}.pt"
if os.path.exists(tok_path):
    tokens = torch.load(tok_path)
else:
    for i in range(0, n, 8):
        cond = torch.arange(i, i + 8) % classes
        with torch.inference_mode():
            out = prior.sample(8, (32, 32), steps=steps, temperature=temperature, generator=_generator(torch.device("cpu"), sample_seed(s, i)),
                               precision=s.precision, cond=cond, cfg_scale=cfg, **opts)
        toks.append(out.tokens.cpu())
    tokens = torch.cat(toks); torch.save(tokens, tok_path)
t_draw = time.time() - t0
sr = load_sr(None, "cpu")
with torch.inference_mode():
    imgs = torch.cat([upscale_tensor(tok.decode_tokens(b).float().clamp(-1, 1), sr, passes=1, sharpen=sharpen) for b in tokens.split(8)])
real_a = torch.load(real_path).float()
clf = load_scene_classifier(None, "cpu")
r = evaluate_images(real_a, imgs, classifier=clf, fake_labels=torch.arange(n) % classes, inception=False, device="cpu")
sh = relative_to(sharpness_report(imgs, blocks=(16, 32, 64)), sharpness_report(real_a, blocks=(16, 32, 64)))
row = {"tag": tag, "prior": name, "seed": seed, "opts": dict(opts, steps=steps, temperature=temperature, sharpen=sharpen, cfg=cfg),
       "fd": round(r["fd_nar"], 3), "precision": round(r["precision"], 3), "recall": round(r["recall"], 3),
       "class_fidelity": round(r["class_fidelity"], 3),
       "per_class": {k: round(v, 2) for k, v in r.get("class_fidelity_detail", {}).get("per_class", {}).items()},
       "draw_s": round(t_draw), "total_s": round(time.time() - t0)} | {
       k: round(v, 3) for k, v in sh.items() if k.endswith("vs_real") or k.startswith("block")}
print(json.dumps(row), flush=True)
with open("runs/s40/sweep.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
torch.save(((imgs[::24][:6] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8), f"runs/s40/look_{tag}_s{seed}.pt")
