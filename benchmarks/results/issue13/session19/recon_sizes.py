import json, sys
from pathlib import Path
import torch, torch.nn.functional as F
REPO = str(Path(__file__).resolve().parents[4])   # run from anywhere: outputs go to REPO/runs/s19
sys.path.insert(0, REPO); sys.path.insert(0, REPO + "/benchmarks")
from sweep_settings import quality, REAL_SEED
from nar.eval.machine import setup_device
from nar.eval.scene_classifier import shipped_scene_classifier
from nar.eval.sharpness import sharpness_report
from nar.pipelines.bench.quality import render_real
from nar.pipelines.pipeline import Pipeline
dev = setup_device("cpu", 1); pipe = Pipeline.load(device=dev); clf = shipped_scene_classifier(dev)
n = 48; real_a = render_real(n, 1024, REAL_SEED); rs = sharpness_report(real_a, blocks=[16])
real_b = render_real(n, 1024, REAL_SEED + n)
def up(x, s=1024): return F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False).clamp(-1, 1)
def down(x, s): return F.interpolate(x.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False)
def rec(x):
    with torch.no_grad():
        return torch.cat([pipe.decode_tensor(pipe.encode(b)).float().clamp(-1, 1) for b in x.split(8)])
for s in (256, 384):
    q = quality(real_a, up(rec(down(real_b, s))), rs, [16], clf, dev); print(s, "recon_up", json.dumps(q), flush=True)
    q = quality(real_a, up(down(real_b, s)), rs, [16], clf, dev); print(s, "real_up", json.dumps(q), flush=True)
