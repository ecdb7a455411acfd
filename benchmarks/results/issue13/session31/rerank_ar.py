"""Does ranking ar's draws by its exact implicit classifier, log p(x|class) - log p(x|null), raise
class fidelity? K draws per slot at cfg 2 (shipped temperature / top_p), 8 slots per class."""
import json, sys, time
import torch, torch.nn.functional as F
from nar.pipelines.pipeline import Pipeline
from nar.eval.scene_classifier import load_scene_classifier
torch.set_num_threads(int(sys.argv[1]))
K, PER, SEED = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pipe = Pipeline.load()
ar = pipe.prior("ar") if hasattr(pipe, "prior") else pipe.priors["ar"]
clf = load_scene_classifier()
names = list(clf.classes)
rows = []
t0 = time.time()
for c, name in enumerate(ar.meta_info["class_names"]):
    g = torch.Generator().manual_seed(SEED * 100 + c)
    out = ar.sample(PER * K, grid=(32, 32), cond=torch.full((PER * K,), c), cfg_scale=2.0, generator=g)
    toks = out.tokens
    with torch.no_grad():
        def loglik(cls):
            logits = ar(toks, torch.full((len(toks),), cls)).float()
            return logits.log_softmax(-1).gather(-1, toks.reshape(len(toks), -1, 1)).squeeze(-1).sum(1)
        cond_ll, null_ll = loglik(c), loglik(ar.null_class)
        imgs = pipe.decode_tensor(toks)
        pred = clf.logits(imgs).argmax(-1).tolist()
    for i in range(len(toks)):
        rows.append({"class": name, "slot": i // K, "cand": i % K, "cond_ll": cond_ll[i].item(),
                     "null_ll": null_ll[i].item(), "pred": names[pred[i]]})
    print(name, f"{time.time()-t0:.0f}s", flush=True)
json.dump(rows, open(f"runs/s31/rerank_ar_k{K}_s{SEED}.json", "w"))
def cf(pick):
    sel = [r for r in rows if pick(r)]
    return sum(r["pred"] == r["class"] for r in sel) / len(sel), len(sel)
print("each draw:", cf(lambda r: True))
print("first draw:", cf(lambda r: r["cand"] == 0))
best = {}
for r in rows:
    key = (r["class"], r["slot"])
    s = r["cond_ll"] - r["null_ll"]
    if key not in best or s > best[key][0]:
        best[key] = (s, r)
sel = [r for _, r in best.values()]
print("best ratio:", sum(r["pred"] == r["class"] for r in sel) / len(sel), len(sel))
