"""Generation pipeline: prior.sample -> tokenizer.decode -> PNG files (diffusers-style split:
the prior and the tokenizer know nothing of each other; this module composes them)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nar.core.checkpoint import read_meta
from nar.core.errors import NarError
from nar.pipelines.images import save_grid, save_png, to_uint8
from nar.pipelines.models import resolve_prior_ckpt, resolve_tokenizer_ckpt
from nar.priors import PRIORS, Prior, load_prior
from nar.sampling.filters import validate_sampling_args
from nar.train.loop import pick_device


@dataclass
class SampleSettings:
    prior: str
    n: int = 4
    steps: int | None = None
    size: int | None = None            # output pixels per side (square)
    grid: tuple[int, int] | None = None
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    class_label: str | None = None
    cfg: float = 1.0
    seed: int = 0
    batch_size: int = 8
    options: dict[str, Any] = field(default_factory=dict)  # prior-specific (e.g. temperature_end)


class Generator:
    """A loaded prior + decoder, ready to sample (used by `nar sample`, `nar inpaint`, `nar bench`)."""

    def __init__(self, prior: Prior, tokenizer, device: torch.device, prior_path: Path, tokenizer_path: Path):
        self.prior, self.tokenizer, self.device = prior, tokenizer, device
        self.prior_path, self.tokenizer_path = prior_path, tokenizer_path

    @classmethod
    def load(cls, prior_name: str, ckpt=None, tokenizer=None, device: str = "auto",
             decode_only: bool = True) -> "Generator":
        from nar.tokenizer.api import load_tokenizer, tokenizer_hash

        PRIORS.get(prior_name)  # an unknown name lists the registered priors
        dev = pick_device(device)
        prior_path = resolve_prior_ckpt(prior_name, ckpt)
        meta = read_meta(prior_path)
        tok_path = resolve_tokenizer_ckpt(tokenizer, meta)
        tok_hash = tokenizer_hash(tok_path)
        prior = load_prior(prior_path, name=prior_name, tokenizer_hash=tok_hash, device=dev)
        tok = load_tokenizer(tok_path, decode_only=decode_only, device=dev)
        return cls(prior, tok, dev, prior_path, tok_path)

    @property
    def factor(self) -> int:
        return int(self.tokenizer.factor)

    @property
    def class_names(self) -> list[str]:
        return list(getattr(self.prior, "meta_info", {}).get("class_names") or [])

    def resolve_grid(self, size: int | None, grid: tuple[int, int] | None) -> tuple[int, int]:
        if size is not None and grid is not None:
            raise NarError("give either --size or --grid, not both")
        if size is not None:
            if size < self.factor or size % self.factor:
                raise NarError(f"--size {size} is not a multiple of the tokenizer's factor {self.factor}")
            grid = (size // self.factor, size // self.factor)
        grid = tuple(grid) if grid is not None else tuple(self.prior.train_grid)
        return self.prior.check_grid(grid)

    def resolve_class(self, label: str | None) -> int | None:
        if label is None:
            return None
        if self.prior.num_classes == 0:
            raise NarError(f"--class given, but this {self.prior.name} model is unconditional")
        names = self.class_names
        if label in names:
            return names.index(label)
        if label.isdigit() and int(label) < self.prior.num_classes:
            return int(label)
        raise NarError(f"unknown --class {label!r}; this model knows: {', '.join(names) or self.prior.num_classes}")

    def decode(self, tokens: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([self.tokenizer.decode_tokens(t.to(self.device)).float().cpu()
                              for t in tokens.split(batch_size)])

    def sample_tokens(self, s: SampleSettings, grid: tuple[int, int], class_id: int | None,
                      known=None, keep=None):
        gen = torch.Generator(device=self.device).manual_seed(s.seed)
        cond = None if class_id is None else torch.full((s.n,), class_id, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            return self.prior.sample(s.n, grid, steps=s.steps, temperature=s.temperature, top_k=s.top_k,
                                     top_p=s.top_p, cond=cond, cfg_scale=s.cfg, known=known, keep=keep,
                                     generator=gen, **s.options)


def _output_paths(out_dir: Path, s: SampleSettings) -> tuple[list[Path], Path]:
    stem = f"{s.prior}_seed{s.seed}"
    return [out_dir / f"{stem}_{i:03d}.png" for i in range(s.n)], out_dir / f"{stem}_grid.png"


def run_sample(s: SampleSettings, out_dir: str | Path, ckpt=None, tokenizer=None, device: str = "auto",
               overwrite: bool = False, log=print) -> dict[str, Any]:
    validate_sampling_args(steps=s.steps, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, n=s.n)
    if s.cfg < 0:
        raise NarError(f"--cfg must be >= 0 (got {s.cfg})")
    gen = Generator.load(s.prior, ckpt, tokenizer, device)
    grid = gen.resolve_grid(s.size, s.grid)
    class_id = gen.resolve_class(s.class_label)
    out_dir = Path(out_dir)
    files, grid_file = _output_paths(out_dir, s)
    clash = [p for p in files + [grid_file] if p.exists()]
    if clash and not overwrite:
        raise NarError(f"{clash[0]} exists; pick another --out or --seed, or pass --overwrite")

    if gen.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = gen.sample_tokens(s, grid, class_id)
    if gen.device.type == "cuda":
        torch.cuda.synchronize()
    t_sample = time.perf_counter() - t0
    images = gen.decode(out.tokens)
    t_total = time.perf_counter() - t0

    settings = {k: v for k, v in asdict(s).items() if v is not None and v != {}}
    settings.update(grid=list(grid), image_size=[grid[0] * gen.factor, grid[1] * gen.factor],
                    steps_run=out.steps_run, forward_passes=out.forward_passes, device=str(gen.device),
                    prior_ckpt=str(gen.prior_path), tokenizer_ckpt=str(gen.tokenizer_path))
    meta = {"nar": json.dumps(settings)}
    arrays = to_uint8(images)
    for i, (arr, path) in enumerate(zip(arrays, files)):
        save_png(arr, path, {**meta, "nar_index": str(i)})
    save_grid(images, grid_file, metadata=meta)
    result = {**settings, "files": [str(p) for p in files], "grid_file": str(grid_file),
              "seconds_sampling": t_sample, "seconds_total": t_total}
    log(f"{s.n} image(s) of {settings['image_size'][0]}x{settings['image_size'][1]} with {s.prior}: "
        f"{out.steps_run} step(s) run, {out.forward_passes} forward pass(es), "
        f"{t_sample:.2f}s sampling + {t_total - t_sample:.2f}s decoding -> {out_dir}")
    return result
