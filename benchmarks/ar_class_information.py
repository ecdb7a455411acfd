"""How much does an `ar` checkpoint use its class? Held-out cross-entropy with the true class
against the null class, per grid row (nats per token; 0 = the class is ignored), and the held-out
loss itself.

    PYTHONPATH=. python benchmarks/ar_class_information.py nar/assets/models/ar.safetensors [runs/RUN/model.safetensors ...]

Scenes: ``--n`` procedural 512² renders of a stream no shipped prior trained on, encoded with the
shipped tokenizer (cached in ``--cache``). Writes nothing else; prints one line per checkpoint.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from nar.pipelines.models import MODELS_DIR, TOKENIZER_FILE
from nar.priors import load_prior

HELD_OUT_SEED = 9_123_457


def held_out_grids(n: int, size: int, cache: Path, seed: int = HELD_OUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n renders of LandscapeDataset(size, seed), encoded with the shipped tokenizer, cached."""
    if cache.exists():
        saved = load_file(cache)
        if len(saved["grids"]) >= n:
            return saved["grids"][:n], saved["labels"][:n]
    from nar.tokenizer.load import load_tokenizer
    from nar.train.fresh_tokens import encode_landscapes
    grids, labels = encode_landscapes(load_tokenizer(MODELS_DIR / TOKENIZER_FILE), size, seed, 0, n)
    out = torch.from_numpy(grids.astype("int64")), torch.from_numpy(labels)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"grids": out[0], "labels": out[1]}, cache)
    return out


@torch.no_grad()
def class_information(prior, grids: torch.Tensor, labels: torch.Tensor, batch: int = 12) -> tuple[torch.Tensor, float]:
    """(rows,) mean over scenes and columns of CE(null class) - CE(true class), nats per token;
    and the mean CE with the true class (the held-out loss)."""
    gains, losses = [], []
    for g, y in zip(grids.split(batch), labels.split(batch)):
        target = g.reshape(len(g), -1)
        ce = {}
        for name, cls in (("true", y), ("null", torch.full_like(y, prior.null_class))):
            logits = prior(g, cls).float()
            ce[name] = F.cross_entropy(logits.transpose(1, 2), target, reduction="none").reshape(g.shape)
        gains.append((ce["null"] - ce["true"]).mean(dim=2))   # (b, rows)
        losses.append(ce["true"].mean(dim=(1, 2)))
    return torch.cat(gains).mean(dim=0), float(torch.cat(losses).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=36)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path("runs/ar_class_information/held_out.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    grids, labels = held_out_grids(args.n, args.size, args.cache)
    for path in args.ckpt:
        prior = load_prior(path, name="ar").float()
        gain, loss = class_information(prior, grids, labels)
        rows = " ".join(f"{v:+.3f}" for v in gain.tolist())
        print(f"{path} (step {prior.meta_info.get('step')}): held-out loss {loss:.4f}, class information {gain.mean():.4f} nats/token "
              f"(first quarter {gain[: len(gain) // 4].mean():.4f}, last {gain[-(len(gain) // 4):].mean():.4f}); rows: {rows}")


if __name__ == "__main__":
    main()
