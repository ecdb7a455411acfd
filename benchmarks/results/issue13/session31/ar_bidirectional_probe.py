"""Probe: ar v7 run without its causal mask (shifted layout) as a masked-token model, fine-tuned on
stream-10 pool grids; held-out masked-token loss against maskgit v4. Args: threads steps lr
(session 31: `1 240 2e-4`, stopped after step 120; `2 60 1e-4` with the step-20 cadence)."""
import math, sys, time, glob
import numpy as np, torch, torch.nn.functional as F
from nar.priors import load_prior
from nar.sampling.schedules import get_schedule
torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
LR = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 60
ar = load_prior("nar/assets/models/ar.safetensors").float()
mg = load_prior("nar/assets/models/maskgit.safetensors").float()
for m in ar.layers.modules():
    if hasattr(m, "causal") and type(m).__name__ in ("Attention", "Attend"):
        m.causal = False
mask_emb = torch.nn.Parameter(ar.tok_emb.weight.detach().mean(0).clone())

def bidir(ids, masked, cls):
    b, n = ids.shape
    x = ar.tok_emb(ids.clamp(max=511))
    x = torch.where(masked[..., None], mask_emb.expand_as(x), x)
    x = torch.cat([ar.cls_emb(cls)[:, None], x[:, :-1]], 1)
    k = torch.arange(n)
    x = x + ar.row_emb(k // 32) + ar.col_emb(k % 32)
    return ar.head(ar.layers(x))

# held-out grids: pool chunks 900+ of stream 10 (ar v6 read them once; maskgit never)
files = sorted(glob.glob("runs/ar512s/fresh_tokens/chunk-*.npz"))
def load(fs):
    t, l = [], []
    for f in fs:
        d = np.load(f); t.append(d["tokens"]); l.append(d["labels"])
    return torch.from_numpy(np.concatenate(t)).long(), torch.from_numpy(np.concatenate(l)).long()
val_t, val_l = load(files[-8:])            # 32 grids
tr_t, tr_l = load(files[:200])             # 800 grids for the fine-tune

def masks(n_grids, ratio, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n_grids, 1024, generator=g)
    k = max(1, math.ceil(ratio * 1024))
    return s.argsort(1).argsort(1) < k

@torch.no_grad()
def evaluate(which):
    out = {}
    for r in (0.15, 0.5, 0.85):
        m = masks(len(val_t), r, 1)
        ids = val_t.reshape(-1, 1024)
        if which == "mg":
            inp = ids.masked_fill(m, mg.mask_id)
            logits = mg(inp, val_l, (32, 32), select=m)[:, :512]
        else:
            logits = bidir(ids, m, val_l)[m]
        out[r] = F.cross_entropy(logits.float(), ids[m]).item()
    return out

print("maskgit v4:", evaluate("mg"), flush=True)
ar.eval()
print("ar bidir step 0:", evaluate("ar"), flush=True)
params = list(ar.parameters()) + [mask_emb]
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.95), weight_decay=0.05)
gamma = get_schedule("cosine")
ar.train()
t0 = time.time()
for step in range(1, STEPS + 1):
    idx = torch.randint(len(tr_t), (8,))
    ids, cls = tr_t[idx].reshape(8, 1024), tr_l[idx]
    cls = torch.where(torch.rand(8) < 0.1, torch.full_like(cls, 6), cls)
    u = torch.rand(8)
    k = torch.tensor([max(1, math.ceil(gamma(float(x)) * 1024)) for x in u])
    m = torch.rand(8, 1024).argsort(1).argsort(1) < k[:, None]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        logits = bidir(ids, m, cls)[m]
    loss = F.cross_entropy(logits.float(), ids[m], label_smoothing=0.1)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if step % 10 == 0:
        print(f"step {step} loss {loss.item():.3f} {time.time()-t0:.0f}s", flush=True)
    if step % 40 == 0:
        ar.eval(); print(f"ar bidir step {step}:", evaluate("ar"), flush=True); ar.train()
