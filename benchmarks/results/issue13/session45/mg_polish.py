# mg_polish.py SRC_TAG SEED NEW_TAG THRESH: each (row%2, col%2) lattice in turn is masked; its tokens the guided model
# (cfg 2) gives p < THRESH given every other token take the argmax.
import sys, torch
from nar.pipelines.pipeline import Pipeline
from nar.priors.maskgit_critic import LATTICE
torch.set_num_threads(1)
src, seed, new, th = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
pipe = Pipeline.load(priors={"maskgit": "nar/assets/models/maskgit.safetensors"}, device="cpu")
p = pipe.prior("maskgit"); p.eval()
toks = torch.load(f"runs/s40/tok_{src}_s{seed}.pt"); n, h, w = toks.shape
cls = torch.arange(n) % 6
rows = torch.arange(h)[:, None].expand(h, w); cols = torch.arange(w)[None, :].expand(h, w)
out = []
with torch.inference_mode():
    for i in range(0, n, 8):
        ids = toks[i:i+8].reshape(8, -1).clone()
        for k, (dr, dc) in enumerate(LATTICE):
            lat = ((rows % 2 == dr) & (cols % 2 == dc)).reshape(1, -1).expand(8, -1)
            lg = p._masked_logits(ids.masked_fill(lat, p.mask_id), lat, cls[i:i+8], 2.0, (h, w), p.patch_shift(k))
            cur = ids[lat]
            pc = lg.softmax(-1).gather(-1, cur[:, None]).squeeze(-1)
            ids[lat] = torch.where(pc < th, lg.argmax(-1), cur)
        out.append(ids.reshape(8, h, w))
out = torch.cat(out)
print("changed", (out != toks).float().mean().item())
torch.save(out, f"runs/s40/tok_{new}_s{seed}.pt")
