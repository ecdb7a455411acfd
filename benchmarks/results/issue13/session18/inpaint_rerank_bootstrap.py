import json, numpy as np, torch
from PIL import Image
from nar.core.images import array_to_tensor
from nar.data.landscapes import generate_landscape
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
torch.set_num_threads(1)
d = np.load('runs/rerank_48x4.npz')['cands']; sc = json.load(open('runs/rerank_48x4.json'))['scores']
real = torch.stack([array_to_tensor(np.asarray(Image.fromarray(generate_landscape(7_000_000 + i, 1024, 1024)[0]).resize((256, 256), Image.BICUBIC))) for i in range(48)])
clf = load_scene_classifier()
fd = lambda pick: evaluate_images(real, torch.stack([array_to_tensor(d[i][p]) for i, p in enumerate(pick)]), classifier=clf, inception=False)["fd_nar"]
rng = np.random.default_rng(0)
rand = [fd(rng.integers(0, 4, 48)) for _ in range(30)]
print("random picks: mean %.3f sd %.3f min %.3f max %.3f" % (np.mean(rand), np.std(rand), min(rand), max(rand)))
for key in ("ring1", "ring2", "ring3", "fill"):
    print(key, "best %.3f worst %.3f" % (fd([int(np.argmax([s[key] for s in row])) for row in sc]), fd([int(np.argmin([s[key] for s in row])) for row in sc])))
for k in range(4): print("cand", k, "%.3f" % fd([k] * 48))
