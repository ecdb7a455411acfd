# How far a shipped prior is overfit to the grids it trained on: its loss on them against held-out scenes (session 23).
# .venv/bin/python benchmarks/results/issue13/session23/mg_pool_loss.py maskgit sundae [sundae=runs/sundae512f/model.safetensors]
# (reads the pools in runs/mg512*/fresh_tokens and runs/s20/heldout_512.pt of benchmarks/results/issue13/session20/heldout_loss.py)
import json, sys, glob
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, '.')
from nar.pipelines.pipeline import Pipeline
torch.set_num_threads(1)
def pool(d, first_chunk, n=96):
    files = sorted(glob.glob(d + '/chunk-*.npz'))[first_chunk:first_chunk + n // 4]
    z = [np.load(f) for f in files]
    return torch.from_numpy(np.concatenate([a['tokens'] for a in z]).astype('int64')), torch.from_numpy(np.concatenate([a['labels'] for a in z]).astype('int64'))
sets = {'held-out': tuple(torch.load('runs/s20/heldout_512.pt').values()),
        'stream4 first 96 (trained)': pool('runs/mg512s2/fresh_tokens', 0),
        'stream4 items 3600+': pool('runs/mg512s2/fresh_tokens', 900),
        'stream3 items 6000+ ': pool('runs/mg512/fresh_tokens', 1500)}
for kind in sys.argv[1:]:
    kind, _, path = kind.partition("=")
    prior = Pipeline.load(priors={kind: path} if path else None, device="cpu").prior(kind).eval()
    for name, (grids, labels) in sets.items():
        b, h, w = grids.shape
        gen = torch.Generator().manual_seed(0)
        res = {}
        with torch.inference_mode():
            for r in (0.3, 0.9):
                m = torch.rand(b, h * w, generator=gen).argsort(-1).argsort(-1) < int(r * h * w)
                total = 0.0
                for s in range(0, b, 16):
                    x, mm = grids[s:s + 16].reshape(-1, h * w), m[s:s + 16]
                    if kind == 'maskgit':
                        ids = x.masked_fill(mm, prior.mask_id)
                        logits = prior(ids, labels[s:s+16], (h, w), select=mm)[:, : prior.codebook_size]
                    else:
                        rnd = torch.randint(prior.codebook_size, x.shape, generator=gen)
                        ids = torch.where(mm, rnd, x)
                        logits = prior(ids.reshape(-1, h, w), labels[s:s+16]).reshape(len(x), h * w, -1)[mm]
                    total += F.cross_entropy(logits.float(), x[mm], reduction="sum").item()
                res[r] = round(total / m.sum().item(), 4)
        print(kind, name, res, flush=True)
