# polish_probe.py TAG CFG: one guided sundae forward over cached tokens runs/s40/tok_TAG.pt (at the step after
# the 20th, as the polish pass reads them); saves each token's probability and the argmax to runs/s45/probe_TAG.pt.
import sys, torch
from nar.pipelines.pipeline import Pipeline
torch.set_num_threads(2)
tag, cfg = sys.argv[1], float(sys.argv[2])
pipe = Pipeline.load(priors={"sundae": "nar/assets/models/sundae.safetensors"}, device="cpu")
p = pipe.prior("sundae"); p.eval()
toks = torch.load(f"runs/s40/tok_{tag}.pt")
n = toks.shape[0]; cls = torch.arange(n) % 6
ps, am = [], []
with torch.inference_mode():
    for i in range(0, n, 8):
        lg = p._guided_logits(toks[i:i+8], cls[i:i+8], cfg, p.patch_shift(20)).float()
        pr = lg.softmax(-1)
        ps.append(pr.gather(-1, toks[i:i+8, ..., None]).squeeze(-1)); am.append(lg.argmax(-1))
ps = torch.cat(ps); am = torch.cat(am)
torch.save({"p": ps, "argmax": am}, f"runs/s45/probe_{tag}.pt")
for t in (0.001, 0.01, 0.03, 0.1, 0.3):
    print(t, (ps < t).float().mean().item())
print("argmax==cur", (am == toks).float().mean().item(), "median p", ps.median().item())
