"""Feasibility: is the nar-feature FD decided at low resolution? And does a 512² draw, refined at 1024², help?"""
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

prior = sys.argv[1] if len(sys.argv) > 1 else "maskgit"
keeps = [float(x) for x in (sys.argv[2].split(",") if len(sys.argv) > 2 else ["0.5"])]
out = Path(REPO + f"/runs/s19/probe_{prior}"); out.mkdir(parents=True, exist_ok=True)
dev = setup_device("cpu", 2)
pipe = Pipeline.load(device=dev)
clf = shipped_scene_classifier(dev)
per_class, n = 8, 48
blocks = merged_patch_sizes(pipe.prior(prior), 16)
real_a, real_b = render_real(n, 1024, REAL_SEED), render_real(n, 1024, REAL_SEED + n)
rs = sharpness_report(real_a, blocks=blocks)
res = {}
def up(x, s=1024): return F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False).clamp(-1, 1)
def down(x, s): return F.interpolate(x.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False)
def rec(x):
    with torch.no_grad():
        return torch.cat([pipe.decode_tensor(pipe.encode(b)).float().clamp(-1, 1) for b in x.split(4)])
def report(name, imgs, labels=None):
    q = quality(real_a, imgs, rs, blocks, clf, dev)
    if labels is not None: q["cf"] = evaluate_accuracy(clf, imgs, labels)["accuracy"]
    res[name] = q; print(name, json.dumps(q), flush=True)
    (out / "probe.json").write_text(json.dumps(res, indent=1))
report("recon1024", rec(real_b))
report("real_512_up", up(down(real_b, 512)))
report("recon512_up", up(rec(down(real_b, 512))))
# 512² draws
imgs, labels, toks = [], [], []
t0 = time.perf_counter()
for c in range(6):
    o = pipe.sample(prior=prior, n=per_class, size=512, cond=[c] * per_class, cfg=2.0, seed=1000 * c)
    imgs.append(pipe.decode_tensor(o.tokens).float().clamp(-1, 1)); labels += [c] * per_class
labels = torch.tensor(labels); low = torch.cat(imgs)
print("512 draws s/img", (time.perf_counter() - t0) / n)
report("draw512_up", up(low), labels)
sheets = [up(low, 256)]
# refine at 1024²: encode the upsampled draw, keep a random share of its tokens, redraw the rest
with torch.no_grad():
    known = torch.cat([pipe.encode(b) for b in up(low).split(4)])
for keep_p in keeps:
    g = torch.Generator().manual_seed(7)
    keep = torch.rand(known.shape, generator=g) < keep_p
    outs = []
    t0 = time.perf_counter()
    for c in range(6):
        sl = slice(c * per_class, (c + 1) * per_class)
        o = pipe.prior(prior).sample(n=per_class, grid=tuple(known.shape[1:]), cond=torch.full((per_class,), c),
                                     cfg_scale=2.0, known=known[sl], keep=keep[sl],
                                     generator=torch.Generator().manual_seed(1000 * c))
        outs.append(pipe.decode_tensor(o.tokens).float().clamp(-1, 1))
    print("refine s/img", (time.perf_counter() - t0) / n)
    ref = torch.cat(outs)
    report(f"refine_keep{keep_p}", ref, labels)
    sheets.append(ref)
contact_sheet(sheets, per_class).save(out / "sheet.jpg", quality=90)
