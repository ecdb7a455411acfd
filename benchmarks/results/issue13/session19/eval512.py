"""A 512²-grid prior's class-balanced cfg draws, brought to 1024² (bicubic / SR), against the sweep's real set."""
import json, sys, time
from pathlib import Path
import torch, torch.nn.functional as F
REPO = str(Path(__file__).resolve().parents[4])   # run from anywhere: outputs go to REPO/runs/s19
sys.path.insert(0, REPO); sys.path.insert(0, REPO + "/benchmarks")
from sweep_settings import quality, contact_sheet, REAL_SEED
from nar.eval.machine import setup_device
from nar.eval.scene_classifier import evaluate_accuracy, shipped_scene_classifier
from nar.eval.sharpness import sharpness_report
from nar.pipelines.bench.quality import merged_patch_sizes, render_real
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.upscale import load_sr, upscale_tensor
prior, ckpt, threads, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
out = Path(REPO + f"/runs/s19/eval_{tag}"); out.mkdir(parents=True, exist_ok=True)
dev = setup_device("cpu", threads)
pipe = Pipeline.load(priors={prior: ckpt}, device=dev); clf = shipped_scene_classifier(dev)
blocks = merged_patch_sizes(pipe.prior(prior), 16)
per_class, n = 8, 48
real_a = render_real(n, 1024, REAL_SEED); rs = sharpness_report(real_a, blocks=blocks); res = {}
def up(x, s=1024): return F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False).clamp(-1, 1)
imgs, labels = [], []
t0 = time.perf_counter()
for c in range(6):
    o = pipe.sample(prior=prior, n=per_class, size=512, cond=[c] * per_class, cfg=cfg, seed=seed + 1000 * c, **extra)
    imgs.append(pipe.decode_tensor(o.tokens).float().clamp(-1, 1)); labels += [c] * per_class
low, labels = torch.cat(imgs), torch.tensor(labels)
res["s_per_image_512"] = (time.perf_counter() - t0) / n
for name, imgs in (("bicubic", up(low)), ("sr", upscale_tensor(low, load_sr(device=dev)))):
    q = quality(real_a, imgs, rs, blocks, clf, dev); q["cf"] = evaluate_accuracy(clf, imgs, labels)["accuracy"]
    res[name] = q; print(tag, name, json.dumps(q), flush=True)
(out / "eval.json").write_text(json.dumps(res, indent=1))
torch.save(low, out / "low.pt")
contact_sheet([up(low, 256)], per_class).save(out / "sheet.jpg", quality=90)
