"""For a sweep row's tokens: the ar's implicit class (from its own likelihoods) and the scene classifier's, per sample.
  python benchmarks/results/issue13/session47/sample_clf.py TAG_sSEED"""
import collections, os, sys, torch
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.eval.scene_classifier import load_scene_classifier
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from implicit_clf import class_likelihoods
torch.set_num_threads(2)
tag = sys.argv[1]
toks = torch.load(f"runs/s40/tok_{tag}.pt").long()
n = toks.shape[0]; labels = torch.arange(n) % 6
pipe = Pipeline.load(priors={"ar": "nar/assets/models/ar.safetensors"}, device="cpu")
prior, tok = pipe.prior("ar").eval(), pipe.tokenizer
C = prior.num_classes
ll = class_likelihoods(prior, toks)
with torch.inference_mode():
    sr, clf = load_sr(None, "cpu"), load_scene_classifier(None, "cpu")
    imgs = torch.cat([upscale_tensor(tok.decode_tokens(b).float().clamp(-1, 1), sr, passes=1) for b in toks.split(8)])
    probs = torch.cat([clf.logits(b).softmax(-1) for b in imgs.split(16)])
implicit = ll.sum(-1)[:, :C].argmax(1)
print("implicit acc on own samples", (implicit == labels).float().mean().item())
info = (ll[torch.arange(n), labels] - ll[:, C]).sum(-1)
print("class info of samples (nats/img): mean", info.mean().item())
scene = probs.argmax(1)
print("scene-classifier fidelity", (scene == labels).float().mean().item(), "classes", clf.classes)
agree = collections.Counter((int(a == l), int(s == l)) for a, s, l in zip(implicit, scene, labels))
print("(implicit right, scene right) counts", dict(agree))
wrong = scene != labels
print("class info of samples scene-right / scene-wrong", info[~wrong].mean().item(), info[wrong].mean().item())
for c in range(C):
    m = labels == c
    print(clf.classes[c], "scene right", (scene[m] == c).sum().item(), "/", m.sum().item(), "mistaken for",
          collections.Counter(clf.classes[k] for k in scene[m & wrong].tolist()))
torch.save({"ll": ll, "probs": probs}, f"runs/s47/sclf_{tag}.pt")
