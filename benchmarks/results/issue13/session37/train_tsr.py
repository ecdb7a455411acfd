"""Pilot: train nar.sr.tokens.TokenUpsampler on runs/s37/tsr_pairs (resumes from RUN/state.pt)."""
import glob, json, math, os, sys, time
import numpy as np, torch
from safetensors.torch import save_file
from nar.sr.tokens import TokenSRConfig, TokenUpsampler
torch.set_num_threads(int(os.environ.get("T", 1)))
run = sys.argv[1]; steps = int(sys.argv[2]); os.makedirs(run, exist_ok=True)
cfg = TokenSRConfig(dim=int(os.environ.get("DIM", 96)), fine_blocks=int(os.environ.get("FB", 4)))
model = TokenUpsampler(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
step = 0
if os.path.exists(f"{run}/state.pt"):
    st = torch.load(f"{run}/state.pt", weights_only=True)
    model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"]); ema = st["ema"]; step = st["step"]
    torch.set_rng_state(st["rng"])
print("params", sum(p.numel() for p in model.parameters()), "from step", step, flush=True)
def load_pool():
    files = sorted(glob.glob("runs/s37/tsr_pairs/s16-*.npz"))
    held, train = files[:1], files[1:]
    cat = lambda fs, k: torch.from_numpy(np.concatenate([np.load(f)[k] for f in fs]).astype(np.int64))
    return (cat(train, "low"), cat(train, "high")), (cat(held, "low"), cat(held, "high"))
(lo, hi), (hlo, hhi) = load_pool()
B, C = 16, 16
def batch(g):
    i = torch.randint(len(lo), (B,), generator=g)
    y = torch.randint(0, 32 - C + 1, (B,), generator=g); x = torch.randint(0, 32 - C + 1, (B,), generator=g)
    c = torch.stack([lo[a, b:b + C, d:d + C] for a, b, d in zip(i.tolist(), y.tolist(), x.tolist())])
    f = torch.stack([hi[a, 2 * b:2 * b + 2 * C, 2 * d:2 * d + 2 * C] for a, b, d in zip(i.tolist(), y.tolist(), x.tolist())])
    noise = torch.rand(c.shape, generator=g) < 0.05 * torch.rand(B, 1, 1, generator=g)
    c = torch.where(noise, torch.randint(0, cfg.codebook_size, c.shape, generator=g), c)
    return c, f
def lr_at(s):
    return 1e-3 * min(1, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
g = torch.Generator().manual_seed(1234 + step)
t0 = time.time()
while step < steps:
    if step % 100 == 0:
        (lo, hi), _ = load_pool()
    for pg in opt.param_groups: pg["lr"] = lr_at(step)
    c, f = batch(g)
    loss = model.loss(c, f, generator=g)
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); step += 1
    with torch.no_grad():
        for k, v in model.state_dict().items():
            ema[k].lerp_(v, 1 - 0.995) if v.is_floating_point() else ema[k].copy_(v)
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.4f} lr {lr_at(step):.2e} pairs {len(lo)} {time.time() - t0:.0f}s", flush=True)
    if step % 100 == 0 or step == steps:
        m = TokenUpsampler(cfg); m.load_state_dict(ema); m.eval()
        with torch.no_grad():
            hg = torch.Generator().manual_seed(0)
            hl = sum(m.loss(hlo[j:j + 4], hhi[j:j + 4], generator=hg).item() for j in range(0, 16, 4)) / 4
        print(f"step {step} held-out {hl:.4f}", flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema, "step": step,
                    "rng": torch.get_rng_state()}, f"{run}/state.tmp"); os.replace(f"{run}/state.tmp", f"{run}/state.pt")
        save_file({k: v.contiguous() for k, v in ema.items()}, f"{run}/ema.tmp", metadata={"config": json.dumps(cfg.to_dict()), "step": str(step)})
        os.replace(f"{run}/ema.tmp", f"{run}/ema.safetensors")
