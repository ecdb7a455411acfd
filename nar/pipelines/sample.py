"""`nar sample`: `Pipeline.sample` -> one PNG per image plus a grid, settings in PNG metadata."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nar.core.errors import NarError
from nar.core.images import save_grid, save_png
from nar.core.progress import StepProgress
from nar.pipelines.pipeline import Pipeline


@dataclass
class SampleSettings:
    prior: str
    n: int = 4
    steps: int | None = None
    size: int | None = None            # output pixels per side (square)
    grid: tuple[int, int] | None = None
    temperature: float | None = None   # None: the prior's own (its config's, else 1)
    top_k: int | None = None
    top_p: float | None = None
    class_label: str | None = None
    cfg: float = 1.0
    seed: int = 0
    sharpen: float | None = None       # unsharp mask after the 2x SR (None: the pipeline's default; 0: off)
    options: dict[str, Any] = field(default_factory=dict)  # prior-specific (e.g. temperature_end)


def output_paths(out_dir: str | Path, prior: str, seed: int, n: int) -> tuple[list[Path], Path]:
    stem = f"{prior}_seed{seed}"
    out_dir = Path(out_dir)
    return [out_dir / f"{stem}_{i:03d}.png" for i in range(n)], out_dir / f"{stem}_grid.png"


def run_sample(s: SampleSettings, out_dir: str | Path, ckpt=None, tokenizer=None, device: str = "auto",
               overwrite: bool = False, log=print, pipeline: Pipeline | None = None,
               sr_ckpt=None, progress: bool = False) -> dict[str, Any]:
    """Sizes above the prior's native one (512 for the shipped set; e.g. 1024) are generated at
    that size, decoded, then 2x super-resolved (`Pipeline.sample`, `nar.pipelines.upscale`); the
    PNG metadata's ``super_resolution`` entry says so. ``progress``: a progress bar fed by the
    prior's per-step callback once sampling takes more than a second (AR at large grids)."""
    files, grid_file = output_paths(out_dir, s.prior, s.seed, max(s.n, 0))
    clash = [p for p in files + [grid_file] if p.exists()]
    if clash and not overwrite:
        raise NarError(f"{clash[0]} exists; pick another output folder or seed, or allow overwriting")
    pipe = pipeline or Pipeline.load(tokenizer=tokenizer, priors={s.prior: ckpt} if ckpt else None, device=device)
    unit = "rows" if s.prior == "ar" else "steps"
    with StepProgress(s.prior, unit=unit) as bar:
        out = pipe.sample(prior=s.prior, n=s.n, size=s.size, grid=s.grid, steps=s.steps, temperature=s.temperature,
                          top_k=s.top_k, top_p=s.top_p, class_name=s.class_label, cfg=s.cfg, seed=s.seed,
                          callback=bar if progress else None, sr_ckpt=sr_ckpt, sharpen=s.sharpen,
                          **s.options)
    super_resolve = "super_resolution" in out.settings
    meta = {"nar": json.dumps(out.settings)}
    for i, (image, path) in enumerate(zip(out.images, files)):
        save_png(image, path, {**meta, "nar_index": str(i)})
    save_grid(np.stack([np.asarray(im) for im in out.images]), grid_file, metadata=meta)
    width, height = out.images[0].size
    sr_seconds = out.settings["super_resolution"]["seconds"] if super_resolve else 0.0
    log(f"{s.n} image(s) of {width}x{height} with {s.prior}: "
        f"{out.steps_run} step(s) run, {out.forward_passes} forward pass(es), {out.seconds_sampling:.2f}s "
        f"sampling + {out.seconds_total - out.seconds_sampling - sr_seconds:.2f}s decoding"
        + (f" + {sr_seconds:.2f}s {out.settings['super_resolution']['scale']}x super-resolution" if super_resolve else "") + f" -> {out_dir}")
    return {**out.settings, "files": [str(p) for p in files], "grid_file": str(grid_file),
            "seconds_sampling": out.seconds_sampling, "seconds_total": out.seconds_total}
