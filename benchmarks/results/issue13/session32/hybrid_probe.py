"""Probe: one maskgit draw made by two networks: the hourglass v4 fills the grid until a share
FRAC of it is drawn (the global layout), the raster-layout network the rest (the detail).
usage: hybrid_probe.py RASTER_CKPT OUT CLASS FRAC[,FRAC...] [N] [SEED]   (FRAC 0: raster alone; 1: v4 alone)"""
import sys, torch
from PIL import Image
from nar import Pipeline

raster_ckpt, out, cls = sys.argv[1], sys.argv[2], sys.argv[3]
fracs = [float(f) for f in sys.argv[4].split(",")]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 4
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 5
torch.set_num_threads(1)
v4_pipe = Pipeline.load()
v4 = v4_pipe.prior("maskgit")
pipe = Pipeline.load(priors={"maskgit": raster_ckpt})
raster = pipe.prior("maskgit")
own = raster._masked_logits
rows = []
for frac in fracs:
    step = [0]

    def dispatch(ids, is_masked, class_ids, cfg_scale, grid, shift=(0, 0), frac=frac):
        step[0] += 1   # v4 moves its patch grid every step, as in its own sampling
        if is_masked.float().mean() > 1 - frac:    # early: the hourglass decides the layout
            return v4._masked_logits(ids, is_masked, class_ids, cfg_scale, grid, v4.patch_shift(step[0] - 1))
        return own(ids, is_masked, class_ids, cfg_scale, grid, shift)
    raster._masked_logits = dispatch
    res = pipe.sample(prior="maskgit", n=n, size=512, class_name=cls, cfg=2.0, seed=seed)
    rows.append(res.images)
    print(frac, f"{res.seconds_sampling:.1f}s", flush=True)
sheet = Image.new("RGB", (256 * n, 256 * len(rows)))
for r, ims in enumerate(rows):
    for i, im in enumerate(ims):
        sheet.paste(im.resize((256, 256)), (256 * i, 256 * r))
sheet.save(f"{out}.png")
