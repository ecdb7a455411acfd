"""Diagnostic: inpainting with the true tokens in the box (the original image's own tokens), through
the pipeline's compositing (harmonised seam, one-cell ramp). Its FD is the floor any prior's fill meets
with this tokenizer and this compositing."""
import numpy as np, torch
from nar.core.images import array_to_tensor
from nar.data.landscapes import generate_landscape
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.seams import border_ratio
from nar.priors.base import SampleOutput
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
torch.set_num_threads(2)
pipe = Pipeline.load()
S = 1024; box = np.zeros((S, S), bool); box[S//4:3*S//4, S//4:3*S//4] = True
state = {}
def fake_run(prior, n, grid, **kw):
    return SampleOutput(tokens=state["true"], steps_run=0, forward_passes=0), 0.0, 0.0
pipe._run_prior = fake_run
reals, outs, outs_plain, ratios = [], [], [], []
for i in range(48):
    img, _ = generate_landscape(7_000_000 + i, S, S)
    state["true"] = pipe.encode(img)[None]
    reals.append(img)
    outs.append(np.asarray(pipe.inpaint(img, box).images[0]))
    outs_plain.append(np.asarray(pipe.inpaint(img, box, harmonize=False, blend=0).images[0]))
    ratios.append(border_ratio(outs[-1], box))
clf = load_scene_classifier()
real = torch.stack([array_to_tensor(a) for a in reals])
fd = lambda xs: evaluate_images(real, torch.stack([array_to_tensor(a) for a in xs]), classifier=clf, inception=False)["fd_nar"]
print(f"oracle fill (true tokens), default compositing: FD {fd(outs):.3f}, border ratio {np.mean(ratios):.3f}")
print(f"oracle fill, no harmonise / no ramp: FD {fd(outs_plain):.3f}")
