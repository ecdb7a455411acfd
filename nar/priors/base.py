"""The interface every prior implements, and what they share (conditioning, CFG, checks, and
the sampling envelope).

A prior models a grid of token ids (B, h, w) with ids in [0, codebook_size). It never sees
the tokenizer: pipelines compose the two. Class conditioning uses an embedding table with
``num_classes + 1`` rows; the last row is the "no condition" id, used for unconditional
sampling and dropped with probability ``cond_drop_prob`` in training so that classifier-free
guidance works: ``logits = l_uncond + cfg * (l_cond - l_uncond)`` (cfg = 1: plain conditional).

Sampling has one envelope, `Prior.sample`, shared by every prior: it checks the arguments
(counts, ranges, options, class ids, inpainting inputs, the generator's device), switches to
eval mode (restored afterwards), runs under ``torch.inference_mode`` and the prior's sampling
precision, and hands a checked `SampleRequest` to the prior's own ``_sample``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from nar.core.config import from_dict, to_dict
from nar.core.device import PRECISIONS, use_bf16
from nar.core.errors import ArgumentError, NarError
from nar.nn.attention import start_new_blocks_as_identity
from nar.sampling.filters import validate_sampling_args


@dataclass
class SampleOutput:
    tokens: torch.Tensor   # (n, h, w) long
    steps_run: int         # sampling steps actually taken (early stopping can cut them)
    forward_passes: int    # network evaluations (a CFG pair runs as one batched pass)


@dataclass
class SampleRequest:
    """Checked sampling arguments, as a prior's ``_sample`` receives them."""
    n: int
    grid: tuple[int, int]                  # (h, w)
    steps: int | None                      # None: the prior's default
    temperature: float
    top_k: int | None
    top_p: float | None
    class_ids: torch.Tensor                # (n,) long on the model's device; the null id = unconditional
    cfg_scale: float
    known: torch.Tensor | None             # (n, h, w) long, with keep
    keep: torch.Tensor | None              # (n, h, w) bool: True = the known token stays
    generator: torch.Generator | None
    options: dict[str, Any]                # prior-specific, names in ``sample_options``
    callback: Callable[[int, int, torch.Tensor], Any] | None = None  # see `Prior.sample`
    bf16: bool = False                     # sampling runs under bf16 autocast (see `Prior.sample`)


