"""Pairs of token grids of one scene: LandscapeDataset(stream 16) item i at 512² (32x32) and 1024² (64x64)."""
import sys, os, numpy as np, torch
torch.set_num_threads(1)
from nar.train.fresh_tokens import encode_landscapes
from nar.tokenizer.load import load_tokenizer
out = "runs/s37/tsr_pairs"; seed = int(sys.argv[1]) if len(sys.argv) > 1 else 16
start = int(sys.argv[2]) if len(sys.argv) > 2 else 0
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors")
chunk = 16
i = start
while True:
    path = f"{out}/s{seed}-{i:06d}.npz"
    if not os.path.exists(path):
        lo, lab = encode_landscapes(tok, 512, seed, i, chunk)
        hi, _ = encode_landscapes(tok, 1024, seed, i, chunk)
        np.savez(path + ".tmp.npz", low=lo, high=hi, labels=lab)
        os.replace(path + ".tmp.npz", path)
        print(path, flush=True)
    i += chunk
