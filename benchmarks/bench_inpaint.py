"""Inpainting quality on held-out procedural scenes: does the regenerated box blend in?

For each scene, a box of a quarter of the image (half the width and half the height, centred)
is regenerated with each setting; reported per setting:
- border ratio: mean |luminance difference| across the box border / across all other pixel
  pairs (1 = invisible border; the quality issue asks for <= 1.3),
- gradient energy inside the box relative to the same box of the real image,
- FD (nar features) of the inpainted images against the real ones, beside the tokenizer
  reconstruction's FD, when --fd is given (needs enough images to mean anything: >= 48),
- with --fd also the border-band FD: the same FD over square windows (half the box side)
  centred on the middle of each box side, half kept pixels and half regenerated ones, against
  the same windows of the real images. The border ratio only sees a hard step at the edge; a
  smooth fill that continues nothing passes it. Windows that straddle the border look like
  real scenery only where the regenerated structure (ridges, tree lines, buildings) continues
  the kept one.

    python benchmarks/bench_inpaint.py --n 4 --size 1024 --out benchmarks/results/inpaint_cpu
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nar.core.config import parse_overrides
from nar.core.errors import NarError
from nar.core.images import array_to_tensor
from nar.data.landscapes import generate_landscape
from nar.eval.machine import environment
from nar.eval.sharpness import gradient_energy
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.seams import border_ratio
from nar.sampling import INPAINT_TEMPERATURE

HELD_OUT = 7_000_000   # procedural seeds far from the training ranges used by the shipped models

SETTINGS = {   # neither setting lets any original pixel under the mask into the result
    "paper (uniform z0, decoded region pasted in)": dict(init="uniform", harmonize=False, blend=0),
    "nar default (the prior's inpainting start, harmonised seam, ramp of one cell)": dict(),
}


def border_windows(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, S, S) -> (4N, 3, S/4, S/4): windows centred on the middle of each side of the
    centred half-size box, so each holds kept pixels on one side and regenerated ones on the other."""
    half, lo, hi, mid = size // 8, size // 4, 3 * size // 4, size // 2
    centres = ((lo, mid), (hi, mid), (mid, lo), (mid, hi))   # top, bottom, left, right (row, column)
    return torch.cat([images[..., r - half: r + half, c - half: c + half] for r, c in centres])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prior", default="sundae")
    ap.add_argument("--ckpt", type=Path, default=None, help="prior checkpoint (default: the shipped model)")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--temperature", type=float, default=None,
                    help="sampling temperature (default: Pipeline.inpaint's, nar.sampling.INPAINT_TEMPERATURE)")
    ap.add_argument("--option", action="append", default=[],
                    help="a sampler option key=value, e.g. choice_temperature=2 (repeatable)")
    ap.add_argument("--cfg", type=float, default=1.0, help="guidance scale for a class-conditioned fill")
    ap.add_argument("--class-from", default="none", choices=("none", "truth"),
                    help="condition the fill on no class (the default pipeline call) or on the scene's true class")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fd", action="store_true", help="also FD (nar features) against the real images")
    ap.add_argument("--settings", default="all", choices=("all", "default"),
                    help="every setting, or nar's default alone (half the time)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        extra_options = parse_overrides(args.option)
    except NarError as e:
        raise SystemExit(f"bad --option: {e}")

    pipe = Pipeline.load(priors={args.prior: args.ckpt} if args.ckpt else None)
    settings = SETTINGS if args.settings == "all" else {k: v for k, v in SETTINGS.items() if k.startswith("nar")}
    s = args.size
    box = np.zeros((s, s), bool)
    box[s // 4: 3 * s // 4, s // 4: 3 * s // 4] = True
    reals, outs = [], {name: [] for name in settings}
    rows = {name: {"border_ratio": [], "grad_energy_box_vs_real": [], "seconds": []} for name in settings}
    for i in range(args.n):
        image, label = generate_landscape(HELD_OUT + i, s, s)
        class_name = label["scene"] if args.class_from == "truth" else None
        reals.append(image)
        real_box = array_to_tensor(image)[None][..., s // 4: 3 * s // 4, s // 4: 3 * s // 4]
        for name, kw in settings.items():
            options = {k: v for k, v in kw.items() if k == "init"} if args.prior == "sundae" else {}
            options.update(extra_options)
            if args.temperature is not None:   # else the pipeline's inpainting default
                options["temperature"] = args.temperature
            start = time.perf_counter()
            out = pipe.inpaint(image, box, prior=args.prior, seed=i, steps=args.steps,
                               class_name=class_name, cfg=args.cfg,
                               harmonize=kw.get("harmonize", True), blend=kw.get("blend"), **options)
            rows[name]["seconds"].append(time.perf_counter() - start)
            result = np.asarray(out.images[0])
            outs[name].append(result)
            rows[name]["border_ratio"].append(border_ratio(result, box))
            got_box = array_to_tensor(result)[None][..., s // 4: 3 * s // 4, s // 4: 3 * s // 4]
            rows[name]["grad_energy_box_vs_real"].append(gradient_energy(got_box) / gradient_energy(real_box))
            print(f"scene {i} {name}: border ratio {rows[name]['border_ratio'][-1]:.2f}", flush=True)

    table = {name: {k: float(np.mean(v)) for k, v in r.items()} | {"per_scene_border_ratio": r["border_ratio"]}
             for name, r in rows.items()}
    if args.fd:
        from nar.eval.metrics import evaluate_images
        from nar.eval.scene_classifier import load_scene_classifier
        clf = load_scene_classifier()
        real = torch.stack([array_to_tensor(a) for a in reals])
        tok = pipe.full_tokenizer()
        with torch.inference_mode():
            recon = torch.cat([tok.decode_tokens(tok.encode(x[None])).float().clamp(-1, 1) for x in real])
        fd = lambda fake: evaluate_images(real, fake, classifier=clf, inception=False)["fd_nar"]
        fd_band = lambda fake: evaluate_images(border_windows(real, s), border_windows(fake, s), classifier=clf,
                                               inception=False)["fd_nar"]
        table["tokenizer reconstruction"] = {"fd_nar": fd(recon), "fd_nar_border_band": fd_band(recon)}
        for name in settings:
            fake = torch.stack([array_to_tensor(a) for a in outs[name]])
            table[name]["fd_nar"] = fd(fake)
            table[name]["fd_nar_border_band"] = fd_band(fake)

    print(f"\n{args.prior} inpainting, {args.n} held-out {s}² scenes, box of a quarter of the image")
    for name, r in table.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if isinstance(v, float)))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "inpaint.json").write_text(json.dumps(
            {"prior": args.prior, "ckpt": str(args.ckpt or "shipped"), "n": args.n, "size": s, "steps": args.steps,
             "temperature": args.temperature if args.temperature is not None else INPAINT_TEMPERATURE,
             "cfg": args.cfg, "class_from": args.class_from, "options": extra_options, "rows": table,
             "environment": environment(torch.device("cpu"))}, indent=2) + "\n")
        for name, images in outs.items():
            tag = "default" if name.startswith("nar") else "paper"
            from PIL import Image
            Image.fromarray(images[0]).resize((512, 512)).save(args.out / f"inpaint_{tag}_scene0.png")


if __name__ == "__main__":
    main()
