"""ar's implicit classifier on real grids it never saw: sum_t log p(x_t | c, x_<t) for every class and null.
  python benchmarks/results/issue13/session47/implicit_clf.py CKPT [N]"""
import os, sys, glob, numpy as np, torch, torch.nn.functional as F
from nar.pipelines.pipeline import Pipeline


def class_likelihoods(prior, toks: torch.Tensor) -> torch.Tensor:
    """(n, 32, 32) grids -> (n, classes + 1, 32) log-likelihood per row under every class (last: null)."""
    C = prior.num_classes
    ll = torch.zeros(len(toks), C + 1, 32)
    with torch.inference_mode():
        for i in range(len(toks)):
            x = toks[i:i+1].expand(C + 1, -1, -1)
            logits = prior(x, torch.arange(C + 1)).float()
            lp = -F.cross_entropy(logits.transpose(1, 2), x.reshape(C + 1, -1), reduction="none")  # (C+1, 1024)
            ll[i] = lp.reshape(C + 1, 32, 32).sum(-1)
    return ll


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("T", 2)))
    ckpt = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 96
    toks, labs = [], []
    for f in sorted(glob.glob("runs/sundae512v8/fresh_tokens/chunk-*.npz")):
        z = np.load(f); toks.append(torch.from_numpy(z["tokens"].astype(np.int64))); labs.append(torch.from_numpy(z["labels"]))
    toks, labs = torch.cat(toks)[:n], torch.cat(labs)[:n]
    prior = Pipeline.load(priors={"ar": ckpt}, device="cpu").prior("ar").eval()
    C = prior.num_classes
    ll = class_likelihoods(prior, toks)
    pred = ll.sum(-1)[:, :C].argmax(1)
    print("implicit classifier accuracy", (pred == labs).float().mean().item(), "n", n)
    info = (ll[torch.arange(n), labs] - ll[:, C]).mean(0)   # nats per row: true class vs null
    print("class info per row (nats, true - null):", [round(v, 2) for v in info.tolist()])
    print("total class info (nats/img)", info.sum().item())
    first = ll[:, :C, :12].sum(-1).argmax(1); print("accuracy from rows 0-11", (first == labs).float().mean().item())
    torch.save({"ll": ll, "labels": labs}, f"runs/s47/implicit_{ckpt.replace('/', '_')}.pt")
