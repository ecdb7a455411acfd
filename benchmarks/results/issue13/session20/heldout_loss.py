"""Masked-token cross-entropy of maskgit checkpoints on held-out 512² scenes (stream seeds no run
trained on), with the same fixed masks for every checkpoint: a like-for-like loss where the
training log's per-batch loss is noisy and its masks differ.

    python heldout_loss.py CKPT [CKPT ...]     (grids cached in runs/s20/heldout_512.pt)
"""
import json, sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO))
from nar.core.images import array_to_tensor
from nar.data.landscapes.dataset import generate_landscape
from nar.pipelines.pipeline import Pipeline

torch.set_num_threads(1)
N, SEED0, RATIOS = 96, 5_000_000, (0.3, 0.6, 0.9)
cache = REPO / "runs/s20/heldout_512.pt"
if not cache.exists():
    pipe = Pipeline.load(device="cpu")
    grids, labels = [], []
    for i in range(N):
        img, info = generate_landscape(SEED0 + i, 512, 512)
        with torch.inference_mode():
            grids.append(pipe.full_tokenizer().encode(array_to_tensor(img)[None]).cpu())
        labels.append(int(info["scene_id"]))
    torch.save({"grids": torch.cat(grids), "labels": torch.tensor(labels)}, cache)
data = torch.load(cache)
grids, labels = data["grids"], data["labels"]
b, h, w = grids.shape
gen = torch.Generator().manual_seed(0)
masks = {r: torch.rand(b, h * w, generator=gen).argsort(-1).argsort(-1) < int(r * h * w) for r in RATIOS}

for ckpt in sys.argv[1:]:
    prior = Pipeline.load(priors={"maskgit": ckpt}, device="cpu").prior("maskgit").eval()
    cond = labels if (labels >= 0).all() else None
    res = {}
    with torch.inference_mode():
        for r, m in masks.items():
            total = 0.0
            for s in range(0, b, 16):
                x, mm = grids[s:s + 16].reshape(-1, h * w), m[s:s + 16]
                ids = x.masked_fill(mm, prior.mask_id)
                c = cond[s:s + 16] if cond is not None else torch.full((len(x),), prior.num_classes, dtype=torch.long)
                logits = prior(ids, c, (h, w), select=mm)[:, : prior.codebook_size]
                total += F.cross_entropy(logits.float(), x[mm], reduction="sum").item()
            res[r] = total / m.sum().item()
    print(ckpt, json.dumps({str(k): round(v, 4) for k, v in res.items()}), flush=True)
