import time, sys, torch
from nar.priors.maskgit import MaskGITConfig, MaskGITPrior
from nar.priors import load_prior
torch.set_num_threads(int(sys.argv[1]))
p = MaskGITPrior(MaskGITConfig(layout="raster", dim=256, depth=8, heads=8, ff_mult=4, dropout=0.0, steps=20,
                                choice_temperature=7.0), 512, 6, (32, 32)).eval()
v4 = load_prior("nar/assets/models/maskgit.safetensors").float()
for name, m in (("raster", p), ("v4", v4)):
    for cfg in (1.0, 2.0):
        m.sample(1, (32, 32), cond=torch.tensor([0]), cfg_scale=cfg, generator=torch.Generator().manual_seed(0))
        t = time.time()
        m.sample(1, (32, 32), cond=torch.tensor([0]), cfg_scale=cfg, generator=torch.Generator().manual_seed(0))
        print(name, cfg, f"{time.time()-t:.2f}s", flush=True)
