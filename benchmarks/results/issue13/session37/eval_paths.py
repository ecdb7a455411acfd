"""FD / class fidelity / sharpness at 1024² of token grids (144, 32, 32) through two paths:
pix: decode 512² + the shipped 2x pixel SR;  tok: token SR -> 64x64 tokens -> decode 1024²."""
import json, os, sys, time, torch
from safetensors.torch import load_file
import json as _j
from safetensors import safe_open
from nar.pipelines.bench.quality import render_real, real_labels
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.tokenizer.load import load_tokenizer
from nar.sr.tokens import TokenSRConfig, TokenUpsampler
torch.set_num_threads(int(os.environ.get("T", 2)))
src, paths, tsr_path = sys.argv[1], sys.argv[2].split(","), sys.argv[3] if len(sys.argv) > 3 else None
steps, temp, choice = int(os.environ.get("STEPS", 4)), float(os.environ.get("TEMP", 1.0)), float(os.environ.get("CHOICE", 2.0))
n = 144
cache = "runs/s37/real_a.pt"
if not os.path.exists(cache):
    torch.save(((render_real(n, 1024, 1_000_000, True) + 1) * 127.5).round().to(torch.uint8), cache)
real_a = torch.load(cache).float() / 127.5 - 1
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors")
if src == "recon":   # the floor: tokens of the second real set rendered at 512²
    with torch.inference_mode():
        tokens = torch.cat([tok.encode(b) for b in render_real(n, 512, 1_000_144, True).split(8)])
else:
    tokens = torch.load(src)
clf = load_scene_classifier(None, "cpu")
labels = real_labels(n, clf.classes)
real_sharp = sharpness_report(real_a, blocks=(16, 32, 64))
res = {}
for p in paths:
    t0 = time.time()
    with torch.inference_mode():
        if p == "pix":
            sr = load_sr(None, "cpu")
            imgs = torch.cat([upscale_tensor(tok.decode_tokens(b).float().clamp(-1, 1), sr, passes=1) for b in tokens.split(8)])
        else:
            with safe_open(tsr_path, "pt") as f:
                cfg = TokenSRConfig(**_j.loads(f.metadata()["config"]))
            m = TokenUpsampler(cfg); m.load_state_dict(load_file(tsr_path)); m.eval()
            g = torch.Generator().manual_seed(7)
            fine = torch.cat([m.sample(b, steps=steps, temperature=temp, choice_temperature=choice, generator=g) for b in tokens.split(8)])
            imgs = torch.cat([tok.decode_tokens(b).float() for b in fine.split(4)])
            if len(res) == 0: torch.save(fine, src.replace(".pt", "") + f"_fine_{os.path.basename(os.path.dirname(tsr_path))}.pt" if src != "recon" else "runs/s37/recon_fine.pt")
    imgs = imgs.clamp(-1, 1)
    t1 = time.time()
    r = evaluate_images(real_a, imgs, classifier=clf, fake_labels=labels, inception=False, device="cpu")
    s = relative_to(sharpness_report(imgs, blocks=(16, 32, 64)), real_sharp)
    res[p] = {k: r.get(k) for k in ("fd_nar", "precision", "recall", "class_fidelity")} | {
        k: round(v, 3) for k, v in s.items() if k.endswith("vs_real") or k.startswith("block")} | {"make_s": round(t1 - t0)}
    print(src, p, json.dumps(res[p]), flush=True)
    torch.save(((imgs[::24][:6] + 1) * 127.5).round().to(torch.uint8), f"runs/s37/look_{os.path.basename(src).replace('.pt','')}_{p}.pt")
