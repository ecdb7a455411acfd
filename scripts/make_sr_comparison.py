"""Side-by-side crops of 2x super-resolution: bicubic | SR | true 2x render, for held-out scenes.

    python scripts/make_sr_comparison.py --ckpt nar/assets/models/sr.safetensors --out docs/sr_comparison.png

Each row is one held-out scene rendered at 1024² with 2x supersampling (upscaled to 2048² by bicubic and by the SR net)
and at 2048² (the truth); the crop is the scene's busiest 192² window of the 2048² render, shown
at 2x (nearest) so single pixels are visible.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from nar.core.images import save_png, tensor_to_array
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.train.sr_task import render_pair
from nar.train.tokenizer_task import held_out_seed


def busiest_window(image: torch.Tensor, size: int) -> tuple[int, int]:
    grad = (image[:, 1:, 1:] - image[:, :-1, 1:]).abs().mean(0) + (image[:, 1:, 1:] - image[:, 1:, :-1]).abs().mean(0)
    pooled = F.avg_pool2d(grad[None, None], size, size // 4)[0, 0]
    r, c = divmod(int(pooled.flatten().argmax()), pooled.shape[1])
    return r * (size // 4), c * (size // 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--out", default="docs/sr_comparison.png")
    ap.add_argument("--scenes", default="0,1,2,6", help="held-out indices (set 17)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--zoom", type=int, default=2)
    args = ap.parse_args()
    model = load_sr(args.ckpt)
    rows = []
    for i in (int(v) for v in args.scenes.split(",")):
        lo, hi = render_pair(held_out_seed(17, i), args.size, model.scale)
        sr = upscale_tensor(lo[None], model)[0]
        bic = F.interpolate(lo[None], scale_factor=model.scale, mode="bicubic", align_corners=False)[0].clamp(-1, 1)
        y, x = busiest_window(hi, args.crop)
        cells = [tensor_to_array(t[:, y:y + args.crop, x:x + args.crop]) for t in (bic, sr, hi)]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], 1))
    grid = np.concatenate(rows, 0)
    img = Image.fromarray(grid).resize((grid.shape[1] * args.zoom, grid.shape[0] * args.zoom), Image.NEAREST)
    header = Image.new("RGB", (img.width, 24), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    w = img.width // 3
    for k, label in enumerate(("bicubic 2x", "nar SR 2x", "true 2x render")):
        draw.text((k * w + 8, 6), label, fill=(0, 0, 0))
    out = Image.new("RGB", (img.width, img.height + 24), (255, 255, 255))
    out.paste(header, (0, 0))
    out.paste(img, (0, 24))
    save_png(out, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
