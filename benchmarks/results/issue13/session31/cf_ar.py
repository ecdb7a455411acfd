"""Class fidelity of ar draws (nar's scene classifier on the decoded 512² images) for a guidance
setting: 24 draws per class in one batch per class, generator seed*100 + class."""
import json, sys, time
import torch
from nar.pipelines.pipeline import Pipeline
from nar.eval.scene_classifier import load_scene_classifier
torch.set_num_threads(int(sys.argv[1]))
PER, SEED, CFG, SCHED = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
pipe = Pipeline.load(); ar = pipe.prior("ar"); clf = load_scene_classifier()
names = list(clf.classes); hits = {}
for c, name in enumerate(ar.meta_info["class_names"]):
    g = torch.Generator().manual_seed(SEED * 100 + c)
    toks = ar.sample(PER, grid=(32, 32), cond=torch.full((PER,), c), cfg_scale=CFG, generator=g,
                     cfg_schedule=SCHED).tokens
    with torch.no_grad():
        pred = clf.logits(pipe.decode_tensor(toks)).argmax(-1).tolist()
    hits[name] = sum(names[p] == name for p in pred) / PER
    print(name, hits[name], flush=True)
print("class fidelity", sum(hits.values()) / len(hits), CFG, SCHED)
