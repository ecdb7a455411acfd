"""Training a VQGAN with the shared loop: `TokenizerTask` implements `nar.train.loop.TrainTask`.

Two optimizers: "gen" (encoder, quant convs, decoder; the codebook itself follows an EMA)
and "disc" (the PatchGAN, switched on at ``disc_start``). Every batch is drawn from the
step's generator, so a resumed run replays exactly the batches (and crops and flips) of an
uninterrupted one.

Data: procedural landscapes by default (a fresh render per sample, or a fixed pool of
``n_train`` seeds), a folder of images, or a folder of WebDataset shards (``data_dir``;
`nar.data.shards`). Training seeds and held-out evaluation seeds live in disjoint ranges
(`train_seed` / `held_out_seed`).

Under torchrun every rank draws the same global batch (batch_size x world size) from the
step generator and renders / loads only its own part; shards are streamed instead, each rank
reading its own shards (``render_workers`` data-loader processes decode them).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from nar.core.checkpoint import load_weights_into
from nar.core.errors import NarError
from nar.core.images import array_to_tensor, busiest, crop_placements, row_grid, save_png
from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.losses import VQLoss, psnr, warn_once
from nar.tokenizer.model import VQGAN
from nar.tokenizer.quantizer import code_counts, usage_stats
from nar.train import distributed

HELD_OUT_BASE = 2 ** 40        # procedural seeds >= this are never used for training
SEEDS_PER_DATA_SEED = 2 ** 30  # training seeds of data_seed s: [s * 2**30, (s + 1) * 2**30)
KMEANS_VECTORS_PER_CODE = 4    # k-means init sees at least this many latents per code
KMEANS_MAX_IMAGES = 512
COLLAPSE_FRACTION = 0.01       # running batch perplexity below 1% of the codebook: collapsed
COLLAPSE_WATCH_FROM = 100      # steps; k-means init and warm-up settle first


def train_seed(data_seed: int, index: int) -> int:
    return data_seed * SEEDS_PER_DATA_SEED + index


def held_out_seed(seed: int, index: int) -> int:
    """Seed of held-out image ``index`` of evaluation set ``seed`` (disjoint from training)."""
    return HELD_OUT_BASE + seed * 1_000_003 + index


def render_landscape(seed: int, size: int) -> tuple[torch.Tensor, int]:
    """A procedural image (3, size, size) in [-1, 1] and its scene id."""
    from nar.data.landscapes import generate_landscape
    image, label = generate_landscape(seed, size, size)
    return array_to_tensor(image), int(label["scene_id"])


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
    return image[..., top:top + size, left:left + size]


class TrainImages:
    """Random crops (with horizontal flips) drawn deterministically from a torch.Generator.

    Every random choice (which image, where to crop, whether to flip) is drawn from the
    generator in the main process; rendering is a pure function of the seed, so it can run
    in ``render_workers`` processes without changing a single pixel of the batch."""

    def __init__(self, cfg: TokenizerConfig):
        self.cfg = cfg
        self.folder = None
        self.stream = None
        self._pool = None
        from nar.data.shards import is_shard_folder
        if cfg.data_dir is not None and is_shard_folder(cfg.data_dir):
            from nar.data.shards import ShardSet, ShardStream, StreamReader
            self.shards = ShardSet.open(cfg.data_dir)
            w = distributed.world()
            self.stream = StreamReader(ShardStream(self.shards, cfg.image_size, seed=cfg.train.seed,
                                                   rank=w.rank, world=w.size), workers=cfg.render_workers)
        elif cfg.data_dir is not None:
            from nar.data.folder import ImageFolderDataset
            self.folder = ImageFolderDataset(cfg.data_dir, cfg.image_size)
            if len(self.folder) == 0:
                raise NarError(f"no usable training images in {cfg.data_dir}")

    def _sources(self, n: int, generator: torch.Generator) -> list[int]:
        """n folder indices, or n procedural seeds."""
        if self.folder is not None:
            return torch.randint(len(self.folder), (n,), generator=generator).tolist()
        space = self.cfg.n_train if self.cfg.n_train > 0 else SEEDS_PER_DATA_SEED
        return [train_seed(self.cfg.data_seed, i) for i in torch.randint(space, (n,), generator=generator).tolist()]

    def _load(self, sources: list[int]) -> list[torch.Tensor]:
        if self.folder is not None:
            return [self.folder[i][0] for i in sources]
        size = self.cfg.image_size
        if self.cfg.render_workers > 0 and len(sources) > 1:
            if self._pool is None:
                import concurrent.futures
                import multiprocessing
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.cfg.render_workers, mp_context=multiprocessing.get_context("spawn"))
            arrays = list(self._pool.map(_render_array, sources, [size] * len(sources)))
            return [array_to_tensor(a) for a in arrays]
        return [render_landscape(seed, size)[0] for seed in sources]

    def fixed_examples(self, n: int) -> torch.Tensor:
        """(n, 3, crop, crop): centre crops of held-out renders, or of the first folder images."""
        if self.stream is not None:
            from nar.data.shards import decode_sample
            samples = self.shards.samples(0)
            images = [decode_sample(next(samples), self.cfg.image_size)[0]
                      for _ in range(min(n, int(self.shards.shards[0]["count"])))]
        elif self.folder is None:
            images = [render_landscape(held_out_seed(0, i), self.cfg.image_size)[0] for i in range(n)]
        else:
            images = [self.folder[i][0] for i in range(min(n, len(self.folder)))]
        return torch.stack([center_crop(image, self.cfg.crop) for image in images])

    def batch(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, crop, crop) in [-1, 1]; ``crops_per_image`` crops share one source image.

        ``batch_size`` is per process: the global batch (x world size) is drawn and this rank
        loads only the images its part needs (the whole batch in a single process)."""
        per_image = max(1, self.cfg.crops_per_image)
        total = batch_size * distributed.world_size()
        keep = distributed.part(total)
        sources = None if self.stream is not None else self._sources(math.ceil(total / per_image), generator)
        placements = crop_placements(total, self.cfg.crop_candidates, generator)[keep]
        needed = sorted({i // per_image for i in range(keep.start, keep.stop)})
        loaded = ([img for img, _ in self.stream.take(len(needed))] if self.stream is not None
                  else self._load([sources[j] for j in needed]))
        images = dict(zip(needed, loaded))
        crop, crops = self.cfg.crop, []
        for i, candidates in enumerate(placements, start=keep.start):
            image = images[i // per_image]                          # (3, S, S)
            patches = []
            for top, left, flip in candidates:
                top %= image.shape[1] - crop + 1
                left %= image.shape[2] - crop + 1
                patch = image[:, top:top + crop, left:left + crop]
                patches.append(patch.flip(-1) if flip % 2 else patch)
            crops.append(busiest(patches))
        return torch.stack(crops)

    def pair_batch(self, batch_size: int, generator: torch.Generator, encode: Callable[[torch.Tensor], torch.Tensor],
                   factor: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For a decoder that upscales 2x: (tokens (B, c, c), targets (B, 3, crop, crop)), c = crop / 2f.

        Each pair is one procedural scene rendered twice: at image_size / 2, encoded whole (the
        tokens a prior trained on half-size renders imitates), and at image_size, the target. A crop
        of c x c tokens is matched with the 2f-px-per-token crop of the full render, the busiest of
        ``crop_candidates`` placements (judged on the target); flips flip both renders."""
        if self.folder is not None or self.stream is not None:
            raise NarError("decoder_upscale = 2 trains on procedural renders only (data_dir must be unset)")
        total = batch_size * distributed.world_size()
        keep = distributed.part(total)
        sources = self._sources(total, generator)
        placements = crop_placements(total, self.cfg.crop_candidates, generator)[keep]
        size, cell = self.cfg.image_size, 2 * factor
        span = self.cfg.crop // cell                       # tokens per crop side
        grid = size // cell                                # tokens per half-size render side
        token_crops, targets = [], []
        for seed, candidates in zip(sources[keep], placements):
            high = self._load([seed])[0]
            low = render_landscape(seed, size // 2)[0]
            if candidates[0][2] % 2:
                high, low = high.flip(-1), low.flip(-1)
            tokens = encode(low[None])[0]                  # (grid, grid)
            options = []
            for top, left, _ in candidates:
                top, left = top % (grid - span + 1), left % (grid - span + 1)
                options.append((tokens[top:top + span, left:left + span],
                                high[:, top * cell:(top + span) * cell, left * cell:(left + span) * cell]))
            chosen = busiest(options, key=lambda option: option[1])
            token_crops.append(chosen[0])
            targets.append(chosen[1])
        return torch.stack(token_crops), torch.stack(targets)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _render_array(seed: int, size: int) -> np.ndarray:
    """Worker-side render: (size, size, 3) uint8 (arrays pickle cheaply; tensors need torch)."""
    from nar.data.landscapes import generate_landscape
    return generate_landscape(seed, size, size)[0]


class TokenizerTask:
    def __init__(self, cfg: TokenizerConfig, model: VQGAN | None = None,
                 lpips_model: torch.nn.Module | None = None, build_perceptual: bool = True):
        cfg.validate()
        self.cfg = cfg
        # under torchrun: join the process group before the quantizer is built (it synchronises
        # its EMA codebook and k-means init over ranks when a process group exists)
        distributed.init()
        # initial weights from train.seed: same seed, same run (the global RNG is left alone)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.train.seed)
            self.model = model if model is not None else VQGAN(cfg)
            self.losses = VQLoss(cfg, lpips_model=lpips_model, build_perceptual=build_perceptual)
        if cfg.init_from and model is None:   # a resumed run's own checkpoint replaces these
            parent = set()
            if Path(cfg.init_from).is_file():   # a missing file is reported by load_weights_into
                from safetensors import safe_open
                with safe_open(str(cfg.init_from), "pt") as f:
                    parent = set(f.keys())
            load_weights_into(self.model, cfg.init_from, "tokenizer", "vqgan",
                              keep_own=lambda name: self._grown(name, parent))
        if cfg.train_parts == "decoder":
            for module in (self.model.encoder, self.model.quant_conv, self.model.quantizer):
                module.requires_grad_(False)
        self.images = TrainImages(cfg)
        self._snapshot_images: torch.Tensor | None = None
        self._perplexity_avg: float | None = None   # running batch perplexity (collapse watch)
        self._collapse_reported = False

    def _grown(self, name: str, parent: set[str]) -> bool:
        """Tensors this run adds to its init_from model and initialises itself, when that model lacks
        them: a fresh codebook (k-means filled before the first step), the decoder's extra blocks and
        its upscaling level (the identity)."""
        if self.cfg.init_codebook == "kmeans" and name.startswith("quantizer."):
            return True
        # a parent that has them already (grown in an earlier stage) gives its trained ones
        new_part = (name.startswith("decoder.up.") and ".extra." in name) or name.startswith("decoder.upscale.")
        return new_part and name not in parent

    def data_state(self) -> dict[str, Any] | None:
        """Where the shard stream stands (images this rank has taken), for exact resume."""
        if self.images.stream is None:
            return None
        return {"consumed": self.images.stream.consumed, "world_size": distributed.world_size(),
                "workers": self.images.stream.workers}

    def load_data_state(self, state: dict[str, Any] | None, saved_world_size: int) -> None:
        stream = self.images.stream
        if stream is None or not state:
            return
        if (state["world_size"], state["workers"]) == (distributed.world_size(), stream.workers):
            stream.stream.start = stream.consumed = int(state["consumed"])
        elif distributed.is_main():
            print(f"shard stream: {state['world_size']} ranks x {state['workers']} workers before, "
                  f"{distributed.world_size()} x {stream.workers} now; the stream starts a new pass", flush=True)

    def _codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Decoder-only training: the frozen encoder and codebook give the codes (no EMA
        update, no gradient), so the tokens stay exactly those of ``init_from``."""
        with torch.no_grad():
            self.model.encoder.eval()
            tokens = self.model.encode(x)
            quantized = self.model.quantizer.lookup(tokens)
        info = {"tokens": tokens, **usage_stats(code_counts(tokens, self.cfg.codebook_size))}
        return self.model.decode_codes(quantized), torch.zeros((), device=x.device), info

    def _upscale_pair(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(targets, their 2x decodes, info) for a decoder grown to upscale (decoder_upscale = 2)."""
        self.model.encoder.eval()
        with torch.no_grad():
            tokens, x = self.images.pair_batch(self.cfg.train.batch_size, generator,
                                               lambda image: self.model.encode(image.to(self.model.device)),
                                               self.cfg.factor)
        x, tokens = x.to(self.model.device), tokens.to(self.model.device)
        info = {"tokens": tokens, **usage_stats(code_counts(tokens, self.cfg.codebook_size))}
        recon = self.model.decode_codes(self.model.quantizer.lookup(tokens))
        return x, recon, info

    # ---- TrainTask protocol -------------------------------------------------------------
    def optimizers(self) -> dict[str, list[torch.nn.Parameter]]:
        gen = [p for p in self.model.parameters() if p.requires_grad]
        return {"gen": gen, "disc": list(self.losses.discriminator.parameters())}

    def extra_modules(self) -> dict[str, torch.nn.Module]:
        return self.losses.trained_modules()

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"kind": "tokenizer", "name": "vqgan", "config": self.cfg.model_dict(),
                "factor": self.cfg.factor, "codebook_size": self.cfg.codebook_size,
                "codebook_dim": self.cfg.codebook_dim,
                "perceptual_weight_used": self.losses.perceptual_weight,
                **({"tokens_hash": self._parent_tokens_hash()} if self.cfg.train_parts == "decoder" else {})}

    def saved_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """A saved run's model config as this code reads it: a field added since (e.g. lecam_weight)
        takes its default, so a run saved before it existed resumes when that default is in use."""
        return TokenizerConfig.from_model_dict(config).model_dict()

    def _parent_tokens_hash(self) -> str:
        from nar.tokenizer.load import tokenizer_hash
        return tokenizer_hash(self.cfg.init_from)

    def train_step(self, step: int, generator: torch.Generator,
                   optimize: Callable[[str, torch.Tensor], None]) -> dict[str, float]:
        device = self.model.device
        if not self.model.quantizer.initialised:
            self._kmeans_init(generator, device)
        if self.cfg.decoder_upscale == 2:
            x, recon, info = self._upscale_pair(generator)
            quant_loss = torch.zeros((), device=device)
        else:
            x = self.images.batch(self.cfg.train.batch_size, generator).to(device)
            recon, quant_loss, info = self._codes(x) if self.cfg.train_parts == "decoder" else self.model(x)
        loss, metrics = self.losses.generator_loss(x, recon, quant_loss, step, self.model.decoder.last_layer)
        if not math.isfinite(metrics["loss"]):
            raise NarError(f"tokenizer loss is {metrics['loss']} at step {step}; lower train.lr "
                           "or check the data")
        optimize("gen", loss)
        if self.losses.disc_active(step):
            d_loss, d_metrics = self.losses.discriminator_loss(x, recon)
            optimize("disc", d_loss)
            metrics.update(d_metrics)
        metrics.update(psnr=float(psnr(recon.detach(), x).mean()), usage=info["usage"],
                       perplexity=info["perplexity"])
        self._watch_codebook(step, info["perplexity"])
        return metrics

    def _watch_codebook(self, step: int, perplexity: float) -> None:
        """Say so (once) when the codebook has collapsed onto a handful of codes."""
        self._perplexity_avg = perplexity if self._perplexity_avg is None else (
            0.95 * self._perplexity_avg + 0.05 * perplexity)
        floor = max(2.0, COLLAPSE_FRACTION * self.cfg.codebook_size)
        if step >= COLLAPSE_WATCH_FROM and self._perplexity_avg < floor and not self._collapse_reported:
            self._collapse_reported = True
            warn_once(f"codebook collapse: batch perplexity ~{self._perplexity_avg:.1f} of "
                      f"{self.cfg.codebook_size} codes at step {step}; lower train.lr, raise "
                      "threshold_ema_dead_code or lower decay")

    def _kmeans_init(self, generator: torch.Generator, device: torch.device) -> None:
        """k-means on enough latents (>= 4 per code) before the first step; the images come
        from the step generator, so this is part of the deterministic run."""
        tokens_per_image = (self.cfg.crop // self.cfg.factor) ** 2
        wanted = math.ceil(KMEANS_VECTORS_PER_CODE * self.cfg.codebook_size / tokens_per_image)
        world = distributed.world_size()
        global_batch = self.cfg.train.batch_size * world
        n_images = min(KMEANS_MAX_IMAGES, max(global_batch, wanted))
        n_images = math.ceil(n_images / world) * world     # every rank encodes an equal part
        if n_images * tokens_per_image < self.cfg.codebook_size:
            warn_once(f"k-means init sees {n_images * tokens_per_image} latents for {self.cfg.codebook_size} "
                      "codes (duplicates); larger crops or a smaller codebook_size fix this")
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():   # chunks of the global batch; this rank encodes its part of each
            latents = [self.model.encode_latent(
                self.images.batch(min(global_batch, n_images - i) // world, generator).to(device))
                for i in range(0, n_images, global_batch)]
        self.model.train(was_training)
        # under torchrun the library's k-means runs over all ranks' latents (counts summed);
        # per-rank batch / per-rank latents is the same ratio as global / global
        self.model.quantizer.kmeans_init_(torch.cat(latents),
                                          batch_latents=self.cfg.train.batch_size * tokens_per_image)

    @torch.no_grad()
    def snapshot(self, model: VQGAN, step: int, out_dir: Path) -> None:
        """PNG with held-out inputs (top row) and their reconstructions (bottom row)."""
        if self._snapshot_images is None:
            self._snapshot_images = self.images.fixed_examples(self.cfg.snapshot_n)
        x = self._snapshot_images.to(model.device)
        # an upscaling decoder draws the half-size image's tokens at full size
        low = x if self.cfg.decoder_upscale == 1 else torch.nn.functional.avg_pool2d(x, 2)
        recon = model.decode_tokens(model.encode(low))
        save_png(row_grid([x, recon]), Path(out_dir) / f"step_{step:07d}.png")
