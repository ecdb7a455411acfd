"""Does a fixed unsharp mask after the pixel SR buy the gradient the 512² path loses, at what FD?
  T=2 python runs/s39/unsharp.py SRC sigma:amount[,sigma:amount...]   SRC: recon or a tokens file.
Decoded 1024² images are cached as float16 in runs/s39/imgs_<tag>_f16.pt (the first runs cached uint8,
whose rounding noise the mask amplifies: gradient about 0.04 high at amount 0.75)."""
import json, os, sys, time, torch
import torch.nn.functional as F
from nar.pipelines.bench.quality import render_real, real_labels
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.tokenizer.load import load_tokenizer
torch.set_num_threads(int(os.environ.get("T", 2)))
src, settings = sys.argv[1], [tuple(map(float, s.split(":"))) for s in sys.argv[2].split(",")]
n = 144
real_a = torch.load("runs/s37/real_a.pt").float() / 127.5 - 1
tag = "recon" if src == "recon" else os.path.basename(src).replace(".pt", "")
cache = f"runs/s39/imgs_{tag}_f16.pt"   # float16: uint8 rounding noise, sharpened, reads as gradient
if not os.path.exists(cache):
    tok = load_tokenizer("nar/assets/models/tokenizer.safetensors")
    with torch.inference_mode():
        tokens = (torch.cat([tok.encode(b) for b in render_real(n, 512, 1_000_144, True).split(8)])
                  if src == "recon" else torch.load(src))
        sr = load_sr(None, "cpu")
        imgs = torch.cat([upscale_tensor(tok.decode_tokens(b).float().clamp(-1, 1), sr, passes=1) for b in tokens.split(8)])
    torch.save(imgs.half(), cache)
base = torch.load(cache).float()


def gaussian(x, sigma):
    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-torch.arange(-r, r + 1).float() ** 2 / (2 * sigma ** 2)); k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def unsharp(x, sigma, amount):
    if amount == 0:
        return x
    return torch.cat([(b + amount * (b - gaussian(b, sigma))).clamp(-1, 1) for b in x.split(8)])


clf = load_scene_classifier(None, "cpu")
labels = real_labels(n, clf.classes)
real_sharp = sharpness_report(real_a, blocks=(16, 32, 64))
for sigma, amount in settings:
    imgs = unsharp(base, sigma, amount)
    r = evaluate_images(real_a, imgs, classifier=clf, fake_labels=labels, inception=False, device="cpu")
    s = relative_to(sharpness_report(imgs, blocks=(16, 32, 64)), real_sharp)
    row = {k: r.get(k) for k in ("fd_nar", "precision", "recall", "class_fidelity")} | {
        k: round(v, 3) for k, v in s.items() if k.endswith("vs_real") or k.startswith("block")}
    print(tag, f"sigma={sigma} amount={amount}", json.dumps(row), flush=True)
    torch.save(((imgs[::24][:6] + 1) * 127.5).round().to(torch.uint8), f"runs/s39/look_{tag}_{sigma}_{amount}.pt")
