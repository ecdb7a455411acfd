"""The suite's guided quality row (nar bench --quality-size 1024 --n-quality 48 --quality-cfg 2: real set seeds
1 000 000, class-balanced samples i % 6, cfg 2) for a prior drawn at 512² and brought to 1024² by the SR net."""
import json, sys, time
from pathlib import Path
import torch
REPO = str(Path(__file__).resolve().parents[4])   # run from anywhere: outputs go to REPO/runs/s19
sys.path.insert(0, REPO); sys.path.insert(0, REPO + "/benchmarks")
from sweep_settings import quality
from nar.eval.machine import setup_device
from nar.eval.scene_classifier import evaluate_accuracy, shipped_scene_classifier
from nar.eval.sharpness import sharpness_report
from nar.pipelines.bench.quality import merged_patch_sizes, render_real
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.upscale import load_sr, upscale_tensor
prior, ckpt, threads, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
size = int(sys.argv[5]) if len(sys.argv) > 5 else 512
seed0, n, b = 1_000_000, 48, 8
dev = setup_device("cpu", threads)
pipe = Pipeline.load(priors={prior: ckpt}, device=dev); clf = shipped_scene_classifier(dev)
blocks = merged_patch_sizes(pipe.prior(prior), 16)
real_a, real_b = render_real(n, 1024, seed0), render_real(n, 1024, seed0 + n)
rs = sharpness_report(real_a, blocks=blocks); res = {}
with torch.no_grad():
    recon = torch.cat([pipe.decode_tensor(pipe.encode(x)).float().clamp(-1, 1) for x in real_b.split(4)])
res["reconstruction"] = quality(real_a, recon, rs, blocks, clf, dev); print(tag, "recon", json.dumps(res["reconstruction"]), flush=True)
fakes, labels, t0 = [], [], time.perf_counter()
for i in range(0, n, b):
    cond = torch.arange(i, i + b) % 6
    o = pipe.sample(prior=prior, n=b, size=size, cond=cond, cfg=2.0, seed=seed0 + 500_000 + i)
    fakes.append(pipe.decode_tensor(o.tokens).float().clamp(-1, 1)); labels.append(cond)
low, labels = torch.cat(fakes), torch.cat(labels)
t_gen = (time.perf_counter() - t0) / n
imgs = upscale_tensor(low, load_sr(device=dev)) if size < 1024 else low
q = quality(real_a, imgs, rs, blocks, clf, dev); q["cf"] = evaluate_accuracy(clf, imgs, labels)["accuracy"]
q["s_per_image_gen_decode"] = t_gen
res["samples"] = q; print(tag, "samples", json.dumps(q), flush=True)
out = Path(REPO + f"/runs/s19/suite_{tag}"); out.mkdir(parents=True, exist_ok=True)
(out / "suite.json").write_text(json.dumps(res, indent=1))
