"""The sample grids in docs/: one per shipped prior, one row per scene class.

    python scripts/make_sample_grids.py --prior sundae --per-class 3 --cfg 2
    python scripts/make_sample_grids.py --prior ar --per-class 3 --cfg 2 --size 256

Each row is ``--per-class`` class-conditioned samples (``--class <scene> --cfg``) at the
prior's training size (or ``--size``), decode included, the same as ``nar sample`` with
seed ``--seed + class id``. Writes ``docs/samples_<prior>_<size>.jpg`` (cells scaled to
``--cell`` pixels, JPEG: these go into the README) and, with ``--full``, the first
sample of every class as a full-size PNG ``docs/samples_<prior>_<size>_<class>.png``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nar.core.images import make_grid, save_png
from nar.pipelines.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", required=True)
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--per-class", type=int, default=3)
    ap.add_argument("--cfg", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--cell", type=int, default=256, help="pixels per cell in the JPEG grid")
    ap.add_argument("--full", action="store_true", help="also save one full-size PNG per class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    pipe = Pipeline.load(priors={args.prior: args.ckpt} if args.ckpt else None, device="cpu")
    size = pipe.resolve_grid(args.prior, args.size)[0] * pipe.factor
    cells = []
    args.out.mkdir(parents=True, exist_ok=True)
    for class_id, name in enumerate(pipe.class_names(args.prior)):
        t0 = time.perf_counter()
        seed = args.seed + class_id
        out = pipe.sample(prior=args.prior, n=args.per_class, size=size, steps=args.steps, class_name=name,
                          cfg=args.cfg, seed=seed)
        images = [np.asarray(im) for im in out.images]
        if args.full:
            save_png(images[0], args.out / f"samples_{args.prior}_{size}_{name}.png",
                     {"prior": args.prior, "class": name, "cfg": str(args.cfg), "seed": str(seed)})
        cells += [np.asarray(Image.fromarray(img).resize((args.cell, args.cell), Image.Resampling.LANCZOS))
                  for img in images]
        print(f"{name}: {args.per_class} samples in {time.perf_counter() - t0:.1f} s", flush=True)
    path = args.out / f"samples_{args.prior}_{size}.jpg"
    Image.fromarray(make_grid(np.stack(cells), nrow=args.per_class)).save(path, quality=90)
    print(f"wrote {path}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
