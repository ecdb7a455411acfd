"""Held-out masked-token loss of maskgit checkpoints (any layout), the quantity maskgit trains on,
without label smoothing: 48 fresh 512² renders of a stream no run has read (LandscapeDataset seed 990),
at three mask ratios (the same cells masked for every checkpoint), their own classes.

    OMP_NUM_THREADS=1 python benchmarks/results/issue13/session31/masked_loss.py CKPT [CKPT ...]
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nar.priors import load_prior
from nar.tokenizer.load import load_tokenizer
from nar.train.fresh_tokens import encode_landscapes

RATIOS = (0.15, 0.5, 0.85)
CACHE = Path("runs/s31/heldout_990.npz")


def held_out() -> tuple[torch.Tensor, torch.Tensor]:
    if not CACHE.is_file():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tokens, labels = encode_landscapes(load_tokenizer("nar/assets/models/tokenizer.safetensors"), 512, 990, 0, 48)
        np.savez(CACHE, tokens=tokens, labels=labels)
    with np.load(CACHE) as d:
        return torch.from_numpy(d["tokens"].astype(np.int64)), torch.from_numpy(d["labels"])


@torch.no_grad()
def masked_loss(prior, tokens: torch.Tensor, labels: torch.Tensor) -> dict[float, float]:
    n, h, w = tokens.shape
    ids = tokens.reshape(n, h * w)
    out = {}
    for ratio in RATIOS:
        scores = torch.rand(n, h * w, generator=torch.Generator().manual_seed(1))
        masked = scores.argsort(1).argsort(1) < math.ceil(ratio * h * w)
        losses = []
        for shift in ((0, 0), (1, 1)) if prior.cfg.shift_patches else ((0, 0),):
            logits = prior(ids.masked_fill(masked, prior.mask_id), labels, (h, w), select=masked, shift=shift)
            losses.append(F.cross_entropy(logits[:, : prior.codebook_size].float(), ids[masked]).item())
        out[ratio] = round(sum(losses) / len(losses), 4)
    return out


if __name__ == "__main__":
    tokens, labels = held_out()
    for path in sys.argv[1:]:
        prior = load_prior(path).float()
        step = (prior.meta_info or {}).get("step")
        print(json.dumps({"checkpoint": path, "step": step, "loss": masked_loss(prior, tokens, labels)}), flush=True)
