"""FD / class fidelity / sharpness at 1024² of token grids (144, 32, 32) decoded straight to 1024² by
a tokenizer whose decoder upscales 2x (decoder_upscale = 2), against the bench's real set.
  python runs/s38/eval_up2.py SRC CKPT [CKPT ...]   SRC: recon (tokens of 512² renders of the second
  real set: the floor) or a tokens file of draw_tokens.py (runs/s37/tokens_<prior>_seed0.pt)."""
import json, os, sys, time, torch
from nar.pipelines.bench.quality import render_real, real_labels
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.tokenizer.load import load_tokenizer
torch.set_num_threads(int(os.environ.get("T", 2)))
src, ckpts = sys.argv[1], sys.argv[2:]
n = 144
real_a = torch.load("runs/s37/real_a.pt").float() / 127.5 - 1
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors")
if src == "recon":
    with torch.inference_mode():
        tokens = torch.cat([tok.encode(b) for b in render_real(n, 512, 1_000_144, True).split(8)])
else:
    tokens = torch.load(src)
clf = load_scene_classifier(None, "cpu")
labels = real_labels(n, clf.classes)
real_sharp = sharpness_report(real_a, blocks=(16, 32, 64))
for ckpt in ckpts:
    t0 = time.time()
    dec = load_tokenizer(ckpt)
    with torch.inference_mode():
        imgs = torch.cat([dec.decode_tokens(b).float().clamp(-1, 1) for b in tokens.split(4)])
    t1 = time.time()
    r = evaluate_images(real_a, imgs, classifier=clf, fake_labels=labels, inception=False, device="cpu")
    s = relative_to(sharpness_report(imgs, blocks=(16, 32, 64)), real_sharp)
    row = {k: r.get(k) for k in ("fd_nar", "precision", "recall", "class_fidelity")} | {
        k: round(v, 3) for k, v in s.items() if k.endswith("vs_real") or k.startswith("block")} | {
        "decode_s_per_image": round((t1 - t0) / n, 3)}
    print(os.path.basename(src), ckpt, json.dumps(row), flush=True)
    tag = os.path.basename(src).replace(".pt", "") + "_" + ckpt.replace("/", "_").replace(".safetensors", "")
    torch.save(((imgs[::24][:6] + 1) * 127.5).round().to(torch.uint8), f"runs/s38/look_{tag}.pt")
