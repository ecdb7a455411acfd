"""Feasibility: maskgit v4 with full-resolution transformer blocks added around the valley
(zero-initialised outputs: starts as v4), fine-tuned, against v4 fine-tuned alone (control)."""
import math, sys, time, glob, dataclasses
import numpy as np, torch, torch.nn.functional as F
from nar.core.checkpoint import load_checkpoint
from nar.priors import load_prior
from nar.priors.maskgit import MaskGITPrior
from nar.sampling.schedules import get_schedule
torch.set_num_threads(1)
pre, post, STEPS, LR = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
v4 = load_prior("nar/assets/models/maskgit.safetensors")
cfg = dataclasses.replace(v4.cfg, net=dataclasses.replace(v4.cfg.net, depths=(pre, 8, post)))
mg = MaskGITPrior(cfg, v4.codebook_size, v4.num_classes, v4.train_grid)
tensors, _ = load_checkpoint("nar/assets/models/maskgit.safetensors")
missing, unexpected = mg.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
assert not unexpected, unexpected
with torch.no_grad():
    for stack in (mg.net.root.pre, mg.net.root.post):
        for block in stack.blocks:
            block.attn.to_out.weight.zero_(); block.ff.net[-1].weight.zero_(); block.ff.net[-1].bias.zero_()
print("new tensors", len(missing), "params", sum(p.numel() for p in mg.parameters()), flush=True)
files = sorted(glob.glob("runs/ar512s/fresh_tokens/chunk-*.npz"))
def load(fs):
    t, l = [], []
    for f in fs:
        d = np.load(f); t.append(d["tokens"]); l.append(d["labels"])
    return torch.from_numpy(np.concatenate(t)).long(), torch.from_numpy(np.concatenate(l)).long()
val_t, val_l = load(files[-8:]); tr_t, tr_l = load(files[:400])
@torch.no_grad()
def evaluate():
    mg.eval(); out = {}
    for r in (0.15, 0.5, 0.85):
        g = torch.Generator().manual_seed(1)
        m = torch.rand(len(val_t), 1024, generator=g).argsort(1).argsort(1) < math.ceil(r * 1024)
        ids = val_t.reshape(-1, 1024)
        tot = 0.0
        for shift in ((0, 0), (1, 1)):
            logits = mg(ids.masked_fill(m, mg.mask_id), val_l, (32, 32), select=m, shift=shift)[:, :512]
            tot += F.cross_entropy(logits.float(), ids[m]).item() / 2
        out[r] = round(tot, 4)
    mg.train(); return out
print("step 0", evaluate(), flush=True)
opt = torch.optim.AdamW(mg.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.05)
gamma = get_schedule("cosine"); gen = torch.Generator().manual_seed(123)
t0 = time.time()
for step in range(1, STEPS + 1):
    idx = torch.randint(len(tr_t), (8,), generator=gen)
    ids, cls = tr_t[idx].reshape(8, 1024), tr_l[idx]
    cls = torch.where(torch.rand(8, generator=gen) < 0.1, torch.full_like(cls, 6), cls)
    u = torch.rand(8, generator=gen)
    k = torch.tensor([max(1, math.ceil(gamma(float(x)) * 1024)) for x in u])
    m = torch.rand(8, 1024, generator=gen).argsort(1).argsort(1) < k[:, None]
    shift = tuple(torch.randint(2, (2,), generator=gen).tolist())
    logits = mg(ids.masked_fill(m, mg.mask_id), cls, (32, 32), select=m, shift=shift)[:, :512]
    loss = F.cross_entropy(logits.float(), ids[m], label_smoothing=0.1)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(mg.parameters(), 1.0); opt.step()
    if step % 10 == 0:
        print(f"step {step} loss {loss.item():.3f} {time.time()-t0:.0f}s", flush=True)
    if step % 40 == 0:
        print(f"step {step}", evaluate(), flush=True)
