"""Ceiling of a 512² cascade: real scenes through the 512² tokenizer, brought to 1024² by bicubic, by the SR net,
or by maskgit-1024 refinement of a share of their 1024² tokens."""
import json, sys
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
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
out = Path(REPO + "/runs/s19/oracle"); out.mkdir(parents=True, exist_ok=True)
dev = setup_device("cpu", threads)
pipe = Pipeline.load(device=dev); clf = shipped_scene_classifier(dev)
blocks = merged_patch_sizes(pipe.prior("maskgit"), 16)
n, per_class = 48, 8
real_a, real_b = render_real(n, 1024, REAL_SEED), render_real(n, 1024, REAL_SEED + n)
from nar.data.landscapes.dataset import generate_landscape
labels = torch.tensor([generate_landscape(REAL_SEED + n + i, 16, 16)[1]["scene_id"] for i in range(n)])
rs = sharpness_report(real_a, blocks=blocks); res = {}
def up(x, s=1024): return F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False).clamp(-1, 1)
def down(x, s): return F.interpolate(x.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False)
def rec(x):
    with torch.no_grad():
        return torch.cat([pipe.decode_tensor(pipe.encode(b)).float().clamp(-1, 1) for b in x.split(4)])
def report(name, imgs):
    q = quality(real_a, imgs, rs, blocks, clf, dev); q["cf"] = evaluate_accuracy(clf, imgs, labels)["accuracy"]
    res[name] = q; print(name, json.dumps(q), flush=True); (out / "oracle.json").write_text(json.dumps(res, indent=1))
print("real_b class check", evaluate_accuracy(clf, real_b, labels))
r512 = rec(down(real_b, 512))
sr = load_sr(device=dev)
report("recon512_sr", upscale_tensor(r512, sr))
with torch.no_grad():
    known = torch.cat([pipe.encode(b) for b in up(r512).split(4)])
sheets = [up(r512, 256)]
for keep_p in (0.25, 0.5):
    keep = torch.rand(known.shape, generator=torch.Generator().manual_seed(7)) < keep_p
    outs = []
    for c in range(6):
        sl = slice(c * per_class, (c + 1) * per_class)
        o = pipe.prior("maskgit").sample(n=per_class, grid=tuple(known.shape[1:]), cond=labels[sl],
                                         cfg_scale=2.0, known=known[sl], keep=keep[sl],
                                         generator=torch.Generator().manual_seed(1000 * c))
        outs.append(pipe.decode_tensor(o.tokens).float().clamp(-1, 1))
    ref = torch.cat(outs); sheets.append(ref); report(f"refine_keep{keep_p}", ref)
contact_sheet(sheets, per_class).save(out / "sheet.jpg", quality=90)
