"""The model side of `nar serve`: jobs the batching queue hands over, run on a `Pipeline`.

Everything here runs on the queue's one worker thread (models load there, lazily, on first
use), except `Engine.__init__` and the cheap look-ups `/models` and `/health` make.

Batching and seeds. A request that gives a ``seed`` is sampled on its own, ``n = 1``, from a
generator seeded with it: exactly what ``nar sample --seed S --n 1`` (and ``Pipeline.sample``)
draws, so the same seed gives the same tokens and image as the CLI, whatever else is in the
queue. Requests that give no seed are the ones batched into a single ``prior.sample(n=k)``
call: the worker draws one fresh seed S for the batch, and each response says
``seed = S, n = k, index = i``, which ``nar sample --seed S --n k`` reproduces (image i).
Decoding is deterministic, so every batch decodes its images in one call either way.
"""
from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch

from nar.core.errors import NarError
from nar.pipelines.upscale import SHARPEN, native_size, sample_plan
from nar.priors.base import default_grid
from nar.sampling import INPAINT_TEMPERATURE, inpaint_options
from nar.serve.batching import BatchInfo


class NotFound(NarError):
    """An unknown prior (answered 404)."""


class NotAvailable(NarError):
    """A feature this server cannot provide (answered 501)."""


@dataclass(frozen=True)
class Limits:
    max_size: int = 1024            # image side in pixels (generate / decode / inpaint)
    max_steps: int = 1000
    max_upload_bytes: int = 16 * 2**20
    max_upscale_side: int = 1024    # input side for /upscale (output is 2x)


@dataclass
class GenerateJob:
    seed: int | None


@dataclass(frozen=True)
class GenerateKey:
    """What must be equal for requests to share one batched prior.sample call."""
    prior: str
    grid: tuple[int, int]
    size: int | None
    steps: int | None
    temperature: float | None   # None: the prior's own
    top_k: int | None
    top_p: float | None
    class_name: str | None
    cfg: float
    decode: bool


@dataclass
class InpaintJob:
    prior: str
    seed: int
    steps: int | None = None
    temperature: float = INPAINT_TEMPERATURE
    class_name: str | None = None
    cfg: float = 1.0
    feather: int = 0
    image: np.ndarray | None = None       # (H, W, 3) uint8 ...
    mask: np.ndarray | None = None        # (H, W) bool, True = regenerate
    tokens: torch.Tensor | None = None    # ... or (h, w) token ids
    cells: torch.Tensor | None = None     # (h, w) bool, True = regenerate
    decode: bool = True


@dataclass
class Result:
    tokens: torch.Tensor | None = None     # (h, w)
    image: np.ndarray | None = None        # (H, W, 3) uint8
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage


@contextlib.contextmanager
def _memory_guard(what: str):
    """nar.core.memory's guard (allocator failures -> NarMemoryError, answered 507) when this
    build has it; plain MemoryError / CUDA OOM are answered 507 by the app either way."""
    try:
        from nar.core.memory import memory_guard
    except ImportError:
        yield
        return
    with memory_guard(what):
        yield


