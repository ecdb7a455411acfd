"""`Pipeline`: the one way to put a tokenizer and priors on a device and use them together.

    from nar import Pipeline
    pipe = Pipeline.load()                                   # shipped tokenizer + priors, lazily
    pipe = Pipeline.load(tokenizer="runs/tok/model.safetensors",
                         priors={"ar": "runs/ar/model.safetensors"}, device="cuda")
    out = pipe.sample(prior="sundae", n=4, size=1024, class_name="lake", cfg=2.0, seed=0)
    out.images        # list[PIL.Image]
    out.tokens        # (n, h, w) LongTensor (on the CPU)
    out.settings      # dict: what `nar sample` writes into PNG metadata

Public API (stable; the CLI, the bench, training snapshots and the services use it):

- ``Pipeline.load(tokenizer=None, priors=None, device="auto") -> Pipeline``
  ``tokenizer``: a checkpoint path, a loaded `VQGAN`, or None (the tokenizer the given priors
  were trained with when it is still where it was, else the shipped one). ``priors``: None
  (shipped ones) or ``{"ar": path-or-Prior, ...}``; names not in the dict fall back to the
  shipped checkpoint. Nothing heavy happens here: checkpoints load on first use.
- ``pipe.to(device) -> pipe`` (moves whatever is loaded; later loads land there too).
- ``pipe.device``; ``pipe.tokenizer_path``; ``pipe.prior_path(name)``.
- ``pipe.prior(name) -> Prior``: loaded on first use, cached, eval mode; `NarError` for an
  unknown name, a checkpoint of another kind / prior, or one trained on another tokenizer.
- ``pipe.tokenizer -> VQGAN``: decoder-only until something needs the encoder (the full model
  is loaded on the first `encode` / `inpaint`).
- ``pipe.sample(prior="sundae", n=4, size=None, grid=None, steps=None, temperature=None,
  top_k=None, top_p=None, class_name=None, cond=None, cfg=1.0, seed=0, callback=None,
  sr_ckpt=None, **options) -> PipelineOutput``. ``size`` (pixels per side) or ``grid`` ((h, w)
  tokens); neither: the prior's training grid. A ``size`` above the prior's native one
  (``pipe.native_size(name)``: the scenes it learnt) is drawn at it and 2x super-resolved
  (``sr_ckpt``, default the shipped SR net); ``out.tokens`` is then the drawn grid.
  ``class_name`` (a name or a class-id string) or ``cond`` (one id, or a list of n ids).
  ``options`` are prior-specific (e.g. sundae's ``temperature_end``, ``min_change``).
  ``steps``, ``temperature`` and ``top_p`` left None take the prior's own defaults (its config:
  `nar models` lists those set at shipping).
  ``callback(step, total, tokens)`` is called after every sampling step (ar: every finished row).
- ``pipe.inpaint(image, mask, prior="maskgit", seed=0, steps=None, temperature=INPAINT_TEMPERATURE,
  top_k=None, top_p=None, class_name=None, cond=None, cfg=1.0, feather=0, harmonize=True,
  blend=None, callback=None, sr_ckpt=None,
  **options) -> PipelineOutput``. ``image``: PIL image, (H, W, 3) uint8 array or path;
  ``mask``: (H, W) bool array / PIL image / path, WHITE (True) = regenerate. Kept pixels come
  back unchanged, and with the default ``feather=0`` nothing of the original under the mask
  survives; ``out.images`` holds one image of the input's size (one of at least twice the
  native size is filled at 1/2^k of it, the fill super-resolved).
- ``pipe.decode(tokens, tile=None) -> list[PIL.Image]`` ((h, w) or (B, h, w) tokens);
  ``pipe.decode_tensor(tokens, tile=None) -> (B, 3, H, W)`` float in [-1, 1] on the CPU.
  ``tile``: True decodes in tiles, False whole, None (default: the pipeline's ``tile``, set
  by ``Pipeline.load(..., tile=None, max_memory=None)``) as the memory estimate says; work
  estimated over ``max_memory`` or running out of memory raises `NarMemoryError`.
- ``pipe.encode(image) -> tokens``: (h, w) for one image (PIL, array, path, (3, H, W) tensor
  in [-1, 1]), (B, h, w) for a batch (a list of those, or a (B, 3, H, W) tensor).
- ``PipelineOutput``: ``images``, ``tokens``, ``settings``, plus ``steps_run``,
  ``forward_passes``, ``seconds_sampling``, ``seconds_total``.

Same seed, same device -> same tokens and images as `nar sample` (which is a thin shell over
`Pipeline.sample`): the prior draws all n samples in one call from a generator seeded once.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from nar.core.checkpoint import read_meta
from nar.core.device import pick_device, use_bf16
from nar.core.errors import ArgumentError, NarError
from nar.core.images import load_image, to_tensor, to_uint8
from nar.core.timing import sync
from nar.pipelines.seams import extend_from_kept, fill_from_kept, harmonize_seam
from nar.pipelines.masks import downscale_for_fill, latent_keep_mask, pad_to_multiple, seam_alpha
from nar.pipelines.models import default_tokenizer_path, resolve_prior_ckpt
from nar.pipelines.upscale import (fill_passes, load_sr, prior_native_size, resolve_sharpen, resolve_sr_ckpt,
                                   sample_plan, upscale, upscale_output)
from nar.priors import PRIORS, Prior, load_prior
from nar.priors.base import default_grid
from nar.sampling import INPAINT_PRIOR, INPAINT_TEMPERATURE, inpaint_options
from nar.tokenizer.load import load_tokenizer, tokenizer_hash
from nar.tokenizer.model import VQGAN

__all__ = ["Pipeline", "PipelineOutput"]

DECODE_BATCH = 4   # images decoded per batch (1024² decodes are memory-hungry)


@dataclass
class PipelineOutput:
    images: list[Image.Image]
    tokens: torch.Tensor                 # (n, h, w) long, on the CPU
    settings: dict[str, Any] = field(default_factory=dict)
    steps_run: int = 0                   # sampling steps the prior actually took
    forward_passes: int = 0              # network evaluations (a CFG pair counts once)
    seconds_sampling: float = 0.0        # prior only (CUDA synchronized)
    seconds_total: float = 0.0           # prior + decode


class Pipeline:
    """A tokenizer and any number of priors on one device. See the module docstring."""

    def __init__(self, tokenizer: str | Path | VQGAN | None = None,
                 priors: dict[str, str | Path | Prior] | None = None, device: str | torch.device = "auto",
                 tile: bool | None = None, max_memory: str | int | None = None, precision: str | None = None):
        self.device = pick_device(device)
        # precision of prior sampling and decoding: auto (bf16 where the hardware has it natively),
        # fp32 or bf16; None: each prior's own sample_precision, auto for the decoder
        self.precision = precision
        use_bf16(self.device, self.decode_precision)  # a bad name fails here, not at the first sample
        # tokenizer in tiles: True always, False never, None when too big to run whole (issue 20);
        # max_memory: the limit work is checked against (default $NAR_MAX_MEMORY or 8 GiB)
        self.tile, self.max_memory = tile, max_memory
        self._prior_sources: dict[str, Path | Prior] = {}
        for name, source in (priors or {}).items():
            self._prior_sources[name] = source if isinstance(source, Prior) else Path(source)
        self._priors: dict[str, Prior] = {}
        self._decoder: VQGAN | None = None    # decode-only tokenizer
        self._full: VQGAN | None = None       # with encoder
        if isinstance(tokenizer, VQGAN):
            self.tokenizer_path = getattr(tokenizer, "path", None)
            if tokenizer.decode_only:
                self._decoder = tokenizer.to(self.device)
            else:
                self._full = tokenizer.to(self.device)
        else:
            self.tokenizer_path = self._resolve_tokenizer_path(tokenizer)
        self._tokenizer_hash: str | None = None

    @property
    def decode_precision(self) -> str:
        """The decoder's precision: the one asked for, else auto (bf16 where native)."""
        return self.precision or "auto"

    @classmethod
    def load(cls, tokenizer: str | Path | VQGAN | None = None, priors: dict[str, str | Path | Prior] | None = None,
             device: str | torch.device = "auto", tile: bool | None = None,
             max_memory: str | int | None = None, precision: str | None = None) -> "Pipeline":
        return cls(tokenizer, priors, device, tile=tile, max_memory=max_memory, precision=precision)

    def _resolve_tokenizer_path(self, tokenizer: str | Path | None) -> Path:
        """The given tokenizer; else the one the given priors were trained with, when it is
        still where it was; else the shipped default."""
        if tokenizer is not None:
            return Path(tokenizer)
        for source in self._prior_sources.values():
            recorded = read_meta(source).get("tokenizer_path") if isinstance(source, Path) else None
            if recorded and Path(recorded).exists():
                return Path(recorded)
        path = default_tokenizer_path()
        if not path.exists():
            raise NarError(f"no tokenizer given and none installed at {path}")
        return path

    def to(self, device: str | torch.device) -> "Pipeline":
        self.device = pick_device(device)
        for module in (self._decoder, self._full, *self._priors.values()):
            if module is not None:
                module.to(self.device)
        return self

    # ---- models, loaded on first use ------------------------------------------------------
    @property
    def tokenizer_hash(self) -> str | None:
        if self._tokenizer_hash is None:
            loaded = self._full or self._decoder
            if loaded is not None and getattr(loaded, "hash", None):
                self._tokenizer_hash = loaded.hash
            elif self.tokenizer_path is not None:
                self._tokenizer_hash = tokenizer_hash(self.tokenizer_path)
        return self._tokenizer_hash

    @property
    def tokenizer(self) -> VQGAN:
        """The tokenizer: decoder-only unless the encoder has been needed already."""
        if self._full is not None:
            return self._full
        if self._decoder is None:
            self._decoder = load_tokenizer(self._require_tokenizer_path(), decode_only=True, device=self.device)
        return self._decoder

    def full_tokenizer(self) -> VQGAN:
        """The tokenizer with its encoder (loaded now if only the decoder was)."""
        if self._full is None:
            self._full = load_tokenizer(self._require_tokenizer_path(), decode_only=False, device=self.device)
            self._decoder = None
        return self._full

    def _require_tokenizer_path(self) -> Path:
        if self.tokenizer_path is None:
            raise NarError("this pipeline's tokenizer was given decode-only and has no checkpoint to "
                           "load its encoder from")
        return Path(self.tokenizer_path)

    @property
    def factor(self) -> int:
        return int(self.tokenizer.factor)

    def prior_path(self, name: str) -> Path | None:
        source = self._prior_sources.get(name)
        if isinstance(source, Prior):
            return getattr(source, "path", None)
        return source if source is not None else resolve_prior_ckpt(name, None)

    def prior(self, name: str) -> Prior:
        """The prior called ``name``, loaded (and checked against the tokenizer) on first use."""
        if name in self._priors:
            return self._priors[name]
        PRIORS.get(name)  # an unknown name lists the registered priors
        source = self._prior_sources.get(name)
        if isinstance(source, Prior):
            prior = source.to(self.device).eval()
        else:
            path = source if source is not None else resolve_prior_ckpt(name, None)
            prior = load_prior(path, name=name, tokenizer_hash=self.tokenizer_hash, device=self.device)
            prior.path = Path(path)
        self._priors[name] = prior
        return prior

    def native_size(self, prior: str) -> int:
        """The largest image side ``prior`` draws directly (`nar.pipelines.upscale.prior_native_size`: the
        scenes it learnt, 512 for the shipped set); larger sizes go through super-resolution."""
        return prior_native_size(self.prior(prior), self.factor)

    def class_names(self, prior: str) -> list[str]:
        return list(getattr(self.prior(prior), "meta_info", {}).get("class_names") or [])

    # ---- argument resolution ------------------------------------------------------------
    def resolve_grid(self, prior: str, size: int | None = None, grid: Sequence[int] | None = None
                     ) -> tuple[int, int]:
        p = self.prior(prior)
        if size is not None and grid is not None:
            raise ArgumentError("size", "give either an image size or a token grid, not both")
        if size is not None:
            f = self.factor
            if size < f or size % f:
                raise ArgumentError("size", f"image size {size} is not a multiple of the tokenizer's factor {f}")
            grid = (size // f, size // f)
        if grid is None:   # a window-trained prior samples the grid of its data, not its window
            grid = default_grid(getattr(p, "meta_info", {})) or p.train_grid
        grid = tuple(grid)
        return p.check_grid(grid)

    def resolve_class(self, prior: str, class_name: str | None) -> int | None:
        """A class name (or a class-id string) -> class id; None stays unconditional."""
        if class_name is None:
            return None
        p = self.prior(prior)
        if p.num_classes == 0:
            raise ArgumentError("class_name", f"a class was asked for, but this {p.name} model is unconditional")
        names = self.class_names(prior)
        if class_name in names:
            return names.index(class_name)
        if str(class_name).isdigit() and int(class_name) < p.num_classes:
            return int(class_name)
        raise ArgumentError("class_name", f"unknown class {class_name!r}; this model knows: "
                            f"{', '.join(names) or p.num_classes}")

    def _cond(self, prior: str, n: int, class_name: str | None, cond) -> torch.Tensor | None:
        if class_name is not None and cond is not None:
            raise ArgumentError("class_name", "give either a class name or class ids, not both")
        class_id = self.resolve_class(prior, class_name)
        if class_id is not None:
            return torch.full((n,), class_id, dtype=torch.long, device=self.device)
        if cond is None:
            return None
        ids = torch.as_tensor(cond, dtype=torch.long).flatten()
        if ids.numel() == 1:
            ids = ids.expand(n)
        if ids.numel() != n:
            raise ArgumentError("cond", f"{ids.numel()} class ids given for {n} images")
        return ids.to(self.device)

    # ---- tokens <-> images ----------------------------------------------------------------
    def decode_tensor(self, tokens: torch.Tensor, batch_size: int = DECODE_BATCH,
                      tile: bool | None = None) -> torch.Tensor:
        """(B, h, w) or (h, w) tokens -> (B, 3, H, W) float images in [-1, 1]-ish, on the CPU.
        ``tile`` (default: the pipeline's): decode in tiles (True), whole (False), or as the
        memory estimate says (None); `NarMemoryError` beyond the memory limit or out of memory."""
        from nar.tokenizer.tiling import decode_images
        tokens = torch.as_tensor(tokens)
        if tokens.ndim == 2:
            tokens = tokens[None]
        return decode_images(self.tokenizer, tokens, tile=self.tile if tile is None else tile,
                             max_memory=self.max_memory, batch_size=batch_size, precision=self.decode_precision)

    def decode(self, tokens: torch.Tensor, tile: bool | None = None) -> list[Image.Image]:
        return [Image.fromarray(a) for a in to_uint8(self.decode_tensor(tokens, tile=tile))]

    def encode(self, image, tile: bool | None = None) -> torch.Tensor:
        """One image -> (h, w) tokens; a batch (list, or (B, 3, H, W) tensor) -> (B, h, w).
        ``tile`` as in `decode_tensor`."""
        from nar.tokenizer.tiling import encode_images
        x, single = _as_batch(image)
        tokens = encode_images(self.full_tokenizer(), x, tile=self.tile if tile is None else tile,
                               max_memory=self.max_memory).cpu()
        return tokens[0] if single else tokens

    # ---- generation -----------------------------------------------------------------------
    def _run_prior(self, prior: str, n: int, grid: tuple[int, int], *, steps, temperature, top_k, top_p,
                   cond, cfg, seed, callback, known=None, keep=None, options=None):
        p = self.prior(prior)
        kwargs = dict(options or {})
        accepts_callback = ("callback" in inspect.signature(p.sample).parameters
                            or "callback" in getattr(p, "sample_options", ()))
        if callback is not None and accepts_callback:
            kwargs["callback"] = callback
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        sync(self.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = p.sample(n, grid, steps=steps, temperature=temperature,
                           top_k=top_k, top_p=top_p, cond=cond, cfg_scale=cfg, known=known, keep=keep,
                           generator=gen, precision=self.precision, **kwargs)
        sync(self.device)
        seconds = time.perf_counter() - t0
        if callback is not None and not accepts_callback:
            callback(out.steps_run, out.steps_run, out.tokens)
        return out, t0, seconds

    def _settings(self, prior: str, **values) -> dict[str, Any]:
        settings = {"prior": prior, **{k: v for k, v in values.items() if v is not None and v != {}}}
        bf16 = {"prior": self.prior(prior).samples_in_bf16(self.precision),
                "decoder": use_bf16(self.device, self.decode_precision)}
        settings.update(device=str(self.device), prior_ckpt=str(self.prior_path(prior)),
                        tokenizer_ckpt=str(self.tokenizer_path),
                        precision={k: "bf16" if v else "fp32" for k, v in bf16.items()})
        return settings

    def sample(self, prior: str = "sundae", n: int = 4, size: int | None = None, grid: Sequence[int] | None = None,
               steps: int | None = None, temperature: float | None = None, top_k: int | None = None,
               top_p: float | None = None, class_name: str | None = None, cond=None, cfg: float = 1.0,
               seed: int = 0, callback: Callable | None = None, sr_ckpt: str | Path | None = None,
               sharpen: float | None = None, **options: Any) -> PipelineOutput:
        """n images from ``prior``: tokens sampled in one call, then decoded. A ``size`` above the
        prior's native one (`native_size`) is drawn at that size and 2x super-resolved up to
        ``size`` (``sr_ckpt``: the SR model, default the shipped one; ``sharpen``: the unsharp mask
        on the first pass's output, default `nar.pipelines.upscale.SHARPEN`, 0 = off); ``tokens``
        stay the drawn grid."""
        if cfg is None or cfg < 0:
            raise ArgumentError("cfg", f"the guidance scale cfg must be >= 0 (got {cfg})")
        sharpen = resolve_sharpen(sharpen)   # a bad amount is said before any sampling
        p = self.prior(prior)
        p.check_sample_args(n=n, steps=steps, temperature=temperature, top_k=top_k, top_p=top_p)
        size, sr_passes = sample_plan(size, self.native_size(prior)) if grid is None else (size, 0)
        if sr_passes:
            resolve_sr_ckpt(sr_ckpt)   # a missing SR model is said before any sampling
        grid = self.resolve_grid(prior, size, grid)
        cond_ids = self._cond(prior, n, class_name, cond)
        out, t0, t_sample = self._run_prior(prior, n, grid, steps=steps, temperature=temperature, top_k=top_k,
                                            top_p=top_p, cond=cond_ids, cfg=cfg, seed=seed, callback=callback,
                                            options=options)
        pixels = self.decode_tensor(out.tokens)
        t_total = time.perf_counter() - t0
        f = self.factor
        settings = self._settings(
            prior, n=n, steps=steps, size=size, temperature=p.resolve_temperature(temperature),
            top_k=top_k, top_p=p.resolve_top_p(top_p), class_label=class_name,
            cond=None if cond is None else [int(c) for c in torch.as_tensor(cond).flatten()],
            cfg=cfg, seed=seed, options=dict(options), grid=list(grid), image_size=[grid[0] * f, grid[1] * f],
            steps_run=out.steps_run, forward_passes=out.forward_passes)
        images = [Image.fromarray(a) for a in to_uint8(pixels)]
        result = PipelineOutput(images=images, tokens=out.tokens.cpu(), settings=settings, steps_run=out.steps_run,
                                forward_passes=out.forward_passes, seconds_sampling=t_sample, seconds_total=t_total)
        return (upscale_output(result, sr_ckpt, self.device, passes=sr_passes, sharpen=sharpen) if sr_passes
                else result)

    def inpaint(self, image, mask, prior: str = INPAINT_PRIOR, seed: int = 0, steps: int | None = None,
                temperature: float | None = INPAINT_TEMPERATURE, top_k: int | None = None, top_p: float | None = None,
                class_name: str | None = None, cond=None, cfg: float = 1.0, feather: int = 0,
                harmonize: bool = True, blend: int | None = None, callback: Callable | None = None,
                sr_ckpt: str | Path | None = None, **options: Any) -> PipelineOutput:
        """Regenerate the masked (white / True) part of ``image``; kept pixels come back unchanged
        and, by default, nothing of the original under the mask reaches the result: the masked
        pixels are replaced by a fill from the kept ones before encoding. A token is kept only
        when all f×f pixels of its block are kept (SUNDAE §3.5). ``temperature`` defaults to
        `nar.sampling.INPAINT_TEMPERATURE` (0.7: a fill must agree with its surroundings); None
        samples at the prior's own default, as free generation does (`Prior.resolve_temperature`).
        ``options`` start from the prior's entry in `nar.sampling.INPAINT_OPTIONS` (maskgit:
        refinement on; ``refine_rounds=0`` turns it off; a maskgit fill keeps ``temperature`` over
        all its steps, where free draws cool, `nar.sampling.inpaint_options`).

        Seam: ``harmonize`` adds the kept band's residual (original - decoded, kept pixels only)
        smoothly to the region; ``blend`` (default one tokenizer cell) ramps the first pixels
        inside towards the kept border carried across it (each ring repeats its nearest kept
        neighbour). ``feather`` (default 0) is the only
        setting that mixes original pixels under the mask back in, over that many pixels.
        An image of at least twice the prior's native size is filled at 1/2^k of its size and the
        fill super-resolved (`nar.pipelines.upscale.fill_passes`; ``sr_ckpt``, default the shipped
        SR model), as `sample` draws sizes above the native one."""
        original = _as_array(image)
        height, width = original.shape[:2]
        regenerate = _as_mask(mask, width, height)
        if not regenerate.any():
            raise NarError("the mask is empty: nothing to regenerate (white = regenerate)")
        if cfg is None or cfg < 0:
            raise ArgumentError("cfg", f"the guidance scale cfg must be >= 0 (got {cfg})")
        if feather < 0:
            raise ArgumentError("feather", f"the seam feather width must be >= 0 pixels (got {feather})")
        if blend is not None and blend < 0:
            raise ArgumentError("blend", f"the seam blend width must be >= 0 pixels (got {blend})")
        p = self.prior(prior)
        p.check_sample_args(n=1, steps=steps, temperature=temperature, top_k=top_k, top_p=top_p)
        options = inpaint_options(p.name, options, temperature)
        f = self.full_tokenizer().factor
        filled = fill_from_kept(original, regenerate)   # the original under the mask is never seen
        # above the prior's native size the fill is drawn at 1/2^k of it, then super-resolved
        passes = fill_passes(max(height, width), self.native_size(prior))
        if passes:
            resolve_sr_ckpt(sr_ckpt)
        small, regen_small = downscale_for_fill(filled, regenerate, 1 << passes)
        # pad to whole tokens, and to whole hourglass patches for priors that need them
        padded, regen_padded = pad_to_multiple(small, regen_small, f * p.grid_multiple)
        grid = p.check_grid((padded.shape[0] // f, padded.shape[1] // f))
        known = self.encode(padded)[None].to(self.device)
        keep = latent_keep_mask(regen_padded, f)[None].to(self.device)
        cond_ids = self._cond(prior, 1, class_name, cond)
        out, t0, t_sample = self._run_prior(prior, 1, grid, steps=steps, temperature=temperature, top_k=top_k,
                                            top_p=top_p, cond=cond_ids, cfg=cfg, seed=seed, callback=callback,
                                            known=known, keep=keep, options=options)
        generated = to_uint8(self.decode_tensor(out.tokens))[0][:small.shape[0], :small.shape[1]]
        if passes:
            generated = np.asarray(upscale(Image.fromarray(generated), load_sr(sr_ckpt, self.device), passes=passes))
        generated = generated[:height, :width]
        if harmonize:  # carry the kept band's residual (original - decoded) smoothly into the region
            generated = harmonize_seam(original, generated, regenerate, band=f)
        blend = f if blend is None else blend   # default: one tokenizer cell
        ramp = seam_alpha(regenerate, blend)[..., None]
        border = extend_from_kept(original, regenerate, blend)   # kept pixels carried across, never masked ones
        result = ramp * border.astype(np.float64) + (1 - ramp) * generated.astype(np.float64)
        if feather > 0:   # asked for: original pixels under the mask fade back in near the border
            alpha = seam_alpha(regenerate, feather)[..., None]
            result = alpha * original.astype(np.float64) + (1 - alpha) * result
        result = np.where(regenerate[..., None], np.round(result), original).astype(np.uint8)
        settings = self._settings(prior, steps=steps, steps_run=out.steps_run, seed=seed,
                                  temperature=p.resolve_temperature(temperature), top_k=top_k,
                                  top_p=p.resolve_top_p(top_p), class_label=class_name, cfg=cfg, feather=feather,
                                  harmonize=harmonize, blend=blend, options=dict(options), tokens_regenerated=int((~keep).sum()),
                                  super_resolution={"passes": passes, "fill_size": list(small.shape[:2])} if passes else None,
                                  tokens_total=grid[0] * grid[1])
        return PipelineOutput(images=[Image.fromarray(result)], tokens=out.tokens.cpu(), settings=settings,
                              steps_run=out.steps_run, forward_passes=out.forward_passes,
                              seconds_sampling=t_sample, seconds_total=time.perf_counter() - t0)


# ---- input coercion -------------------------------------------------------------------------------
def _as_array(image) -> np.ndarray:
    """PIL image / path / (H, W, 3) uint8 array -> (H, W, 3) uint8 array."""
    if isinstance(image, (str, Path)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise NarError(f"expected an RGB image ((H, W, 3) uint8), got {image.dtype} {image.shape}")
    return image


def _as_mask(mask, width: int, height: int) -> np.ndarray:
    """bool array / PIL image / path -> (H, W) bool regenerate-mask (white = regenerate)."""
    if isinstance(mask, (str, Path)):
        mask = load_image(mask)
    if isinstance(mask, Image.Image):
        if mask.size != (width, height):
            raise NarError(f"the mask is {mask.size[0]}x{mask.size[1]}, the image is {width}x{height}")
        mask = np.asarray(mask.convert("L")) >= 128
    mask = np.asarray(mask)
    if mask.shape != (height, width):
        raise NarError(f"the mask has shape {mask.shape}, the image is {height}x{width} (H x W)")
    return mask.astype(bool) if mask.dtype == bool else mask >= (128 if mask.dtype == np.uint8 else 0.5)


def _as_batch(image) -> tuple[torch.Tensor, bool]:
    """Anything image-like -> ((B, 3, H, W) in [-1, 1], whether it was one image)."""
    if torch.is_tensor(image):
        if image.ndim == 3:
            return image[None].float(), True
        if image.ndim == 4:
            return image.float(), False
        raise NarError(f"expected image tensors of shape (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    if isinstance(image, (list, tuple)):
        return torch.stack([to_tensor(_as_array(i)) for i in image]), False
    return to_tensor(_as_array(image))[None], True
