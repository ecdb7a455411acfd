"""`nar bench` settings and the objects it measures: quick / full presets, the priors and
tokenizer under test (trained or not, and where they came from), steps per prior."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from typing import Any

import torch

from nar.core.device import PRECISIONS
from nar.core.errors import ArgumentError, NarError

UNTRAINED = "untrained"
TRAINED = "trained"
UNTRAINED_NOTE = "untrained weights: speed only"
SHARED_DECODE_NOTE = "decode shared per size"
REAL_CLASSES = ("balanced", "drawn")


# ---- settings ------------------------------------------------------------------------------
@dataclass
class BenchSettings:
    mode: str = "quick"                         # quick | full
    sizes: tuple[int, ...] = (256, 512, 1024)
    steps: tuple[int, ...] | None = None        # priors with steps (ar has none); None: each one's default
    batches: tuple[int, ...] = (1, 4)
    repeats: int = 3                            # timed batch-1 runs per row
    warmup: int = 1                             # untimed batch-1 runs before them
    slow_seconds: float | None = 4.0            # quick: a warm-up slower than this -> slow_repeats
    slow_repeats: int = 1
    batch_budget_s: float | None = 40.0         # quick: skip batch>1 rows estimated to take longer
    decode_batch: int = 4                       # images per decoder call in throughput runs
    share_decode: bool = True                   # quick on CPU: time the decoder once per size, shared by all priors
    seed: int = 0                               # speed rows' seeds, untrained weights, and the quality
                                                # samples' (the real sets stay: quality_seed)
    temperature: float | None = None            # None: each prior's own (its config's, else 1)
    quality: bool = True
    n_quality: int = 24                         # generated images per quality row (and real ones)
    quality_size: int = 256
    quality_steps: tuple[int, ...] | None = None  # default: the speed steps
    quality_batch: int = 8
    quality_seed: int = 1_000_000               # procedural seeds of the real sets (disjoint from training)
    real_classes: str = "balanced"              # real sets' scenes: balanced (equal counts, image i: scene
                                                # i mod C) | drawn (each seed's own draw; sessions <= 25)
    quality_cfg: float | None = None            # None: unconditional samples; a scale: class-balanced samples
                                                # (sample i asks for class i mod C) with that guidance
    command: str | None = None                  # the command line, recorded in the outputs
    threads: int | None = None                  # torch CPU threads (None: torch's default)
    precision: str | None = None                # prior sampling: auto | fp32 | bf16 (None: each prior's config)
    sharpen: float | None = None                # unsharp mask after the 2x SR of sizes above a prior's native
                                                # one, as `nar sample` (None: its default SHARPEN; 0: off)

    @property
    def sharpen_amount(self) -> float:
        from nar.pipelines.upscale import resolve_sharpen
        return resolve_sharpen(self.sharpen)

    @property
    def decode_precision(self) -> str:
        """The decoder's precision: the one asked for, else auto (bf16 where native), as `nar sample`."""
        return self.precision or "auto"

    @classmethod
    def quick(cls, **overrides) -> "BenchSettings":
        return replace(cls(), **overrides)

    @classmethod
    def full(cls, **overrides) -> "BenchSettings":
        base = cls(mode="full", steps=(4, 8, 12, 20, 24), batches=(1, 8), repeats=5, warmup=2,
                   slow_seconds=None, batch_budget_s=None, share_decode=False, n_quality=256)
        return replace(base, **overrides)

    def validate(self) -> "BenchSettings":
        if self.mode not in ("quick", "full"):
            raise NarError(f"bench mode must be quick or full, got {self.mode!r}")
        for name, values in (("sizes", self.sizes), ("steps", self.steps or (1,)), ("batch", self.batches)):
            if not values or any(int(v) < 1 for v in values):
                raise ArgumentError(name, f"bench {name} need positive integers, got {list(values)}")
        from nar.pipelines.upscale import resolve_sharpen
        resolve_sharpen(self.sharpen)
        if self.repeats < 1 or self.warmup < 0:
            raise NarError("repeats must be >= 1 and warm-up >= 0")
        if self.precision not in (None, *PRECISIONS):
            raise ArgumentError("precision", f"bench precision must be one of {', '.join(PRECISIONS)}, "
                                             f"got {self.precision!r}")
        if self.real_classes not in REAL_CLASSES:
            raise ArgumentError("real_classes", f"the real sets' scenes must be one of {', '.join(REAL_CLASSES)}, "
                                                f"got {self.real_classes!r}")
        if self.quality_cfg is not None and self.quality_cfg < 1:
            raise ArgumentError("quality_cfg", f"the quality rows' guidance scale must be >= 1 (1: conditional, "
                                               f"unguided), got {self.quality_cfg}")
        if self.temperature is not None and not self.temperature > 0:
            raise ArgumentError("temperature", f"the bench's sampling temperature must be > 0, got {self.temperature}")
        if self.quality and self.n_quality < 4:
            raise ArgumentError("n_quality", "a quality row needs at least 4 images (precision/recall use k=3), "
                                             f"got {self.n_quality}")
        return self


@dataclass
class BenchEntry:
    """A prior to benchmark: the module, whether its weights are trained, and where it came from."""
    name: str
    prior: Any
    trained: bool
    source: str

    @property
    def weights(self) -> str:
        return TRAINED if self.trained else UNTRAINED


@dataclass
class BenchTokenizer:
    model: Any
    trained: bool
    source: str


# ---- helpers -------------------------------------------------------------------------------
def _median_int(values: list[int]) -> int | float | None:
    if not values:
        return None
    m = statistics.median(values)
    return int(m) if float(m).is_integer() else float(m)


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def _has_steps(prior) -> bool:
    """Priors with a steps knob (parallel samplers) declare a default; ar does not."""
    return getattr(prior, "default_steps", None) is not None


def default_steps(prior) -> int | None:
    """The steps a prior samples with when none are given (its config's, else its class's)."""
    if not _has_steps(prior):
        return None
    return int(getattr(getattr(prior, "cfg", None), "steps", None) or prior.default_steps)


def steps_for(prior, steps: tuple[int, ...] | list[int] | None) -> list[int | None]:
    """The steps settings a prior is measured at: [None] for ar; the given list; or its default."""
    if not _has_steps(prior):
        return [None]
    return list(steps) if steps else [default_steps(prior)]


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    if text is None or text == "":
        return None
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise NarError(f"{option} needs comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise NarError(f"{option} needs positive integers, got {text!r}")
    return values
