"""Experiment: best-of-K inpainting fills ranked by the prior's own pseudo-likelihood."""
import json, sys, time
from types import SimpleNamespace
from PIL import Image
import numpy as np, torch, torch.nn.functional as F
from nar.core.images import array_to_tensor
from nar.data.landscapes import generate_landscape
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.masks import latent_keep_mask
from nar.pipelines.seams import border_ratio

N, K, S = int(sys.argv[1]), int(sys.argv[2]), 1024
out_path = sys.argv[3]
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
HELD_OUT = 7_000_000
pipe = Pipeline.load()
prior = pipe.prior("maskgit")
box = np.zeros((S, S), bool); box[S//4:3*S//4, S//4:3*S//4] = True
keep = latent_keep_mask(box, 16)  # (h, w) True = kept
gen_cells = ~keep
ring = {d: (F.max_pool2d(gen_cells[None, None].float(), 2*d+1, 1, d)[0, 0] > 0) & keep for d in (1, 2, 3)}
scored = (ring[3] | gen_cells).reshape(1, -1)
h, w = keep.shape
req = SimpleNamespace(grid=(h, w), class_ids=torch.full((1,), prior.null_class), cfg_scale=1.0)
reals, cands, scores = [], [], []
t0 = time.time()
for i in range(N):
    image, label = generate_landscape(HELD_OUT + i, S, S)
    reals.append(image)
    row_c, row_s = [], []
    for k in range(K):
        out = pipe.inpaint(image, box, prior="maskgit", seed=i if k == 0 else 1000 * k + i)
        row_c.append(np.asarray(out.images[0]))
        ids = out.tokens.reshape(1, -1).to(prior.device)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
            sup, _ = prior._support(req, ids, scored)
        sup = sup.float().reshape(h, w)
        row_s.append({f"ring{d}": float(sup[ring[d]].mean()) for d in (1, 2, 3)} | {"fill": float(sup[gen_cells].mean())})
    cands.append(row_c); scores.append(row_s)
    print(i, f"{time.time()-t0:.0f}s", [f"{s['ring2']:.2f}/{s['fill']:.2f}" for s in row_s], flush=True)

from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
clf = load_scene_classifier()
real = torch.stack([array_to_tensor(a) for a in reals])
fd = lambda imgs: evaluate_images(real, torch.stack([array_to_tensor(a) for a in imgs]), classifier=clf, inception=False)["fd_nar"]
res = {}
for k in range(K):
    res[f"candidate{k}"] = fd([c[k] for c in cands])
for key in ("ring1", "ring2", "ring3", "fill"):
    pick = [int(np.argmax([s[key] for s in row])) for row in scores]
    res[f"best_{key}"] = fd([c[p] for c, p in zip(cands, pick)])
    res[f"worst_{key}"] = fd([c[int(np.argmin([s[key] for s in row]))] for c, row in zip(cands, scores)])
    res[f"border_ratio_best_{key}"] = float(np.mean([border_ratio(c[p], box) for c, p in zip(cands, pick)]))
pick = [int(np.argmax([s["ring2"] + s["fill"] for s in row])) for row in scores]
res["best_ring2+fill"] = fd([c[p] for c, p in zip(cands, pick)])
print(json.dumps(res, indent=1))
json.dump({"res": res, "scores": scores}, open(out_path, "w"), indent=1)
np.savez_compressed(out_path.replace(".json", ".npz"), cands=np.array([[np.asarray(Image.fromarray(c).resize((256, 256), Image.BICUBIC)) for c in row] for row in cands]))
