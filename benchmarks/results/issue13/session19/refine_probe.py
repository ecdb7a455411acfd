"""Refine a set of 512² draws (low.pt from eval512.py) at 1024² with the 1024² maskgit: keep a share of the
encoded tokens, redraw the rest."""
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
folder, threads = Path(sys.argv[1]), int(sys.argv[2])
keeps = [float(x) for x in sys.argv[3].split(",")]
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
dev = setup_device("cpu", threads)
pipe = Pipeline.load(device=dev); clf = shipped_scene_classifier(dev)
blocks = merged_patch_sizes(pipe.prior("maskgit"), 16)
per_class, n = 8, 48
real_a = render_real(n, 1024, REAL_SEED); rs = sharpness_report(real_a, blocks=blocks)
low = torch.load(folder / "low.pt"); labels = torch.arange(6).repeat_interleave(per_class)
def up(x, s=1024): return F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False).clamp(-1, 1)
with torch.no_grad():
    known = torch.cat([pipe.encode(b) for b in up(low).split(4)])
resf = folder / "refine.json"; res = json.loads(resf.read_text()) if resf.exists() else {}
for keep_p in keeps:
    keep = torch.rand(known.shape, generator=torch.Generator().manual_seed(7)) < keep_p
    outs = []
    for c in range(6):
        sl = slice(c * per_class, (c + 1) * per_class)
        o = pipe.prior("maskgit").sample(n=per_class, grid=tuple(known.shape[1:]), cond=labels[sl], cfg_scale=2.0,
                                         known=known[sl], keep=keep[sl], generator=torch.Generator().manual_seed(1000 * c), **extra)
        outs.append(pipe.decode_tensor(o.tokens).float().clamp(-1, 1))
    ref = torch.cat(outs)
    q = quality(real_a, ref, rs, blocks, clf, dev); q["cf"] = evaluate_accuracy(clf, ref, labels)["accuracy"]
    name = f"keep{keep_p}" + ("_" + "_".join(f"{k}{v}" for k, v in extra.items()) if extra else "")
    res[name] = q; print(folder.name, name, json.dumps(q), flush=True)
    resf.write_text(json.dumps(res, indent=1))
    contact_sheet([up(low, 256), ref], per_class).save(folder / f"refine_{name}.jpg", quality=90)
