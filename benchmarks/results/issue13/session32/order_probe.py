"""Probe: maskgit draws with a top-down bias on the unmasking order (nats off each cell's confidence per
row from the top), for the raster-layout checkpoint and v4. Writes one JPG per setting (rows = seeds).
usage: order_probe.py CKPT OUT_PREFIX CLASS BIAS[,BIAS...] [N] [CT]"""
import sys, functools, torch
from PIL import Image
from nar import Pipeline

ckpt, out, cls, biases = sys.argv[1], sys.argv[2], sys.argv[3], [float(b) for b in sys.argv[4].split(",")]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 4
ct = float(sys.argv[6]) if len(sys.argv) > 6 else None
torch.set_num_threads(1)
pipe = Pipeline.load(priors={"maskgit": ckpt})
prior = pipe.prior("maskgit")
original = prior._decode
for bias in biases:
    def biased(req, ids, unknown, steps, schedule, choice_temperature, step0, total, scale_at, epsilon=0.0,
               order_cost=None, bias=bias):
        h, w = req.grid
        rows = torch.arange(h, dtype=torch.float32).repeat_interleave(w)[None].expand(req.n, -1)
        cost = bias * rows + (order_cost if order_cost is not None else 0)
        return original(req, ids, unknown, steps, schedule, choice_temperature if ct is None else ct,
                        step0, total, scale_at, epsilon, cost)
    prior._decode = biased
    res = pipe.sample(prior="maskgit", n=n, size=512, class_name=cls, cfg=2.0, seed=5)
    ims = res.images
    sheet = Image.new("RGB", (256 * len(ims), 256))
    for i, im in enumerate(ims):
        sheet.paste(im.resize((256, 256)), (256 * i, 0))
    sheet.save(f"{out}_b{bias:g}.jpg", quality=90)
    print(bias, f"{res.seconds_sampling:.1f}s", flush=True)