def memory_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "out of memory" (answered 507; the server keeps serving)."""
    types: list[type[BaseException]] = [MemoryError]
    for owner, name in ((torch, "OutOfMemoryError"), (getattr(torch, "cuda", None), "OutOfMemoryError")):
        t = getattr(owner, name, None)
        if isinstance(t, type) and issubclass(t, BaseException):
            types.append(t)
    from nar.core import errors
    for name in ("OutOfMemory", "OutOfMemoryError", "NarMemoryError", "MemoryLimitError", "DeviceMemoryError"):
        t = getattr(errors, name, None)
        if isinstance(t, type) and issubclass(t, BaseException):
            types.append(t)
    return tuple(dict.fromkeys(types))


def cli_command(key: GenerateKey, seed: int, n: int) -> str:
    parts = [f"nar sample --prior {key.prior} --seed {seed} --n {n}"]
    parts.append(f"--size {key.size}" if key.size is not None else f"--grid {key.grid[0]}x{key.grid[1]}")
    if key.steps is not None:
        parts.append(f"--steps {key.steps}")
    if key.temperature is not None:
        parts.append(f"--temperature {key.temperature:g}")
    if key.top_k is not None:
        parts.append(f"--top-k {key.top_k}")
    if key.top_p is not None:
        parts.append(f"--top-p {key.top_p:g}")
    if key.class_name is not None:
        parts.append(f"--class {key.class_name}")
    if key.cfg != 1.0:
        parts.append(f"--cfg {key.cfg:g}")
    return " ".join(parts)


class Engine:
    """Models for one role. ``role``: all | generate | decode | upscale."""

    def __init__(self, role: str = "all", tokenizer=None, priors: dict | None = None, device: str = "cpu",
                 limits: Limits | None = None, sr_ckpt=None):
        from nar.pipelines.pipeline import Pipeline
        from nar.priors import prior_names

        self.role, self.limits = role, limits or Limits()
        self.lock = threading.Lock()
        self.sr_ckpt, self._sr = sr_ckpt, None
        self.pipeline = None
        if role in ("all", "generate", "decode"):
            # the decode role gives no priors and only ever asks for the decoder
            self.pipeline = Pipeline.load(tokenizer=tokenizer, priors=priors if role != "decode" else {},
                                          device=device)
        self.priors: dict[str, str] = {}      # name -> checkpoint path, for the roles that sample
        if role in ("all", "generate"):
            for name in prior_names():
                try:
                    path = self.pipeline.prior_path(name)
                except NarError:
                    continue
                if path is not None and path.exists():
                    self.priors[name] = str(path)
        self._meta: dict[str, dict] = {}
        # progress hook: called as step_callback(key, step, total) after every sampling step of
        # a generate batch (the priors' callback(step, total, tokens), tagged with the batch key)
        self.step_callback: Callable[[Hashable, int, int], None] | None = None

    # ---- facts (no model work) --------------------------------------------------------------
    @property
    def device(self) -> str:
        return str(self.pipeline.device) if self.pipeline is not None else "cpu"

    def _read_meta(self, path) -> dict:
        from nar.core.checkpoint import read_meta
        key = str(path)
        if key not in self._meta:
            self._meta[key] = read_meta(path)
        return self._meta[key]

    def prior_meta(self, name: str) -> dict:
        if name not in self.priors:
            raise NotFound(f"unknown prior {name!r}; this server has: {', '.join(self.priors) or 'none'}")
        return self._read_meta(self.priors[name])

    def tokenizer_meta(self) -> dict:
        if self.pipeline is None or self.pipeline.tokenizer_path is None:
            return {}
        return self._read_meta(self.pipeline.tokenizer_path)

    @property
    def factor(self) -> int:
        meta = self.tokenizer_meta()
        cfg = meta.get("config") or {}
        if "ch_mult" in cfg:
            return 2 ** (len(cfg["ch_mult"]) - 1)
        return int(self.pipeline.factor)

    def loaded(self) -> list[str]:
        """What is in memory now (priors by name, the tokenizer's parts, the SR net)."""
        names: list[str] = []
        pipe = self.pipeline
        if pipe is not None:
            names += list(getattr(pipe, "_priors", {}))
            if getattr(pipe, "_full", None) is not None:
                names.append("tokenizer (encoder + decoder)")
            elif getattr(pipe, "_decoder", None) is not None:
                names.append("tokenizer (decoder only)")
        if self._sr is not None:
            names.append("sr")
        return names

    def upscale_available(self) -> tuple[bool, str]:
        try:
            self._sr_loader()
        except NotAvailable as e:
            return False, str(e)
        return True, ""

    # ---- the queue's entry point --------------------------------------------------------------
    def run_batch(self, key: Hashable, jobs: Sequence[Any], infos: Sequence[BatchInfo]) -> list:
        kind = key[0]
        with self.lock, _memory_guard(f"running a {kind} batch of {len(jobs)}"):
            if kind == "generate":
                return self._generate(key[1], jobs, infos)
            if kind == "decode":
                return self._decode(jobs, infos)
            if kind == "inpaint":
                return [self._inpaint(jobs[0], infos[0])]
            if kind == "upscale":
                return [self._upscale(jobs[0], infos[0])]
            if kind == "warmup":
                return [self._warmup(jobs[0])]
        raise ValueError(f"unknown job kind {kind!r}")

    # ---- generate -------------------------------------------------------------------------
    def check_generate(self, prior: str, size: int | None, grid: Sequence[int] | None,
                       steps: int | None) -> tuple[int, int]:
        """Cheap checks before queueing: known prior, size/grid within the limits."""
        meta = self.prior_meta(prior)
        f = self.factor
        if size is not None and grid is not None:
            raise NarError("give either size or grid, not both")
        if size is not None:
            if size > self.limits.max_size:
                raise NarError(f"size {size} is over this server's limit of {self.limits.max_size} pixels")
            # above the prior's native size: drawn at it, decoded, then 2x super-resolved (as `nar sample`)
            native = native_size(meta, f)
            drawn, passes = sample_plan(size, native)
            if drawn < f or drawn % f:
                raise NarError(f"size {size} is not a multiple of the tokenizer's factor {f}"
                               + (f" at the {drawn}² it is drawn at" if passes else ""))
            if passes:
                ok, why = self.upscale_available()
                if not ok:
                    raise NarError(f"size {size} is above {prior}'s native {native}², which needs super-resolution: {why}")
            grid = (drawn // f, drawn // f)
        if grid is None:
            grid = default_grid(meta) or (16, 16)
        h, w = (int(v) for v in grid)
        if max(h, w) * f > self.limits.max_size:
            raise NarError(f"a {h}x{w} token grid is {h * f}x{w * f} pixels, over this server's limit of "
                           f"{self.limits.max_size}")
        if steps is not None and steps > self.limits.max_steps:
            raise NarError(f"steps {steps} is over this server's limit of {self.limits.max_steps}")
        return h, w

    def _sample_tokens(self, key: GenerateKey, n: int, seed: int):
        """Exactly what `Pipeline.sample` (and so `nar sample`) draws: one generator seeded once."""
        pipe = self.pipeline
        p = pipe.prior(key.prior)
        p.check_sample_args(n=n, steps=key.steps, temperature=key.temperature, top_k=key.top_k, top_p=key.top_p)
        grid = p.check_grid(key.grid)
        class_id = pipe.resolve_class(key.prior, key.class_name)
        cond = None if class_id is None else torch.full((n,), class_id, dtype=torch.long, device=pipe.device)
        gen = torch.Generator(device=pipe.device).manual_seed(int(seed))
        hook = self.step_callback
        callback = None if hook is None else (lambda step, total, _tokens: hook(key, step, total))
        with torch.inference_mode():
            out = p.sample(n, grid, steps=key.steps, temperature=key.temperature, top_k=key.top_k,
                           top_p=key.top_p, cond=cond, cfg_scale=key.cfg, generator=gen, callback=callback)
        return out

    def _generate(self, key: GenerateKey, jobs: Sequence[GenerateJob], infos: Sequence[BatchInfo]) -> list:
        from nar.core.timing import sync
        pipe = self.pipeline
        results: list[Result | None] = [None] * len(jobs)
        seeded = [i for i, j in enumerate(jobs) if j.seed is not None]
        free = [i for i, j in enumerate(jobs) if j.seed is None]
        f = self.factor
        prior = pipe.prior(key.prior)   # the settings a draw ran with: the prior's defaults filled in
        base = {"prior": key.prior, "steps": key.steps, "size": key.size,
                "temperature": prior.resolve_temperature(key.temperature),
                "top_k": key.top_k, "top_p": prior.resolve_top_p(key.top_p), "class_label": key.class_name,
                "cfg": key.cfg,
                "grid": list(key.grid), "image_size": [key.grid[0] * f, key.grid[1] * f],
                "device": str(pipe.device), "prior_ckpt": self.priors.get(key.prior)}
        base = {k: v for k, v in base.items() if v is not None}
        groups = [([i], jobs[i].seed) for i in seeded]
        if free:
            groups.append((free, secrets.randbelow(2**31)))
        for members, seed in groups:
            sync(pipe.device)
            t0 = time.perf_counter()
            out = self._sample_tokens(key, len(members), seed)
            sync(pipe.device)
            t_sample = time.perf_counter() - t0
            for index, i in enumerate(members):
                settings = {**base, "seed": seed, "n": len(members), "steps_run": out.steps_run,
                            "forward_passes": out.forward_passes,
                            "cli": cli_command(key, seed, len(members))}
                if len(members) > 1:
                    settings["index"] = index
                results[i] = Result(tokens=out.tokens[index].cpu(), settings=settings,
                                    timings={"sample": t_sample})
        if key.decode:
            t0 = time.perf_counter()
            images = self._decode_arrays(torch.stack([r.tokens for r in results]))
            t_decode = time.perf_counter() - t0
            for r, image in zip(results, images):
                r.image, r.timings["decode"] = image, t_decode
            if key.size is not None and key.size > key.grid[0] * f:   # drawn below the size asked for
                for r in results:
                    self.super_resolve(r, key.size)
        for r, info in zip(results, infos):
            r.timings["queue"] = info.queued_s
            r.settings["batch_size"] = info.size
        return results

    # ---- decode ---------------------------------------------------------------------------
    def codebook_size(self) -> int:
        meta = self.tokenizer_meta()
        size = (meta.get("config") or {}).get("codebook_size")
        return int(size) if size else int(self.pipeline.tokenizer.codebook_size)

    def check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1:
            raise NarError(f"tokens must be a non-empty grid of rows of equal length, got shape {tuple(tokens.shape)}")
        f, v = self.factor, self.codebook_size()
        h, w = tokens.shape
        if max(h, w) * f > self.limits.max_size:
            raise NarError(f"a {h}x{w} token grid is {h * f}x{w * f} pixels, over this server's limit of "
                           f"{self.limits.max_size}")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= v:
            bad = lo if lo < 0 else hi
            raise NarError(f"token id {bad} is out of range: ids are 0..{v - 1} for this tokenizer")
        return tokens

    def _decode_arrays(self, tokens: torch.Tensor) -> list[np.ndarray]:
        from nar.core.images import to_uint8
        return list(to_uint8(self.pipeline.decode_tensor(tokens)))

    def _decode(self, jobs: Sequence[torch.Tensor], infos: Sequence[BatchInfo]) -> list[Result]:
        t0 = time.perf_counter()
        images = self._decode_arrays(torch.stack(list(jobs)))
        t = time.perf_counter() - t0
        return [Result(image=im, settings={"batch_size": info.size}, timings={"queue": info.queued_s, "decode": t})
                for im, info in zip(images, infos)]

    # ---- inpaint --------------------------------------------------------------------------
    def _inpaint(self, job: InpaintJob, info: BatchInfo) -> Result:
        from nar.core.timing import sync
        pipe = self.pipeline
        if job.prior not in self.priors:
            raise NotFound(f"unknown prior {job.prior!r}; this server has: {', '.join(self.priors)}")
        t0 = time.perf_counter()
        if job.image is not None:
            out = pipe.inpaint(job.image, job.mask, prior=job.prior, seed=job.seed, steps=job.steps,
                               temperature=job.temperature, class_name=job.class_name, cfg=job.cfg,
                               feather=job.feather, sr_ckpt=self.sr_ckpt)
            wall = time.perf_counter() - t0
            timings = {"queue": info.queued_s, "encode": max(wall - out.seconds_total, 0.0),
                       "sample": out.seconds_sampling, "decode": out.seconds_total - out.seconds_sampling}
            settings = {k: v for k, v in out.settings.items() if k not in ("tokenizer_ckpt",)}
            return Result(tokens=out.tokens[0], image=np.asarray(out.images[0]), settings=settings, timings=timings)
        # token grid + cell mask: no encoder, no pixel blending
        p = pipe.prior(job.prior)
        p.check_sample_args(n=1, steps=job.steps, temperature=job.temperature)
        grid = p.check_grid(tuple(job.tokens.shape))
        class_id = pipe.resolve_class(job.prior, job.class_name)
        cond = None if class_id is None else torch.full((1,), class_id, dtype=torch.long, device=pipe.device)
        gen = torch.Generator(device=pipe.device).manual_seed(int(job.seed))
        known = job.tokens[None].to(pipe.device)
        keep = (~job.cells)[None].to(pipe.device)
        options = inpaint_options(p.name, temperature=job.temperature)   # the same fill as Pipeline.inpaint's
        sync(pipe.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = p.sample(1, grid, steps=job.steps, temperature=job.temperature, cond=cond, cfg_scale=job.cfg,
                           known=known, keep=keep, generator=gen, **options)
        sync(pipe.device)
        timings = {"queue": info.queued_s, "sample": time.perf_counter() - t0}
        tokens = out.tokens[0].cpu()
        settings = {"prior": job.prior, "seed": job.seed, "steps": job.steps, "steps_run": out.steps_run,
                    "temperature": job.temperature, "class_label": job.class_name, "cfg": job.cfg,
                    "grid": list(grid), "options": options or None, "tokens_regenerated": int(job.cells.sum()),
                    "tokens_total": grid[0] * grid[1]}
        image = None
        if job.decode:
            t1 = time.perf_counter()
            image = self._decode_arrays(tokens[None])[0]
            timings["decode"] = time.perf_counter() - t1
        return Result(tokens=tokens, image=image, settings={k: v for k, v in settings.items() if v is not None},
                      timings=timings)

    # ---- upscale --------------------------------------------------------------------------
    def _sr_loader(self):
        """``(load_sr, upscale)`` from nar's super-resolution pipeline, or NotAvailable saying why."""
        try:
            from nar.pipelines.upscale import default_sr_path, load_sr, upscale
        except ImportError:
            raise NotAvailable("2x super-resolution is not part of this nar build yet: /upscale answers "
                               "once nar.pipelines.upscale and its model ship") from None
        path = self.sr_ckpt or default_sr_path()
        if not Path(path).is_file():
            raise NotAvailable(f"no super-resolution model at {path}: train one with `nar sr train` and "
                               "start the server with --sr-ckpt RUN/model.safetensors")
        return load_sr, upscale

    def super_resolve(self, result: Result, size: int) -> None:
        """A generate result drawn below its size: its image 2x super-resolved until it is ``size``."""
        from PIL import Image
        load_sr, upscale = self._sr_loader()
        if self._sr is None:
            self._sr = load_sr(self.sr_ckpt, device=self.device)
        t0 = time.perf_counter()
        drawn = list(result.image.shape[:2])
        passes = (size // drawn[1]).bit_length() - 1   # size = drawn side x 2^passes (sample_plan)
        result.image = np.asarray(upscale(Image.fromarray(result.image), self._sr, passes=passes,
                                          sharpen=SHARPEN).convert("RGB"))   # generated: sharpened as `nar sample`
        result.timings["upscale"] = time.perf_counter() - t0
        result.settings.update(image_size=list(result.image.shape[:2]), super_resolution={
            "generated_size": drawn, "scale": result.image.shape[0] // drawn[0],
            "sr_ckpt": str(getattr(self._sr, "source_path", self.sr_ckpt)), "sharpen": SHARPEN})

    def _upscale(self, image: np.ndarray, info: BatchInfo) -> Result:
        from PIL import Image
        load_sr, upscale = self._sr_loader()
        if self._sr is None:
            self._sr = load_sr(self.sr_ckpt, device=self.device)
        t0 = time.perf_counter()
        out = np.asarray(upscale(Image.fromarray(image), self._sr).convert("RGB"))
        return Result(image=out, settings={"scale": out.shape[1] // image.shape[1],
                                           "input_size": [image.shape[1], image.shape[0]],
                                           "sr_ckpt": str(getattr(self._sr, "source_path", self.sr_ckpt))},
                      timings={"queue": info.queued_s, "upscale": time.perf_counter() - t0})

    # ---- warm-up --------------------------------------------------------------------------
    def _warmup(self, names: Sequence[str]) -> Result:
        t0 = time.perf_counter()
        if self.pipeline is not None:
            _ = self.pipeline.tokenizer
            for name in names:
                if name in self.priors:
                    self.pipeline.prior(name)
        return Result(timings={"load": time.perf_counter() - t0})
