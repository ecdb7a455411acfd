"""Experiment: best-of-K free samples ranked by the prior's implicit classifier (PLL ratio cond/uncond)."""
import json, sys, time
import numpy as np, torch
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import evaluate_accuracy, shipped_scene_classifier
from nar.pipelines.bench.quality import render_real
from nar.pipelines.pipeline import Pipeline
from nar.priors.maskgit_critic import LATTICE

PRIOR, PER, K, CFG, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(2)
pipe = Pipeline.load()
p = pipe.prior(PRIOR)
scorer = pipe.prior("maskgit")
classes = pipe.class_names(PRIOR)
n = PER * len(classes)
real = render_real(n, 1024, 30_000)
clf = shipped_scene_classifier(torch.device("cpu"))

def pll(ids, class_ids, grid):
    h, w = grid
    rows = torch.arange(h)[:, None].expand(h, w); cols = torch.arange(w)[None, :].expand(h, w)
    tot = torch.zeros(ids.shape[0])
    for i, (dr, dc) in enumerate(LATTICE):
        lat = ((rows % 2 == dr) & (cols % 2 == dc)).reshape(1, -1).expand_as(ids)
        logits = scorer(ids.masked_fill(lat, scorer.mask_id), class_ids, grid, select=lat,
                        shift=scorer.patch_shift(i))[:, :scorer.codebook_size].float()
        lp = logits.log_softmax(-1).gather(-1, ids[lat][:, None]).squeeze(-1)
        tot += lp.reshape(ids.shape[0], -1).sum(1)
    return tot / (h * w)

toks, labels, sc, su = [], [], [], []
t0 = time.time()
for c in range(len(classes)):
    out = pipe.sample(prior=PRIOR, n=PER * K, size=1024, cond=[c] * (PER * K), cfg=CFG, seed=SEED + 1000 * c)
    ids = out.tokens.reshape(PER * K, -1).long()
    grid = tuple(out.tokens.shape[1:])
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        a = torch.cat([pll(x, torch.full((len(x),), c), grid) for x in ids.split(8)])
        b = torch.cat([pll(x, torch.full((len(x),), scorer.null_class), grid) for x in ids.split(8)])
    toks.append(out.tokens); sc.append(a); su.append(b); labels += [c] * PER
    print(c, classes[c], f"{time.time()-t0:.0f}s", "ratio", (a - b).reshape(PER, K)[:2].tolist(), flush=True)
toks = torch.stack(toks)  # (C, PER*K, h, w)
sc, su = torch.stack(sc).reshape(len(classes), PER, K), torch.stack(su).reshape(len(classes), PER, K)
labels = torch.tensor(labels)
groups = toks.reshape(len(classes), PER, K, *toks.shape[2:])
def evaluate(pick):  # pick (C, PER) index in [0, K)
    chosen = torch.stack([groups[c, j, pick[c, j]] for c in range(len(classes)) for j in range(PER)])
    imgs = torch.cat([pipe.decode_tensor(x).float().clamp(-1, 1) for x in chosen.split(8)])
    fd = evaluate_images(real, imgs, classifier=clf, inception=False)
    return {"fd": fd["fd_nar"], "precision": fd["precision"], "recall": fd["recall"],
            "cf": evaluate_accuracy(clf, imgs, labels)["accuracy"]}, imgs
res = {}
for k in range(K):
    res[f"cand{k}"], _ = evaluate(torch.full((len(classes), PER), k))
    print(k, res[f"cand{k}"], flush=True)
res["best_ratio"], imgs = evaluate((sc - su).argmax(-1))
print("ratio", res["best_ratio"], flush=True)
torch.save(imgs[::PER].clone(), f"runs/rerank_gen_{PRIOR}_firsts.pt")
res["best_cond"], _ = evaluate(sc.argmax(-1))
print("cond", res["best_cond"], flush=True)
json.dump(res, open(f"runs/rerank_gen_{PRIOR}_{SEED}.json", "w"), indent=1)
