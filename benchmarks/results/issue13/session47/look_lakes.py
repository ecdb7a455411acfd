"""Decode one class's cached draws, classify them, and tile them beside real renders of that class."""
import sys, torch, torch.nn.functional as F
from PIL import Image
from nar.pipelines.pipeline import Pipeline
from nar.eval.scene_classifier import load_scene_classifier
torch.set_num_threads(1)
tag, cls, prior = sys.argv[1], int(sys.argv[2]), sys.argv[3]
toks = torch.load(f"runs/s40/tok_{tag}.pt")
idx = [i for i in range(len(toks)) if i % 6 == cls]
pipe = Pipeline.load(priors={prior: f"nar/assets/models/{prior}.safetensors"}, device="cpu")
clf = load_scene_classifier(None, "cpu")
with torch.no_grad():
    imgs = pipe.tokenizer.decode_tokens(toks[idx]).float().clamp(-1, 1)
    _, logits = clf.features_and_logits(imgs)
pred = logits.argmax(-1).tolist()
print([clf.classes[p] for p in pred])
real = torch.load("runs/s40/real_a.pt").float()
real = real[[i for i in range(len(real)) if i % 6 == cls][:8]]
small = lambda x: F.interpolate(x, size=(192, 192), mode="area")
tiles = torch.cat([small(imgs), small(real)])
rows = [torch.cat(list(tiles[i:i + 8]), dim=2) for i in range(0, len(tiles), 8)]
grid = torch.cat(rows, dim=1)
Image.fromarray(((grid + 1) * 127.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()).save(f"runs/s47/look_{tag}_c{cls}.png")