class Prior(nn.Module):
    name: ClassVar[str]
    config_cls: ClassVar[type]
    default_steps: ClassVar[int | None] = None
    sample_options: ClassVar[tuple[str, ...]] = ()   # prior-specific keyword options of ``sample``

    def __init__(self, cfg, codebook_size: int, num_classes: int = 0,
                 train_grid: tuple[int, int] = (16, 16)):
        super().__init__()
        self.cfg = cfg
        self.codebook_size = int(codebook_size)
        self.num_classes = int(num_classes)
        self.train_grid = tuple(int(x) for x in train_grid)

    def adopts(self, meta: dict) -> bool:
        """Whether a checkpoint to start from (``meta``) goes through ``adopt_weights``, a mapping,
        rather than a plain copy: by default, one of another prior that this one can adopt."""
        return meta.get("name") != self.name and hasattr(self, "adopt_weights")

    def _load_adopted(self, mapped: dict[str, torch.Tensor], source: str, hint: str) -> None:
        """Load another prior's tensors, renamed to this one's (``adopt_weights``); every tensor
        must be there with this prior's shape, else one clear error (``hint``: what to match).
        Whole transformer blocks the parent lacks (a deeper network) start as the identity."""
        own = self.state_dict()
        loaded = {k for k in own if k in mapped}
        added = set()
        for name in start_new_blocks_as_identity(self, loaded):  # blocks the parent lacks start as the identity
            added |= {k for k in own if k.startswith(name + ".")}
        wrong = sorted(k for k in own if k not in added and (k not in mapped or mapped[k].shape != own[k].shape))
        if wrong:
            raise NarError(f"the {source} checkpoint does not fit this {self.name} config ({len(wrong)} tensors "
                           f"missing or of another shape, e.g. {wrong[0]}): {hint}")
        self.load_state_dict({k: mapped[k].to(own[k].dtype) for k in loaded}, strict=False)

    # ---- what each prior implements -------------------------------------------------
    def loss(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training loss on (B, h, w) tokens; returns {"loss": scalar, ...named parts}."""
        raise NotImplementedError

    def _sample(self, request: SampleRequest) -> SampleOutput:
        """Sample from checked arguments; runs inside the envelope of `sample`."""
        raise NotImplementedError

    # ---- the sampling envelope ------------------------------------------------------------
    def sample(self, n: int, grid: tuple[int, int] | None = None, steps: int | None = None,
               temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
               cond: torch.Tensor | None = None, cfg_scale: float = 1.0, known: torch.Tensor | None = None,
               keep: torch.Tensor | None = None, generator: torch.Generator | None = None,
               callback: Callable[[int, int, torch.Tensor], Any] | None = None, precision: str | None = None,
               **options: Any) -> SampleOutput:
        """(n, h, w) tokens on an h×w ``grid`` (default: the training grid). ``cond``: one class
        id or n of them (None: unconditional); ``cfg_scale``: classifier-free guidance.
        Inpainting: ``known`` (n, h, w) ids and ``keep`` (n, h, w) bool; positions where keep
        is True come back unchanged. ``options``: the prior's own (``sample_options``).
        ``temperature`` and ``top_p`` left None take the config's own (`resolve_temperature`,
        `resolve_top_p`): a shipped model draws with the settings it was measured at.

        ``callback(step, total, tokens)`` (diffusers' convention) is called after each step:
        ``step`` counts from 0 to ``total - 1``, ``tokens`` is the current (n, h, w) sample
        (read it, do not keep or modify it: clone what you need). maskgit and sundae call it
        once per denoising step (``total`` = the planned steps; sundae's early stop ends the
        calls before ``total``, which stays the planned number); ar once per finished row
        (``total`` = rows).

        ``precision`` (``auto`` | ``fp32`` | ``bf16``; None: the config's ``sample_precision``,
        fp32 for priors without one): ``auto`` samples under bf16 autocast where the hardware
        has native bf16 (CUDA, or a CPU with AVX512-BF16 / AMX: about 1.7x faster there), so
        the same seed gives other tokens on machines that differ in this (logits are rounded
        differently); ``fp32`` reproduces across machines.

        Checks every argument first, then samples in eval mode (the caller's mode is
        restored), under ``torch.inference_mode`` and that precision. The tokens returned are
        an ordinary tensor (not an inference tensor)."""
        request = self.check_request(n, grid, steps, temperature, top_k, top_p, cond, cfg_scale, known, keep,
                                     generator, options)
        if callback is not None and not callable(callback):
            raise ArgumentError("callback", f"callback must be callable as callback(step, total, tokens), got {callback!r}")
        request.callback = callback
        request.bf16 = self.samples_in_bf16(precision)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), self.sampling_precision(precision):
                out = self._sample(request)
        finally:
            self.train(was_training)
        return SampleOutput(tokens=out.tokens.clone(), steps_run=int(out.steps_run),
                            forward_passes=int(out.forward_passes))

    def check_request(self, n, grid, steps, temperature, top_k, top_p, cond, cfg_scale, known, keep,
                      generator, options) -> SampleRequest:
        unknown = sorted(set(options) - set(self.sample_options))
        if unknown:
            known_names = ", ".join(self.sample_options) or "none"
            raise ArgumentError("options", f"{self.name}: unknown sampling option(s) {unknown}; known: {known_names}")
        if not isinstance(n, int) or isinstance(n, bool):
            raise ArgumentError("n", f"the number of samples n must be an integer, got {n!r}")
        self.check_sample_args(n=n, steps=steps, temperature=temperature, top_k=top_k, top_p=top_p)
        temperature, top_p = self.resolve_temperature(temperature), self.resolve_top_p(top_p)
        if cfg_scale is None or cfg_scale < 0:
            raise ArgumentError("cfg", f"the guidance scale cfg_scale must be >= 0 (got {cfg_scale})")
        h, w = self.check_grid(grid if grid is not None else self.train_grid)
        class_ids = self.class_ids(cond, n)
        if tuple(class_ids.shape) != (n,):
            raise ArgumentError("cond", f"{self.name}: give one class id or {n} of them (one per sample), "
                                        f"got {class_ids.numel()} in shape {tuple(class_ids.shape)}")
        known, keep = self.check_inpaint(n, (h, w), known, keep)
        self.check_generator(generator)
        return SampleRequest(n=n, grid=(h, w), steps=None if steps is None else int(steps),
                             temperature=float(temperature), top_k=top_k, top_p=top_p, class_ids=class_ids,
                             cfg_scale=float(cfg_scale), known=known, keep=keep, generator=generator,
                             options=dict(options))

    def resolve_temperature(self, temperature: float | None) -> float:
        """The temperature a call samples with: the caller's, else its config's (a config may carry
        the one its model was measured best at: ar's ``temperature``), else 1."""
        return float(temperature) if temperature is not None else float(getattr(self.cfg, "temperature", 1.0))

    def resolve_top_p(self, top_p: float | None) -> float | None:
        """The nucleus filter a call samples with: the caller's, else its config's (a config may
        carry the one its model samples best with: ar's ``top_p``), else none."""
        return top_p if top_p is not None else getattr(self.cfg, "top_p", None)

    def samples_in_bf16(self, precision: str | None = None) -> bool:
        """Whether sampling with ``precision`` (None: the config's ``sample_precision``, fp32 for
        priors without one) runs in bf16 on this prior's device (see `Prior.sample`)."""
        mode = precision if precision is not None else getattr(self.cfg, "sample_precision", "fp32")
        try:
            return use_bf16(self.device, mode)
        except NarError:
            raise ArgumentError("precision", f"{self.name}: precision must be one of {', '.join(PRECISIONS)}, "
                                             f"got {mode!r}") from None

    def sampling_precision(self, precision: str | None = None):
        """bf16 autocast when `samples_in_bf16` says so, else a no-op context."""
        if self.samples_in_bf16(precision):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def flops_per_image(self, grid: tuple[int, int], steps_run: int | None = None,
                        forward_passes: int | None = None) -> int | None:
        """Analytic sampling FLOPs for one image on an h×w grid without guidance (CFG doubles
        them), counted as in ``nar.nn.flops``, given the steps and network evaluations the
        sampler reported. None when the prior has no formula."""
        return None

    flops_note: ClassVar[str] = ""  # how ``flops_per_image`` counts, for benchmark tables

    def init_from_codebook(self, codebook: torch.Tensor) -> bool:
        """Optionally initialise token embeddings from the tokenizer's (V, d) code vectors.
        Returns whether the prior used them."""
        return False

    # ---- shared helpers ---------------------------------------------------------------
    @property
    def null_class(self) -> int:
        return self.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def class_ids(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Condition ids for a batch: the given classes, or the null id when unconditional."""
        if cond is None:
            return torch.full((batch,), self.null_class, dtype=torch.long, device=self.device)
        cond = cond.to(self.device, torch.long)
        if cond.ndim == 0:
            cond = cond.expand(batch)
        if ((cond < 0) | (cond > self.null_class)).any():
            raise ArgumentError("cond", f"class id out of range [0, {self.num_classes})")
        return cond

    def training_regions(self, batch: int, grid: tuple[int, int]) -> torch.Tensor | None:
        """Training: where each sample may be corrupted / masked, (B, h, w) bool, or None for
        everywhere. With ``box_corruption`` = p, a share p of the samples is corrupted only
        inside a random box (sides uniform in [1/4, 3/4] of the grid), clean outside: the
        inpainting setting, in which the tokens along the box's border must continue their clean
        neighbours. Draws from the global RNG (seeded per step by the loop); none when p = 0."""
        p = getattr(self.cfg, "box_corruption", 0.0)
        if p <= 0:
            return None
        h, w = grid
        device = self.device
        boxed = torch.rand(batch, device=device) < p
        bh = (h * (0.25 + 0.5 * torch.rand(batch, device=device))).long().clamp(1, h)
        bw = (w * (0.25 + 0.5 * torch.rand(batch, device=device))).long().clamp(1, w)
        top = (torch.rand(batch, device=device) * (h - bh + 1)).long()
        left = (torch.rand(batch, device=device) * (w - bw + 1)).long()
        rows = torch.arange(h, device=device)[None, :, None]
        cols = torch.arange(w, device=device)[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < (top + bh)[:, None, None])
                  & (cols >= left[:, None, None]) & (cols < (left + bw)[:, None, None]))
        return inside | ~boxed[:, None, None]

    def drop_condition(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Training: replace each class id by the null id with probability cond_drop_prob
        (draws from the global RNG, which the training loop seeds per step)."""
        ids = self.class_ids(cond, batch)
        p = getattr(self.cfg, "cond_drop_prob", 0.0)
        if cond is not None and p > 0:
            drop = torch.rand(batch, device=ids.device) < p
            ids = torch.where(drop, torch.full_like(ids, self.null_class), ids)
        return ids

    def guided(self, forward: Callable[..., torch.Tensor], class_ids: torch.Tensor, cfg_scale: float,
               *inputs: torch.Tensor) -> torch.Tensor:
        """``forward(class_ids, *inputs)`` -> logits, with classifier-free guidance when asked:
        the batch is then run once as [cond; null], every input repeated for the null half,
        and the two halves combined (`combine_guidance`)."""
        if cfg_scale == 1.0 or not bool((class_ids != self.null_class).any()):  # scale first: no host sync
            return forward(class_ids, *inputs)
        both = torch.cat([class_ids, torch.full_like(class_ids, self.null_class)])
        return self.combine_guidance(forward(both, *(torch.cat([x, x]) for x in inputs)), cfg_scale)

    @staticmethod
    def combine_guidance(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
        """Logits of a [cond; null] batch -> guided float logits for the cond half."""
        logits_c, logits_u = logits.float().chunk(2)
        return logits_u + cfg_scale * (logits_c - logits_u)

    @property
    def grid_multiple(self) -> int:
        """Token grid sides must be multiples of this (e.g. an hourglass's total shortening)."""
        return 1

    def check_sample_args(self, n: int = 1, steps: int | None = None, temperature: float | None = None,
                          top_k: int | None = None, top_p: float | None = None) -> None:
        """`ArgumentError` for values no sampler accepts (n, steps, temperature, top_k, top_p)."""
        validate_sampling_args(steps=steps, temperature=temperature, top_k=top_k, top_p=top_p, n=n)

    def check_grid(self, grid: tuple[int, int]) -> tuple[int, int]:
        h, w = (int(x) for x in grid)
        if h < 1 or w < 1:
            raise NarError(f"token grid must be positive, got {h}x{w}")
        return h, w

    def check_generator(self, generator: torch.Generator | None) -> None:
        """Sampling draws from ``generator``; one on another device would fail deep inside."""
        if generator is not None and not _same_device(generator.device, self.device):
            raise NarError(f"{self.name}: the generator is on {generator.device}, the model on {self.device}")

    def check_inpaint(self, n: int, grid: tuple[int, int], known, keep):
        """Validate inpainting inputs; returns (known, keep) on the model's device or (None, None)."""
        if known is None and keep is None:
            return None, None
        if known is None or keep is None:
            raise NarError("inpainting needs both known tokens and a keep mask")
        known = known.to(self.device, torch.long)
        keep = keep.to(self.device, torch.bool)
        if known.ndim == 2:
            known = known.expand(n, *known.shape)
        if keep.ndim == 2:
            keep = keep.expand(n, *keep.shape)
        if tuple(known.shape) != (n, *grid) or tuple(keep.shape) != (n, *grid):
            raise NarError(f"known tokens {tuple(known.shape)} / keep mask {tuple(keep.shape)} "
                           f"do not match ({n}, {grid[0]}, {grid[1]})")
        if ((known < 0) | (known >= self.codebook_size))[keep].any():
            raise NarError("known tokens must be codebook ids")
        return known, keep

    # ---- (de)serialisation --------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"kind": "prior", "name": self.name, "config": to_dict(self.cfg),
                "codebook_size": self.codebook_size, "num_classes": self.num_classes,
                "train_grid": list(self.train_grid)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "Prior":
        cfg = from_dict(cls.config_cls, meta["config"])
        return cls(cfg, meta["codebook_size"], meta.get("num_classes", 0), tuple(meta["train_grid"]))


def default_grid(meta: dict[str, Any]) -> tuple[int, int] | None:
    """The token grid a prior samples when none is asked for, from its checkpoint metadata: the
    grid of the data it learnt (``data_grid``; a window-trained prior slides its window over it),
    else its training grid; None when the metadata records neither."""
    grid = meta.get("data_grid") or meta.get("train_grid")
    return tuple(int(v) for v in grid) if grid else None


def _same_device(a: torch.device, b: torch.device) -> bool:
    """'cuda' and 'cuda:0' are the same device when 0 is the current one."""
    def index(d: torch.device):
        return d.index if d.index is not None or d.type != "cuda" else torch.cuda.current_device()
    return a.type == b.type and index(a) == index(b)
