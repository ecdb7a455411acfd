"""Diagnostic baseline: fill the box's tokens by mirroring the kept token columns on either side
(no model), through the pipeline's compositing. Does a trivial continuation beat the prior's fill?"""
import numpy as np, torch
from nar.core.images import array_to_tensor
from nar.data.landscapes import generate_landscape
from nar.pipelines.pipeline import Pipeline
from nar.priors.base import SampleOutput
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
torch.set_num_threads(2)
pipe = Pipeline.load()
S = 1024; box = np.zeros((S, S), bool); box[S//4:3*S//4, S//4:3*S//4] = True
state = {}
def fake_run(prior, n, grid, known=None, keep=None, **kw):
    t = known.clone()   # (1, 64, 64); box = rows/cols 16..47
    lo, hi = 16, 48
    for c in range(lo, hi):
        src = lo - 1 - (c - lo) if c < (lo + hi) // 2 else hi + (hi - 1 - c)
        t[0, lo:hi, c] = t[0, lo:hi, src]
    return SampleOutput(tokens=t, steps_run=0, forward_passes=0), 0.0, 0.0
pipe._run_prior = fake_run
reals, outs = [], []
for i in range(48):
    img, _ = generate_landscape(7_000_000 + i, S, S)
    reals.append(img)
    outs.append(np.asarray(pipe.inpaint(img, box).images[0]))
clf = load_scene_classifier()
real = torch.stack([array_to_tensor(a) for a in reals])
fake = torch.stack([array_to_tensor(a) for a in outs])
print(f"mirrored token columns, default compositing: FD {evaluate_images(real, fake, classifier=clf, inception=False)['fd_nar']:.3f}")
from PIL import Image
Image.fromarray(np.concatenate([np.asarray(Image.fromarray(outs[i]).resize((256, 256))) for i in (0, 12, 30)], 1)).save('/tmp/mirror.png')
