"""`TokenizerConfig`: one dataclass that fully describes a VQGAN, its losses and its data
(Taming style: the TOML file is the model). Loaded with ``nar.core.config.load_config``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nar.core.config import from_dict, to_dict
from nar.core.errors import NarError
from nar.core.train_config import TrainConfig

REC_LOSSES = ("l1", "mse")
CODEBOOK_UPDATES = ("ema", "learned")
TRAIN_PARTS = ("all", "decoder")
INIT_CODEBOOKS = ("copy", "kmeans")


@dataclass
class TokenizerConfig:
    # --- encoder / decoder (Taming layout); downsampling factor f = 2 ** (len(ch_mult) - 1)
    ch: int = 64
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_at_lowest: bool = True        # self-attention in the lowest-resolution blocks + mid block
    z_channels: int = 256
    dropout: float = 0.0
    # more res blocks in the decoder only, per level from the lowest resolution up (e.g. [2, 2]:
    # two more at f and at f/2 of the output). They start as the identity, so a run with
    # init_from grows a trained decoder without changing what it draws at step 0.
    decoder_extra_blocks: tuple[int, ...] = ()
    # 2: the decoder grows one more level (2x upsampling + ``decoder_upscale_blocks`` res blocks at
    # the top width, the identity at start) and draws each token as 2f x 2f pixels: tokens of an
    # image_size / 2 render are decoded at image_size. Trained decoder-only on pairs (the half-size
    # render's tokens in, the full-size render as the target), it replaces "decode at the prior's
    # size, then a pixel SR" by a decoder that draws the detail itself, GAN and seam terms included.
    decoder_upscale: int = 1
    decoder_upscale_blocks: int = 2

    # --- quantizer (vector-quantize-pytorch); low-dim codes as in ViT-VQGAN / LlamaGen
    codebook_size: int = 1024
    codebook_dim: int = 8              # quant_conv maps z_channels -> codebook_dim before lookup
    use_cosine_sim: bool = True        # l2-normalised codes and inputs
    codebook_update: str = "ema"       # ema (EMA of assigned vectors) | learned (gradient, euclidean only)
    decay: float = 0.99                # EMA decay of the codebook statistics
    kmeans_init: bool = True           # initialise codes by k-means on the first batch
    kmeans_iters: int = 10
    threshold_ema_dead_code: float = 0.5  # replace codes whose EMA count per batch falls below this
    commitment_weight: float = 0.25

    # --- losses
    rec_loss: str = "l1"               # l1 | mse
    perceptual_weight: float = 1.0     # LPIPS (VGG); forced to 0 with a warning when the VGG weights are absent
    lpips_weights: str | None = None   # torchvision vgg16 weights file; default: the torch hub cache
    disc_weight: float = 0.8
    disc_start: int = 10_000           # generator step at which the discriminator switches on
    disc_layers: int = 3
    disc_ch: int = 64
    adaptive_weight: bool = True       # Taming's lambda = |grad L_rec| / (|grad L_gan| + 1e-4)
    disc_loss: str = "hinge"
    lecam_weight: float = 0.0          # LeCam regulariser on the discriminator (0: off), e.g. 0.1
    gradient_weight: float = 0.0       # L1 between image gradients (finite differences): weight-free edge term
    spectral_weight: float = 0.0       # L1 between local amplitude spectra: detail without exact placement
    spectral_patch: int = 16           # tile side of that term (half-overlapping Hann windows)
    seam_weight: float = 0.0           # cost of luminance steps at the token-cell boundaries beyond the input's

    # --- what trains: "all", or "decoder" (encoder, quant_conv and codebook frozen, so the
    # tokens, and every prior trained on them, stay valid while the decoder learns to draw edges)
    train_parts: str = "all"
    init_from: str | None = None       # tokenizer checkpoint whose weights a new run starts from
    # "copy": the codebook comes with init_from (same codebook_size); "kmeans": every other
    # weight comes from init_from and a fresh codebook of codebook_size is k-means initialised
    # on its encoder's latents (a larger codebook without relearning the encoder and decoder)
    init_codebook: str = "copy"

    # --- data
    data_dir: str | None = None        # None: procedural landscapes
    image_size: int = 256              # size images are rendered at (procedural) / resized to (folder)
    crop: int = 256                    # random training crop, <= image_size
    crops_per_image: int = 1           # crops taken from each render / image in a batch
    crop_candidates: int = 1           # each crop is the busiest (most edge) of this many random placements
    render_workers: int = 0            # procedural: processes rendering in parallel (0 = in-process)
    n_train: int = 0                   # procedural: number of distinct training renders (0 = a fresh one per sample)
    data_seed: int = 0                 # procedural training seed space (evaluation uses a disjoint one)
    snapshot_n: int = 4

    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    def validate(self) -> "TokenizerConfig":
        if len(self.ch_mult) < 1:
            raise NarError("tokenizer config: ch_mult needs at least one entry")
        if self.rec_loss not in REC_LOSSES:
            raise NarError(f"tokenizer config: rec_loss must be one of {REC_LOSSES}, not {self.rec_loss!r}")
        if self.codebook_update not in CODEBOOK_UPDATES:
            raise NarError(f"tokenizer config: codebook_update must be one of {CODEBOOK_UPDATES}, "
                           f"not {self.codebook_update!r}")
        if self.codebook_update == "learned" and self.use_cosine_sim:
            raise NarError("tokenizer config: a learned codebook needs use_cosine_sim = false "
                           "(vector-quantize-pytorch supports cosine codes with EMA updates only)")
        if self.disc_loss != "hinge":
            raise NarError("tokenizer config: only disc_loss = 'hinge' is implemented")
        if self.lecam_weight < 0:
            raise NarError("tokenizer config: lecam_weight must be >= 0")
        if self.train_parts not in TRAIN_PARTS:
            raise NarError(f"tokenizer config: train_parts must be one of {TRAIN_PARTS}, not {self.train_parts!r}")
        if self.train_parts == "decoder" and not self.init_from:
            raise NarError("tokenizer config: train_parts = 'decoder' needs init_from = a trained tokenizer "
                           "(its encoder and codebook are kept)")
        if len(self.decoder_extra_blocks) > len(self.ch_mult) or any(n < 0 for n in self.decoder_extra_blocks):
            raise NarError(f"tokenizer config: decoder_extra_blocks needs at most {len(self.ch_mult)} counts "
                           f"(one per level), each >= 0, not {list(self.decoder_extra_blocks)}")
        if self.decoder_upscale not in (1, 2) or self.decoder_upscale_blocks < 0:
            raise NarError(f"tokenizer config: decoder_upscale must be 1 or 2 (not {self.decoder_upscale}) "
                           "and decoder_upscale_blocks >= 0")
        if self.decoder_upscale == 2 and self.train_parts != "decoder":
            raise NarError("tokenizer config: decoder_upscale = 2 trains the decoder alone on a trained "
                           "tokenizer's tokens (train_parts = 'decoder', init_from = that tokenizer)")
        if self.decoder_upscale == 2 and (self.image_size % 2 or (self.crop // 2) % self.factor):
            raise NarError(f"tokenizer config: with decoder_upscale = 2, image_size and crop / 2 must be "
                           f"multiples of 2 and of the factor {self.factor}")
        if self.init_codebook not in INIT_CODEBOOKS:
            raise NarError(f"tokenizer config: init_codebook must be one of {INIT_CODEBOOKS}, "
                           f"not {self.init_codebook!r}")
        if self.init_codebook == "kmeans" and not self.init_from:
            raise NarError("tokenizer config: init_codebook = 'kmeans' needs init_from = a trained tokenizer")
        if self.init_codebook == "kmeans" and self.train_parts == "decoder":
            raise NarError("tokenizer config: train_parts = 'decoder' keeps the tokens of init_from, so its "
                           "codebook must be copied (init_codebook = 'copy')")
        if self.crop > self.image_size:
            raise NarError(f"tokenizer config: crop {self.crop} is larger than image_size {self.image_size}")
        if self.crop % self.factor:
            raise NarError(f"tokenizer config: crop {self.crop} is not a multiple of the factor {self.factor}")
        if self.crops_per_image < 1 or self.render_workers < 0:
            raise NarError("tokenizer config: crops_per_image must be >= 1 and render_workers >= 0")
        if self.crop_candidates < 1:
            raise NarError("tokenizer config: crop_candidates must be >= 1")
        if self.codebook_size < 2:
            raise NarError("tokenizer config: codebook_size must be at least 2")
        return self

    def model_dict(self) -> dict[str, Any]:
        """Everything but the training schedule: what a checkpoint needs to rebuild the model
        (and what a resumed run must share with the run it continues)."""
        data = to_dict(self)
        data.pop("train")
        return data

    @classmethod
    def from_model_dict(cls, data: dict[str, Any]) -> "TokenizerConfig":
        return from_dict(cls, {k: v for k, v in data.items() if k != "train"}, "tokenizer config")
