"""Where does ar's guidance move away from real data? For real 512² grids ar never saw (stream 16), per class
and row: the mean log-prob of the real token under the conditional p(x|c), under the cfg-guided distribution,
and the share of real tokens that the guided top_p nucleus cuts.
  T=2 python benchmarks/results/issue13/session48/guidance_diag.py [CKPT] [PER_CLASS] [CFG] [TOP_P]"""
import os, sys, glob, numpy as np, torch
from nar.pipelines.pipeline import Pipeline
from nar.sampling.filters import top_p_filter

torch.set_num_threads(int(os.environ.get("T", 2)))
ckpt = sys.argv[1] if len(sys.argv) > 1 else "nar/assets/models/ar.safetensors"
per_class = int(sys.argv[2]) if len(sys.argv) > 2 else 16
cfg = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
top_p = float(sys.argv[4]) if len(sys.argv) > 4 else 0.98
toks, labs = [], []
for f in sorted(glob.glob("runs/sundae512v8/fresh_tokens/chunk-*.npz")):
    z = np.load(f); toks.append(torch.from_numpy(z["tokens"].astype(np.int64))); labs.append(torch.from_numpy(z["labels"]))
toks, labs = torch.cat(toks), torch.cat(labs)
prior = Pipeline.load(priors={"ar": ckpt}, device="cpu").prior("ar").eval()
C, names = prior.num_classes, ["mountains", "lake", "coast", "desert", "forest", "city"]
rows = {}
with torch.inference_mode():
    for c in range(C):
        idx = (labs == c).nonzero().squeeze(1)[:per_class]
        stats = torch.zeros(4, 32)  # cond lp, guided lp, guided+filter cut share, null lp
        for i in idx:
            x = toks[i:i + 1].expand(2, -1, -1)
            logits = prior(x, torch.tensor([c, C])).float()          # (2, 1024, V)
            lc, lu = logits[0].log_softmax(-1), logits[1].log_softmax(-1)
            g = (lu + cfg * (lc - lu)).log_softmax(-1)
            tgt = x[0].reshape(-1, 1)
            kept = top_p_filter(g.clone(), top_p).gather(-1, tgt).squeeze(-1) > -1e30
            for k, v in enumerate([lc.gather(-1, tgt).squeeze(-1), g.gather(-1, tgt).squeeze(-1),
                                   (~kept).float(), lu.gather(-1, tgt).squeeze(-1)]):
                stats[k] += v.reshape(32, 32).mean(-1)
        rows[names[c]] = stats / len(idx)
        s = rows[names[c]]
        print(f"{names[c]:9s} cond {s[0].mean():.3f} guided {s[1].mean():.3f} null {s[3].mean():.3f} "
              f"cut {s[2].mean():.3f}", flush=True)
        for band in [(0, 6), (6, 12), (12, 16), (16, 20), (20, 24), (24, 32)]:
            a, b = band
            print(f"   rows {a:2d}-{b - 1:2d}: cond {s[0, a:b].mean():6.3f} guided-cond {(s[1, a:b] - s[0, a:b]).mean():+.3f}"
                  f" null-cond {(s[3, a:b] - s[0, a:b]).mean():+.3f} cut {s[2, a:b].mean():.3f}")
torch.save(rows, f"runs/s48/guidance_diag_cfg{cfg}_p{top_p}.pt")
