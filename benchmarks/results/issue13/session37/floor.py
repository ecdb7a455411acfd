"""FD floor of the priors' 1024² path: real scenes at 512², tokenized (32x32), decoded, 2x SR."""
import json, sys, time
import torch
import torch.nn.functional as F
from nar.pipelines.bench.quality import render_real, real_labels
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import load_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.tokenizer.load import load_tokenizer
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
n, seed = 144, 1_000_000
t0 = time.time()
real_a = render_real(n, 1024, seed, True)
real_b512 = render_real(n, 512, seed + n, True)   # the same scenes as real_b, rendered at 512²
real_b = render_real(n, 1024, seed + n, True)
print("render", time.time() - t0, flush=True)
clf = load_scene_classifier(None, "cpu")
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors")
sr = load_sr(None, "cpu")
def recon(x):
    with torch.inference_mode():
        return torch.cat([tok.decode_tokens(tok.encode(b)).float() for b in x.split(8)]).clamp(-1, 1)
def up(x):
    with torch.inference_mode():
        return torch.cat([upscale_tensor(b, sr, passes=1) for b in x.split(8)]).clamp(-1, 1)
labels = real_labels(n, clf.classes)
real_sharp = sharpness_report(real_a, blocks=(16, 32))
rows = {}
def ev(name, fake):
    r = evaluate_images(real_a, fake, classifier=clf, fake_labels=labels, inception=False, device="cpu")
    s = relative_to(sharpness_report(fake, blocks=(16, 32)), real_sharp)
    rows[name] = {k: r.get(k) for k in ("fd_nar", "precision", "recall", "class_fidelity")} | {
        k: s.get(k) for k in ("grad_energy_vs_real", "hf_share_vs_real", "block_ratio_16", "block_ratio_32")}
    print(name, json.dumps(rows[name]), time.time() - t0, flush=True)
ev("real_b", real_b)
ev("recon_1024", recon(real_b))
ev("sr_of_real512", up(real_b512))
ev("sr_of_recon512", up(recon(real_b512)))
ev("bicubic_of_recon512", F.interpolate(recon(real_b512), scale_factor=2, mode="bicubic").clamp(-1, 1))
json.dump(rows, open("runs/s37/floor.json", "w"), indent=1)
