"""Training the 2x super-resolution net with the shared loop: `SRTask` implements
`nar.train.loop.TrainTask`.

Data: free, exact pairs. The procedural generator paints the same scene at any size; the
target is the (2L)² render and the input, by default (``data.low_res``), the same scene
rendered at L² with 2x supersampling, i.e. the target box-averaged. Both are aligned pixel for
pixel with half-pixel centres (bicubic with align_corners=False is the aligned upsampling).
A plain L² render ("render") is not the target averaged down: it lacks the finest noise octave
and samples edges elsewhere, noise no upscaler can predict. "decoded" passes the supersampled
input through the tokenizer's round trip (encode, quantize, decode, 8-bit): what the generation
pipeline hands the net when it brings a prior's draw above its native size (cascaded generators
train their upsampling stage on the base stage's outputs; here, measured in configs/sr/decoded.toml,
it smooths the decoder's strokes rather than restoring detail). Every step renders
``scenes_per_step`` fresh training scenes (seeds drawn from the step's generator, low
resolution drawn from ``lr_sizes``) and takes aligned crops (``crop`` low-res pixels, 2·crop
high-res, each the busiest of ``crop_candidates`` random placements) with matching flips.
Held-out evaluation scenes use the tokenizer's disjoint held-out seed range.

Two optimizers: "gen" (the SR net) and "disc" (the PatchGAN, from ``loss.disc_start``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from nar.core.config import to_dict
from nar.core.errors import NarError
from nar.core.images import array_to_tensor, busiest, crop_placements, row_grid, save_png
from nar.sr.losses import SRLoss, SRLossConfig
from nar.sr.model import SRModelConfig, SRNet
from nar.tokenizer.losses import psnr
from nar.train.tokenizer_task import held_out_seed, train_seed
from nar.core.train_config import TrainConfig

SEED_SPACE = 2 ** 30


LOW_RES_SOURCES = ("supersampled", "render", "decoded")


@dataclass
class SRDataConfig:
    lr_sizes: tuple[int, ...] = (512, 1024)   # low-res render sizes (the target is rendered at 2x)
    # "supersampled": the input is the scene rendered with scale x supersampling, i.e. the true
    # high-res render box-averaged (what it shows at low resolution is what the target shows);
    # "render": a plain low-res render, which lacks the target's finest noise octave and samples
    # edges elsewhere (v1; that disagreement is noise no upscaler can predict)
    # "decoded": the supersampled input after the tokenizer's round trip (a prior's draw is decoded tokens)
    low_res: str = "supersampled"
    tokenizer: str = ""                      # "decoded": tokenizer checkpoint (empty: the shipped one)
    # each crop is the busiest (largest mean |gradient| of the target) of this many random
    # placements: most of a landscape is smooth sky and ground that bicubic already gets right,
    # while most of bicubic's error (57% at 1024² -> 2048²) sits on the 5% of pixels at edges
    crop_candidates: int = 1
    crop: int = 48                           # low-res crop side (the high-res crop is scale x this)
    scenes_per_step: int = 2                 # fresh renders per step; the batch's crops share them
    data_seed: int = 0                       # training seed space (evaluation uses held-out seeds)
    snapshot_n: int = 4


@dataclass
class SRConfig:
    model: SRModelConfig = field(default_factory=SRModelConfig)
    loss: SRLossConfig = field(default_factory=SRLossConfig)
    data: SRDataConfig = field(default_factory=SRDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "SRConfig":
        self.model.validate()
        self.loss.validate()
        d = self.data
        if not d.lr_sizes or min(d.lr_sizes) < d.crop or d.crop < 8:
            raise NarError(f"sr data: need crop >= 8 and every lr_size >= crop (crop {d.crop}, lr_sizes {d.lr_sizes})")
        if max(d.lr_sizes) * self.model.scale > 4096:
            raise NarError("sr data: lr_size x scale must stay <= 4096 (the generator's limit)")
        if d.scenes_per_step < 1:
            raise NarError("sr data: scenes_per_step must be >= 1")
        check_low_res(d.low_res)
        if d.crop_candidates < 1:
            raise NarError("sr data: crop_candidates must be >= 1")
        return self


def check_low_res(low_res: str) -> str:
    if low_res not in LOW_RES_SOURCES:
        raise NarError(f"low-res source must be one of {', '.join(LOW_RES_SOURCES)}, not {low_res!r}")
    return low_res


def render_pair(seed: int, lr_size: int, scale: int = 2, low_res: str = "supersampled",
                tokenizer: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, L, L) and (3, sL, sL) renders of one scene, in [-1, 1].

    ``low_res="supersampled"`` paints the scene once: the input is the target box-averaged,
    which is exactly ``generate_landscape(seed, L, L, supersample=scale)``. ``"decoded"`` then
    round-trips that input through ``tokenizer`` (L a multiple of its factor).
    """
    from nar.data.landscapes import generate_landscape
    from nar.data.landscapes.dataset import box_average
    hi = generate_landscape(seed, lr_size * scale, lr_size * scale)[0]
    if check_low_res(low_res) == "render":
        lo = array_to_tensor(generate_landscape(seed, lr_size, lr_size)[0])
    else:
        lo = array_to_tensor(box_average(hi, scale))
    if low_res == "decoded":
        if tokenizer is None:
            raise NarError("the decoded low-res source needs a tokenizer")
        lo = tokenizer_round_trip(tokenizer, lo)
    return lo, array_to_tensor(hi)


