"""Probe: maskgit draws with refinement rounds (re-mask the least likely share, redraw), one sheet per
setting; usage: refine_probe.py CKPT OUT_PREFIX CLASS 'R:RATIO:STEPS[,...]' [N] [SEED]"""
import sys, torch
from PIL import Image
from nar import Pipeline

ckpt, out, cls = sys.argv[1], sys.argv[2], sys.argv[3]
settings = [tuple(s.split(":")) for s in sys.argv[4].split(",")]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 4
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 5
torch.set_num_threads(1)
pipe = Pipeline.load(priors={"maskgit": ckpt})
rows = []
for rounds, ratio, steps in settings:
    res = pipe.sample(prior="maskgit", n=n, size=512, class_name=cls, cfg=2.0, seed=seed,
                      refine_rounds=int(rounds), refine_ratio=float(ratio), refine_steps=int(steps))
    rows.append(res.images)
    print(rounds, ratio, steps, f"{res.seconds_sampling:.1f}s", flush=True)
sheet = Image.new("RGB", (256 * n, 256 * len(rows)))
for r, ims in enumerate(rows):
    for i, im in enumerate(ims):
        sheet.paste(im.resize((256, 256)), (256 * i, 256 * r))
sheet.save(f"{out}.png")
