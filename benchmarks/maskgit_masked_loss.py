"""Held-out masked-token loss of `maskgit` checkpoints (any layout or depth) at three mask ratios
(`nar.eval.masked_loss`): how well each completes a mostly known grid (0.15) and lays out a scene
from little (0.85), on the same cells for every checkpoint.

    OMP_NUM_THREADS=1 python benchmarks/maskgit_masked_loss.py nar/assets/models/maskgit.safetensors [runs/RUN/model.safetensors ...]

Scenes: ``--n`` procedural 512² renders of a stream no run has trained on (LandscapeDataset seed
990), encoded with the shipped tokenizer and cached in ``--cache``. Prints one JSON line per
checkpoint; writes nothing else. Issue 13's sessions 31-32 read their runs with it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ar_class_information import held_out_grids   # benchmarks/ is on the path when run as a script
from nar.eval.masked_loss import RATIOS, masked_token_loss
from nar.priors import load_prior

HELD_OUT_STREAM = 990


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=48, help="held-out grids")
    parser.add_argument("--size", type=int, default=512, help="render size (the priors' native 512²)")
    parser.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    parser.add_argument("--cache", type=Path, default=Path("runs/heldout/maskgit_stream990.safetensors"))
    args = parser.parse_args()
    grids, labels = held_out_grids(args.n, args.size, args.cache, seed=HELD_OUT_STREAM)
    ratios = tuple(float(r) for r in args.ratios.split(","))
    for path in args.checkpoints:
        prior = load_prior(path).float().eval()
        loss = masked_token_loss(prior, grids, labels, ratios)
        print(json.dumps({"checkpoint": str(path), "step": (prior.meta_info or {}).get("step"),
                          "loss": {str(r): round(v, 4) for r, v in loss.items()}}), flush=True)


if __name__ == "__main__":
    main()