def load_decoding_tokenizer(path: str | Path | None, lr_sizes: tuple[int, ...] = ()) -> torch.nn.Module:
    """The frozen tokenizer whose round trip makes "decoded" inputs; every low-res size must be a
    multiple of its factor. The front door (CLI, pipeline) resolves the shipped one's path."""
    from nar.tokenizer.load import load_tokenizer
    if not path or not Path(path).is_file():
        raise NarError(f"tokenizer checkpoint not found: {path or '(none given)'}")
    tokenizer = load_tokenizer(path)
    if any(size % tokenizer.factor for size in lr_sizes):
        raise NarError(f"decoded inputs need low-res sizes that are multiples of the tokenizer's factor "
                       f"{tokenizer.factor}, got {tuple(lr_sizes)}")
    return tokenizer


@torch.no_grad()
def tokenizer_round_trip(tokenizer: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in [-1, 1] -> its tokenizer reconstruction, clamped and rounded to 8 bits as the
    pipeline's decoded images are."""
    recon = tokenizer.decode_tokens(tokenizer.encode(image[None].to(tokenizer.device)))[0].float().cpu()
    return ((recon.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def aligned_crop(lo: torch.Tensor, hi: torch.Tensor, top: int, left: int, crop: int, scale: int,
                 flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    a = lo[..., top:top + crop, left:left + crop]
    b = hi[..., scale * top:scale * (top + crop), scale * left:scale * (left + crop)]
    return (a.flip(-1), b.flip(-1)) if flip else (a, b)


class PairSampler:
    """Batches of aligned (low, high) crops drawn deterministically from a torch.Generator."""

    def __init__(self, cfg: SRConfig, tokenizer: torch.nn.Module | None = None):
        self.cfg = cfg
        self.tokenizer = tokenizer   # "decoded" inputs only

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        d, scale = self.cfg.data, self.cfg.model.scale
        n_scenes = min(d.scenes_per_step, batch_size)
        seeds = [train_seed(d.data_seed, i) for i in torch.randint(SEED_SPACE, (n_scenes,), generator=generator).tolist()]
        sizes = [d.lr_sizes[i] for i in torch.randint(len(d.lr_sizes), (n_scenes,), generator=generator).tolist()]
        placements = crop_placements(batch_size, d.crop_candidates, generator)
        pairs = [render_pair(s, L, scale, d.low_res, self.tokenizer) for s, L in zip(seeds, sizes)]
        los, his = [], []
        per_scene = math.ceil(batch_size / n_scenes)
        for i, candidates in enumerate(placements):
            lo, hi = pairs[i // per_scene]
            crops = []
            for top, left, flip in candidates:
                top %= lo.shape[1] - d.crop + 1
                left %= lo.shape[2] - d.crop + 1
                crops.append(aligned_crop(lo, hi, top, left, d.crop, scale, bool(flip % 2)))
            a, b = busiest(crops, key=lambda pair: pair[1])
            los.append(a)
            his.append(b)
        return torch.stack(los), torch.stack(his)

    def fixed_examples(self, n: int, lr_size: int = 512, crop: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre crops of held-out pairs (for snapshots)."""
        scale, los, his = self.cfg.model.scale, [], []
        for i in range(n):
            lo, hi = render_pair(held_out_seed(0, i), lr_size, scale, self.cfg.data.low_res, self.tokenizer)
            top = (lr_size - crop) // 2
            a, b = aligned_crop(lo, hi, top, top, crop, scale, False)
            los.append(a)
            his.append(b)
        return torch.stack(los), torch.stack(his)


class SRTask:
    def __init__(self, cfg: SRConfig, lpips_model: torch.nn.Module | None = None, build_perceptual: bool = True,
                 default_tokenizer: str | Path | None = None):
        self.cfg = cfg.validate()
        self.default_tokenizer = default_tokenizer   # "decoded" inputs when data.tokenizer is empty
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.train.seed)
            self.model = SRNet(cfg.model)
            self.losses = SRLoss(cfg.loss, lpips_model=lpips_model, build_perceptual=build_perceptual)
        self.pairs = PairSampler(cfg, self._data_tokenizer())
        self._snapshot: tuple[torch.Tensor, torch.Tensor] | None = None

    def _data_tokenizer(self) -> torch.nn.Module | None:
        """The frozen tokenizer that degrades "decoded" inputs (None for the other sources)."""
        if self.cfg.data.low_res != "decoded":
            return None
        return load_decoding_tokenizer(self.cfg.data.tokenizer or self.default_tokenizer, self.cfg.data.lr_sizes)

    # ---- TrainTask protocol -------------------------------------------------------------
    def optimizers(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"gen": list(self.model.parameters()), "disc": list(self.losses.discriminator.parameters())}

    def extra_modules(self) -> dict[str, torch.nn.Module]:
        return self.losses.trained_modules()

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"kind": "sr", "name": "srnet", "config": to_dict(self.cfg.model), "scale": self.cfg.model.scale,
                "loss": to_dict(self.cfg.loss), "data": to_dict(self.cfg.data),
                "perceptual_weight_used": self.losses.perceptual_weight}

    def train_step(self, step: int, generator: torch.Generator,
                   optimize: Callable[[str, torch.Tensor], None]) -> dict[str, float]:
        device = next(self.model.parameters()).device
        lo, hi = self.pairs.batch(self.cfg.train.batch_size, generator)
        lo, hi = lo.to(device), hi.to(device)
        sr = self.model(lo)
        loss, metrics = self.losses.generator_loss(hi, sr, step, self.model.last_layer)
        if not math.isfinite(metrics["loss"]):
            raise NarError(f"sr loss is {metrics['loss']} at step {step}; lower train.lr")
        optimize("gen", loss)
        if self.losses.disc_active(step):
            d_loss, d_metrics = self.losses.discriminator_loss(hi, sr)
            optimize("disc", d_loss)
            metrics.update(d_metrics)
        with torch.no_grad():
            base = self.model.upsample(lo)
            metrics.update(psnr=float(psnr(sr.detach(), hi).mean()), psnr_bicubic=float(psnr(base, hi).mean()))
        return metrics

    @torch.no_grad()
    def snapshot(self, model: SRNet, step: int, out_dir: Path) -> None:
        """PNG rows: bicubic, SR, true high-res render (held-out centre crops)."""
        if self._snapshot is None:
            self._snapshot = self.pairs.fixed_examples(self.cfg.data.snapshot_n)
        lo, hi = (t.to(next(model.parameters()).device) for t in self._snapshot)
        save_png(row_grid([model.upsample(lo), model(lo), hi]), Path(out_dir) / f"step_{step:07d}.png")


def load_sr_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> SRConfig:
    from nar.core.config import load_config
    from nar.core.recipes import KINDS_SR
    return load_config(SRConfig, path, overrides, kinds=KINDS_SR).validate()


def train_sr(config: str | Path | None, overrides: dict[str, Any] | None, out: str | Path,
             resume: bool = True, progress: bool = True, until: int | None = None,
             tensorboard: bool = False, init_from: str | Path | None = None,
             default_tokenizer: str | Path | None = None) -> Path:
    """``init_from``: start a new run from an SR checkpoint's weights (same net; a resumed run
    keeps its own). ``default_tokenizer``: the tokenizer of "decoded" inputs when the config names none."""
    from nar.core.checkpoint import load_weights_into, read_meta
    from nar.train.loop import Trainer
    cfg = load_sr_config(config, overrides)
    task = SRTask(cfg, default_tokenizer=default_tokenizer)
    if init_from is not None:
        meta = read_meta(init_from)   # a net of the same config, not only of the same shapes (scale, skip)
        if meta.get("kind") != "sr" or meta.get("config") != to_dict(cfg.model):
            raise NarError(f"--init-from {init_from}: its net ({meta.get('kind')}, {meta.get('config')}) is not this "
                           f"config's ({to_dict(cfg.model)})")
        load_weights_into(task.model, init_from, "sr", "srnet")
    return Trainer(task, cfg.train, out, progress=progress, tensorboard=tensorboard).run(resume=resume, until=until)
