"""`nar inpaint`: image + (mask file | box) -> `Pipeline.inpaint` -> one PNG, settings in its metadata.

Mask convention: white (>= 128) marks pixels to REGENERATE, black marks pixels to keep; the
geometry (latent keep-mask, padding, seam blending) is in `nar.pipelines.masks`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nar.core.errors import NarError
from nar.core.images import load_image, save_png
from nar.pipelines.masks import latent_keep_mask, load_mask, pad_to_multiple, parse_box, seam_alpha  # noqa: F401
from nar.pipelines.pipeline import Pipeline
from nar.sampling import INPAINT_TEMPERATURE


def run_inpaint(prior: str, image_path: str | Path, out_path: str | Path, mask_path=None, box: str | None = None,
                steps: int | None = None, temperature: float = INPAINT_TEMPERATURE, seed: int = 0, class_label: str | None = None,
                cfg: float = 1.0, feather: int = 0, harmonize: bool = True, blend: int | None = None, ckpt=None, tokenizer=None, device: str = "auto",
                overwrite: bool = False, options: dict | None = None, log=print,
                pipeline: Pipeline | None = None) -> dict:
    image_path, out_path = Path(image_path), Path(out_path)
    if out_path.resolve() == image_path.resolve():
        raise NarError("the output must not be the input image (nar never overwrites your files)")
    if out_path.exists() and not overwrite:
        raise NarError(f"{out_path} exists; pick another output path or allow overwriting")
    if (mask_path is None) == (box is None):
        raise NarError("give exactly one of a mask image or a box x0,y0,x1,y1")
    original = np.asarray(load_image(image_path))
    height, width = original.shape[:2]
    regenerate = load_mask(mask_path, width, height) if mask_path else parse_box(box, width, height)
    pipe = pipeline or Pipeline.load(tokenizer=tokenizer, priors={prior: ckpt} if ckpt else None, device=device)
    out = pipe.inpaint(original, regenerate, prior=prior, seed=seed, steps=steps, temperature=temperature,
                       class_name=class_label, cfg=cfg, feather=feather, harmonize=harmonize, blend=blend, **(options or {}))
    info = {**out.settings, "image": str(image_path)}
    save_png(out.images[0], out_path, {"nar": json.dumps(info)})
    log(f"inpainted {info['tokens_regenerated']}/{info['tokens_total']} tokens with {prior} "
        f"({out.steps_run} step(s)) -> {out_path}")
    return {**info, "out": str(out_path)}
