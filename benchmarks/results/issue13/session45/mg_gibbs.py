# mg_gibbs.py SRC_TAG SEED NEW_TAG TEMP [SWEEPS] [TOP_P]: after maskgit's draw, a Gibbs sweep: each of the four
# (row%2, col%2) lattices in turn is masked and redrawn at TEMP given every other token (cfg 2, the bench's).
import sys, torch
from nar.pipelines.pipeline import Pipeline
from nar.sampling.filters import sample_logits
from nar.priors.maskgit_critic import LATTICE
torch.set_num_threads(1)
src, seed, new, temp = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
sweeps = int(sys.argv[5]) if len(sys.argv) > 5 else 1
top_p = float(sys.argv[6]) if len(sys.argv) > 6 else None
pipe = Pipeline.load(priors={"maskgit": "nar/assets/models/maskgit.safetensors"}, device="cpu")
p = pipe.prior("maskgit"); p.eval()
toks = torch.load(f"runs/s40/tok_{src}_s{seed}.pt"); n, h, w = toks.shape
cls = torch.arange(n) % 6
g = torch.Generator().manual_seed(1234 + int(seed))
rows = torch.arange(h)[:, None].expand(h, w); cols = torch.arange(w)[None, :].expand(h, w)
out = []
with torch.inference_mode():
    for i in range(0, n, 8):
        ids = toks[i:i+8].reshape(8, -1).clone()
        for s in range(sweeps):
            for k, (dr, dc) in enumerate(LATTICE):
                lat = ((rows % 2 == dr) & (cols % 2 == dc)).reshape(1, -1).expand(8, -1)
                lg = p._masked_logits(ids.masked_fill(lat, p.mask_id), lat, cls[i:i+8], 2.0, (h, w), p.patch_shift(k))
                ids[lat] = sample_logits(lg, temp, None, top_p, g)
        out.append(ids.reshape(8, h, w))
out = torch.cat(out)
print("changed", (out != toks).float().mean().item())
torch.save(out, f"runs/s40/tok_{new}_s{seed}.pt")
