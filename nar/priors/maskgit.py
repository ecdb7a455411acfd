"""MaskGIT / Muse: a bidirectional transformer over the token grid, trained to fill in masked
tokens and sampled by iterative parallel decoding.

Network
    token embedding (codebook_size + 1 ids; the last id, ``codebook_size``, is ``[MASK]``)
    + class embedding (``num_classes + 1`` rows, the last the null class) added to every token
    + learned row/column embedding (see Positions)
    → x-transformers ``Encoder`` (pre-norm, non-causal) with 2D axial rotary positions
    → linear head over codebook_size + 1 ids. The ``[MASK]`` logit is never trained on and
    never sampled (it is cut off before the loss and before sampling).

Positions
    Two signals, each doing what it is good at:

    * 2D axial rotary in every attention layer (``nar.nn.rotary.AxialRotary2D``, integer
      positions): each head rotates half its features with the row index and half with the
      column index, so attention sees relative (Δrow, Δcol) offsets at their native scale,
      whatever the grid size.
    * a learned absolute row table and column table (``train_grid`` entries each) added to
      the input. Without it an all-``[MASK]`` input would be the same at every position and a
      purely relative model could tell positions apart only by their distance to the border,
      so the first decoding step could not lay out a scene (sky on top, ground below). On a
      grid of another size the tables are linearly interpolated: the absolute signal gives
      the *fractional* position (the same layout, stretched), the rotary keeps local
      structure at token scale. A model trained on 16×16 thus runs on 32×32 or 64×64 grids
      (how good the result is depends on how local the learnt attention is, as for every
      extrapolation). Plain absolute tables, not interpolated, would have no entry for a row
      beyond the training grid, and sampling a larger grid would simply fail.

    The class is *added* to every token rather than prepended as an extra token: a
    prepended token would need a position of its own, and its rotary angle relative to
    far-away grid cells (never seen in training) would break the relative-offset picture.

Raster layout (``layout = "raster"``): the ar prior's network, run without its causal mask
    The grid as ar reads it: position 0 holds the class embedding, position k > 0 the token of
    cell k - 1 (``[MASK]`` or a code), every position carries the learned row and column of cell k
    and 1D rotary offsets along the raster sequence, and the output at position k gives cell k's
    logits. The last cell's token is never an input (it has no position to sit at). With ar's
    tensor names and shapes it starts from a trained ar (`adopt_weights`): at first it predicts
    each cell from the cells before it as ar does, and fine-tuning teaches it to read the cells
    after it and the masks (LLaMA-to-diffusion adaptations such as DiffuLLaMA keep the same shift
    so that the causal model's output head stays valid). Every layer attends over all h·w
    tokens at full resolution, so a step costs several times an hourglass step; grids no larger
    than the training grid.

Training (``loss``)
    Per sample: u ~ U(0, 1), mask ratio r = γ(u) (cosine schedule: r = cos(π/2 · u)),
    ``max(1, ceil(r · N))`` positions chosen uniformly at random are replaced by ``[MASK]``;
    cross-entropy with label smoothing on the masked positions only. The condition is
    dropped with probability ``cond_drop_prob`` so classifier-free guidance works.

Sampling (``sample``), T steps
    Start all-masked (inpainting: known tokens in place, only the rest masked; N counts
    the unknown tokens). Step t: one forward pass (cond + uncond batched when CFG is on),
    sample every masked position (temperature / top-k / top-p; ``temperature_end`` ramps the
    temperature linearly to that last-step value, as sundae's does), score each new token by
    its log-probability under the model plus Gumbel noise × choice_temperature · (1 - (t+1)/T)
    (fixed tokens score +inf), then re-mask the n_t lowest-scoring new tokens, where n_t comes
    from ``nar.sampling.schedules.mask_counts``. Adding Gumbel noise to *log*-probabilities
    (as the reference MaskGIT does) makes the kept set a sample without replacement in
    proportion to p^(1/τ); noise on raw probabilities would swamp them.
    Guidance: ``cfg_schedule = "linear"`` (MAR's) scales CFG with the share of generated tokens
    already fixed, 1 + (cfg - 1) · progress: the layout steps sample the conditional model
    unguided, the detail steps get the full scale; "falling" runs from cfg down to 1. "constant"
    (the default) keeps cfg throughout. ``epsilon`` > 0 never draws a code below that probability.

Refinement and Best of K: `nar.priors.maskgit_critic` (the model as its own critic).

Fix order (``order``)
    "confidence" (the config default, MaskGIT's): each step keeps the new tokens the model is most sure
    of, ranked with the Gumbel noise above. Sure tokens cluster (a sky, a flat field), so a step
    fixes runs of neighbours drawn independently of one another. "halton" (Besnier et al., ICLR
    2025): the model's confidence is not used; each step fixes the next cells of a 2D Halton
    sequence (`nar.sampling.orders`, rolled by a random offset per sample), so every step's new
    tokens are spread evenly over the grid and each is drawn beside tokens already fixed. The
    paper pairs it with the "arccos" schedule (many tokens in the last steps, when every masked
    cell has fixed neighbours). Not with ``outside_in``, which is a confidence order. The shipped
    maskgit draws in Halton order at token temperature 0.65 (benchmarks/results/issue13, session 41):
    a set order keeps every draw, where the confidence order also filtered out tail draws.

Fill order and start (inpainting only)
    ``outside_in`` λ > 0: a masked cell's confidence loses λ nats per cell of distance from the
    kept tokens, so a fill is fixed from its border inwards (ring by ring for large λ).
    ``init = "reflect"``: the region starts as its kept border mirrored in, row by row
    (`nar.sampling.fill.reflect_fill`, exemplar-based inpainting's copy step), and the model
    only redraws it through its refinement rounds (no decoding steps).

"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from x_transformers import Encoder

from nar.core.device import PRECISIONS
from nar.core.errors import ArgumentError, NarError
from nar.nn.flops import transformer_flops
from nar.nn.hourglass import Hourglass2D, HourglassConfig, count_flops, patch_offset, run_shifted
from nar.nn.positions import AbsolutePositions2D, grid_positions
from nar.nn.rotary import AxialRotary2D
from nar.priors.base import Prior, SampleOutput, SampleRequest
from nar.priors.maskgit_critic import SelfCritic, check_best_of, check_refinement
from nar.priors.maskgit_raster import RasterLayout
from nar.priors.registry import PRIORS
from nar.sampling.fill import distance_to_kept, reflect_fill
from nar.sampling.filters import (ascending_ranks, check_config_temperature, epsilon_filter, gumbel_noise,
                                  sample_logits)
from nar.sampling.orders import halton_ranks
from nar.sampling.schedules import (check_guidance_schedule, get_schedule, guidance_scale, mask_counts,
                                    temperature_ramp)

__all__ = ["MaskGITConfig", "MaskGITPrior"]


@dataclass
class MaskGITConfig:
    dim: int = 512
    depth: int = 12
    heads: int = 8                  # dim_head = dim // heads, must be divisible by 4 (2D rotary)
    ff_mult: int = 4
    dropout: float = 0.1
    cond_drop_prob: float = 0.1
    label_smoothing: float = 0.1
    schedule: str = "cosine"        # mask schedule γ, training ratio and sampling counts alike
    choice_temperature: float = 4.5  # Gumbel noise on the confidence, decays linearly to 0
    steps: int = 12                 # default number of decoding steps
    rotary_theta: float = 10_000.0
    sample_precision: str = "auto"  # sampling: auto (bf16 where the hardware has it natively) | fp32 | bf16
    # the network: None = the x-transformers encoder above (dim, depth, heads, ff_mult, dropout,
    # rotary_theta); a HourglassConfig = SUNDAE's 2D hourglass instead (those fields unused), with
    # learned absolute positions, for megapixel grids (4096 tokens) at CPU cost
    net: HourglassConfig | None = None
    layout: str = "grid"            # "grid": the network above; "raster": ar's network without its causal
                                    # mask (Raster layout; dim, depth, heads, ff_mult, dropout)
    shift_patches: bool = False     # hourglass only: move its patch grid (random per training batch,
                                    # every offset in turn while sampling), as SUNDAE's shift_patches
    box_corruption: float = 0.0     # training: share of samples masked only inside a random box (the
                                    # inpainting setting; Prior.training_regions)
    refine_rounds: int = 0          # sampling: rounds of re-masking the least likely tokens (Refinement)
    refine_ratio: float = 0.1       # share of the generated tokens re-masked per round
    refine_steps: int = 2           # decoding steps that redraw them
    init: str = "mask"              # inpainting: start the region all [MASK] | from the reflected kept tokens
    outside_in: float = 0.0         # inpainting: nats off the confidence per cell from the kept tokens (Fill order)
    candidates: int = 1             # sampling: draws per image, the best one kept (Best of K)
    rank_ring: int = 1              # inpainting: width in tokens of the kept ring that ranks the fills
    cfg_schedule: str = "constant"  # sampling: guidance scale over the steps (nar.sampling.schedules)
    epsilon: float = 0.0            # sampling: drop codes below this probability (epsilon sampling; 0: off)
    temperature: float = 1.0        # sampling: the token temperature when the caller gives none
    temperature_end: float | None = None  # sampling: last-step token temperature for a start of 1 (None: constant)
    order: str = "confidence"       # sampling: which tokens a step fixes: the most confident (MaskGIT) |
                                    # the next ones of a 2D Halton sequence (Fix order, above)

    def __post_init__(self):
        if isinstance(self.net, dict):  # from TOML / a checkpoint's config
            self.net = HourglassConfig(**self.net)
        if self.layout not in LAYOUTS:
            raise NarError(f"maskgit: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.layout == "raster" and self.net is not None:
            raise NarError("maskgit: the raster layout is ar's transformer; it takes no [model.net] hourglass")
        if self.shift_patches and self.net is None:
            raise NarError("maskgit: shift_patches needs the hourglass network ([model.net])")
        if self.sample_precision not in PRECISIONS:
            raise NarError(f"maskgit: sample_precision must be one of {', '.join(PRECISIONS)}, "
                           f"got {self.sample_precision!r}")
        if not 0.0 <= self.box_corruption <= 1.0:
            raise NarError(f"maskgit: box_corruption must be in [0, 1], got {self.box_corruption}")
        check_refinement(self.refine_rounds, self.refine_ratio, self.refine_steps)
        check_best_of(self.candidates, self.rank_ring)
        if self.outside_in < 0:
            raise NarError(f"maskgit: outside_in must be >= 0, got {self.outside_in}")
        if self.init not in INITS:
            raise NarError(f"maskgit: init must be one of {', '.join(INITS)}, got {self.init!r}")
        check_config_temperature("maskgit", self.temperature)
        if self.order not in ORDERS:
            raise NarError(f"maskgit: order must be one of {', '.join(ORDERS)}, got {self.order!r}")


INITS = ("mask", "reflect")   # how an inpainting region starts (Fill order, above)
ORDERS = ("confidence", "halton")  # which masked tokens a decoding step fixes (Fix order, above)
LAYOUTS = ("grid", "raster")  # the network's input layout (Positions / Raster layout, above)
# options ``sample`` accepts beyond the shared arguments
SAMPLE_OPTIONS = ("choice_temperature", "temperature_end", "schedule", "refine_rounds", "refine_ratio",
                  "refine_steps", "cfg_schedule", "epsilon", "init", "outside_in", "candidates", "rank_ring", "order")


@PRIORS.register("maskgit")
class MaskGITPrior(SelfCritic, RasterLayout, Prior):
    name = "maskgit"
    config_cls = MaskGITConfig
    default_steps = 12
    sample_options = SAMPLE_OPTIONS

    def __init__(self, cfg: MaskGITConfig, codebook_size: int, num_classes: int = 0,
                 train_grid: tuple[int, int] = (16, 16)):
        super().__init__(cfg, codebook_size, num_classes, train_grid)
        if cfg.dim % cfg.heads:
            raise NarError(f"maskgit: dim {cfg.dim} is not divisible by heads {cfg.heads}")
        dim_head = cfg.dim // cfg.heads
        if dim_head % 4:
            raise NarError(f"maskgit: dim // heads = {dim_head} must be divisible by 4 for 2D rotary")
        get_schedule(cfg.schedule)  # unknown names fail at build time, not at sampling time
        self.mask_id = self.codebook_size
        dim = cfg.dim if cfg.net is None else cfg.net.dim
        self.tok_emb = nn.Embedding(self.codebook_size + 1, dim)
        self.cls_emb = nn.Embedding(self.num_classes + 1, dim)
        if cfg.layout == "raster":
            self._build_raster(dim, dim_head)
        elif cfg.net is None:
            self.row_emb = nn.Parameter(torch.randn(self.train_grid[0], dim) * 0.02)
            self.col_emb = nn.Parameter(torch.randn(self.train_grid[1], dim) * 0.02)
            self.emb_dropout = nn.Dropout(cfg.dropout)
            self.rotary = AxialRotary2D(dim_head, theta=cfg.rotary_theta)
            self.encoder = Encoder(dim=dim, depth=cfg.depth, heads=cfg.heads, attn_dim_head=dim_head,
                                   ff_mult=cfg.ff_mult, attn_dropout=cfg.dropout, ff_dropout=cfg.dropout,
                                   attn_flash=True)
        else:
            self.positions = AbsolutePositions2D(self.train_grid, dim)
            self.net = Hourglass2D(cfg.net)  # ends in a LayerNorm
        self.to_logits = nn.Linear(dim, self.codebook_size + 1)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.cls_emb.weight, std=0.02)

    # ---- network -------------------------------------------------------------------------
    def abs_positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """(h*w, dim) absolute position embedding for an h×w grid in raster order."""
        return grid_positions(self.row_emb, self.col_emb, *grid).flatten(0, 1)

    def forward(self, ids: torch.Tensor, class_ids: torch.Tensor, grid: tuple[int, int],
                select: torch.Tensor | None = None, shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """ids (B, h*w) in raster order, class_ids (B,) -> logits (B, h*w, codebook_size + 1).

        With a (B, h*w) bool ``select``, only the selected positions go through the output
        head: (M, codebook_size + 1) in raster order, batch-major (saves the B·N·V logits
        that training and sampling would throw away). ``shift``: the hourglass's patch-grid
        offset (`nar.nn.hourglass.run_shifted`)."""
        h, w = grid
        if self.cfg.layout == "raster":
            x = self._raster(ids, class_ids, w)
        elif self.cfg.net is None:
            x = self.tok_emb(ids) + self.cls_emb(class_ids)[:, None] + self.abs_positions(grid)
            x = self.emb_dropout(x)
            freqs = self.rotary.freqs(h, w, device=ids.device)[None]  # (1, N, dim_head)
            x = self.encoder(x, rotary_pos_emb=(freqs, 1.0))
        else:
            x = rearrange(self.tok_emb(ids), "b (h w) d -> b h w d", h=h, w=w)
            x = x + self.cls_emb(class_ids)[:, None, None] + self.positions(h, w)
            x = rearrange(run_shifted(self.net, x, shift), "b h w d -> b (h w) d")
        return self.to_logits(x if select is None else x[select])

    def patch_shift(self, step: int | None = None) -> tuple[int, int]:
        """The hourglass's patch-grid offset: (0, 0) unless ``shift_patches``; random in training
        (step None), step t's of a fixed cycle in sampling (`nar.nn.hourglass.patch_offset`)."""
        return patch_offset(self.grid_multiple, step) if self.cfg.shift_patches else (0, 0)

    @property
    def grid_multiple(self) -> int:
        return 1 if self.cfg.net is None else self.cfg.net.total_shortening

    def check_grid(self, grid: tuple[int, int]) -> tuple[int, int]:
        h, w = super().check_grid(grid)
        if self.cfg.layout == "raster" and (h > self.train_grid[0] or w > self.train_grid[1]):
            raise NarError(f"maskgit: a {h}x{w} grid is larger than the raster layout's training grid "
                           f"{self.train_grid[0]}x{self.train_grid[1]}; its row and column tables end there")
        if self.cfg.net is not None:
            t = self.grid_multiple
            if h % t or w % t:
                raise NarError(f"maskgit: token grid {h}x{w} is not divisible by the hourglass shortening {t}; "
                               f"use sides that are multiples of {t}")
        return h, w

    def adopt_weights(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Start from a trained *sundae* checkpoint of the same hourglass (`nar train --prior
        maskgit --init-from sundae.safetensors`): both predict every token of a corrupted grid
        from the same network, so only the input and output tables differ. The ``[MASK]`` row
        starts as the mean token embedding (SUNDAE's corrupted cells are random tokens, whose
        expectation that is); the head's ``[MASK]`` output row, never trained or sampled, is 0."""
        if meta.get("name") == "ar" and self.cfg.layout == "raster":
            return self._adopt_ar(tensors, meta)
        if meta.get("name") != "sundae" or self.cfg.net is None:
            raise NarError("maskgit starts from another prior's weights only from a sundae checkpoint, "
                           "into the hourglass network ([model.net] the same as that sundae's), or from an "
                           "ar checkpoint into the raster layout (layout = \"raster\")")
        mapped = self._with_mask_rows(tensors["tok_emb.weight"], tensors["head.weight"], tensors["head.bias"])
        mapped["cls_emb.weight"] = tensors["class_emb.weight"]
        for k, v in tensors.items():
            if k.startswith(("net.", "positions.")):
                mapped[k] = v
        self._load_adopted(mapped, "sundae", "give [model.net] the sundae's network, the same tokenizer "
                           "and the same classes")

    @staticmethod
    def _with_mask_rows(emb: torch.Tensor, head_weight: torch.Tensor,
                        head_bias: torch.Tensor) -> dict[str, torch.Tensor]:
        """A parent's (V, d) token table and (V, d) / (V,) output head as this prior's, each with a
        ``[MASK]`` row added: the mean token embedding in, zeros out (never trained or sampled)."""
        return {"tok_emb.weight": torch.cat([emb, emb.mean(0, keepdim=True)]),
                "to_logits.weight": torch.cat([head_weight, torch.zeros_like(head_weight[:1])]),
                "to_logits.bias": torch.cat([head_bias, torch.zeros_like(head_bias[:1])])}

    # ---- training --------------------------------------------------------------------------
    def loss(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if tokens.ndim != 3:
            raise NarError(f"maskgit expects (B, h, w) token grids, got shape {tuple(tokens.shape)}")
        b, h, w = tokens.shape
        n = h * w
        target = tokens.reshape(b, n).to(self.device, torch.long)
        gamma = get_schedule(self.cfg.schedule)
        u = torch.rand(b).tolist()
        region = self.training_regions(b, (h, w))
        size = [n] * b if region is None else region.reshape(b, n).sum(dim=1).tolist()
        n_masked = torch.tensor([min(k, max(1, math.ceil(gamma(x) * k))) for x, k in zip(u, size)],
                                device=target.device)
        # a uniformly random subset of n_masked[i] positions (of the region): rank them by random scores
        scores = torch.rand(b, n, device=target.device)
        if region is not None:
            scores = scores.masked_fill(~region.reshape(b, n), 2.0)   # outside the box: ranked last
        ranks = ascending_ranks(scores)
        masked = ranks < n_masked[:, None]
        inputs = target.masked_fill(masked, self.mask_id)
        class_ids = self.drop_condition(cond, b)
        logits = self(inputs, class_ids, (h, w), select=masked,
                      shift=self.patch_shift())[:, : self.codebook_size]  # no mass on [MASK]
        labels = target[masked]
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing)
        acc = (logits.argmax(dim=-1) == labels).float().mean()
        return {"loss": loss, "acc": acc.detach()}

    # ---- sampling ----------------------------------------------------------------------------
    def _masked_logits(self, ids: torch.Tensor, is_masked: torch.Tensor, class_ids: torch.Tensor,
                       cfg_scale: float, grid: tuple[int, int], shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """Guided float logits over the real codes at the masked positions: (M, codebook_size).
        The [MASK] logit is cut off here, so it can never be sampled."""
        def forward(c: torch.Tensor, x: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
            return self(x, c, grid, select=select, shift=shift)

        return self.guided(forward, class_ids, cfg_scale, ids, is_masked)[:, : self.codebook_size].float()

    def _sample(self, req: SampleRequest) -> SampleOutput:
        """Iterative parallel decoding (see the module docstring); options: ``choice_temperature``
        (Gumbel noise on the confidences, >= 0), ``schedule`` (a mask schedule name) and the
        refinement settings ``refine_rounds`` / ``refine_ratio`` / ``refine_steps``.
        A ``callback`` sees the ids after each decoding step; still-masked cells hold ``mask_id``
        (= ``codebook_size``)."""
        opts, cfg = req.options, self.cfg
        choice_temperature = float(opts.get("choice_temperature", cfg.choice_temperature))
        if choice_temperature < 0:
            raise ArgumentError("choice_temperature", f"maskgit: choice_temperature must be >= 0, "
                                                      f"got {choice_temperature}")
        schedule = opts.get("schedule", cfg.schedule)
        get_schedule(schedule)
        rounds, ratio, refine_steps = check_refinement(opts.get("refine_rounds", cfg.refine_rounds),
                                                       opts.get("refine_ratio", cfg.refine_ratio),
                                                       opts.get("refine_steps", cfg.refine_steps))
        cfg_schedule = check_guidance_schedule(opts.get("cfg_schedule", cfg.cfg_schedule))
        end = None if opts.get("temperature_end") is None else float(opts["temperature_end"])  # absolute, as sundae's
        if end is not None and end < 0:
            raise ArgumentError("temperature_end", f"maskgit: temperature_end must be >= 0, got {end}")
        epsilon = float(opts.get("epsilon", cfg.epsilon))
        if not 0.0 <= epsilon < 1.0:
            raise ArgumentError("epsilon", f"maskgit: epsilon must be in [0, 1), got {epsilon}")
        outside_in = float(opts.get("outside_in", cfg.outside_in))
        if outside_in < 0 or (outside_in > 0 and req.keep is None):
            raise ArgumentError("outside_in", f"maskgit: outside_in must be >= 0 and needs kept tokens (inpainting), "
                                              f"got {outside_in}{'' if req.keep is not None else ' for free sampling'}")
        order = opts.get("order", cfg.order)
        if order not in ORDERS or (order == "halton" and outside_in > 0):
            raise ArgumentError("order", f"maskgit: order must be one of {', '.join(ORDERS)} ('halton' fixes cells in a "
                                         f"set order, so not with outside_in), got {order!r}")
        init = opts.get("init", cfg.init)
        if init not in INITS or (init == "reflect" and req.keep is None):
            raise ArgumentError("init", f"maskgit: init must be one of {', '.join(INITS)} ('reflect': inpainting "
                                        f"only), got {init!r}{'' if req.keep is not None else ' for free sampling'}")
        candidates, ring = check_best_of(opts.get("candidates", cfg.candidates), opts.get("rank_ring", cfg.rank_ring))
        if candidates > 1:
            if req.keep is None and bool((req.class_ids == self.null_class).any()):
                raise ArgumentError("candidates", "maskgit: candidates > 1 ranks inpainting fills by the kept tokens "
                                                  "around them, and free samples by their class; unconditional free "
                                                  "sampling has nothing to rank by (give a class, or known / keep)")
            return self._best_of(req, candidates, ring)
        steps = req.steps if req.steps is not None else (cfg.steps or self.default_steps)
        n, (h, w), known, keep = req.n, req.grid, req.known, req.keep
        ids = torch.full((n, h * w), self.mask_id, dtype=torch.long, device=self.device)
        if keep is not None:
            ids = torch.where(keep.reshape(n, -1), known.reshape(n, -1), ids)
        generated = ids == self.mask_id          # (n, h*w) the cells this call draws
        unknown = generated.sum(dim=1).tolist()
        if max(unknown) == 0:  # everything kept: nothing to sample
            return SampleOutput(tokens=ids.reshape(n, h, w), steps_run=0, forward_passes=0)
        if init == "reflect":   # the region starts as its reflected border; refinement alone redraws it
            ids = reflect_fill(known.reshape(n, h, w), keep.reshape(n, h, w), req.generator).reshape(n, -1).to(ids.device)

        decode_steps = 0 if init == "reflect" else min(steps, max(unknown))
        redraw = [round(ratio * u) for u in unknown]
        rounds = rounds if max(redraw) else 0
        refine_steps = min(refine_steps, max(max(redraw), 1))
        total = decode_steps + rounds * refine_steps   # what the callback counts
        n_generated = sum(unknown)
        temperatures = temperature_ramp(total, req.temperature, end, cfg.temperature_end)

        order_cost = None if not outside_in else outside_in * distance_to_kept(keep.to(ids.device)).reshape(n, -1)
        places = None if order != "halton" else halton_ranks(h, w, n, req.generator, ids.device)  # (n, h*w)

        def scale_at(is_masked: torch.Tensor) -> float:  # progress: the share of generated tokens fixed
            if cfg_schedule == "constant" or req.cfg_scale == 1.0:
                return req.cfg_scale
            return guidance_scale(req.cfg_scale, 1.0 - int(is_masked.sum()) / n_generated, cfg_schedule)

        if decode_steps:
            ids = self._decode(req, ids, unknown, decode_steps, schedule, choice_temperature, 0, total, temperatures,
                               scale_at, epsilon, order_cost, places)
        passes, done = decode_steps, decode_steps
        for _ in range(rounds):
            support, scoring_passes = self._support(req, ids, generated)  # (n, h*w) log p(token | the rest)
            # re-mask the redraw[i] generated tokens of row i that the model finds least likely
            ranks = ascending_ranks(support.masked_fill(~generated, math.inf))
            ids = ids.masked_fill(ranks < torch.tensor(redraw, device=ids.device)[:, None], self.mask_id)
            ids = self._decode(req, ids, redraw, refine_steps, schedule, choice_temperature, done, total,
                               temperatures, scale_at, epsilon, order_cost, places)
            passes, done = passes + scoring_passes + refine_steps, done + refine_steps
        return SampleOutput(tokens=ids.reshape(n, h, w), steps_run=done, forward_passes=passes)

    def _decode(self, req: SampleRequest, ids: torch.Tensor, unknown: list[int], steps: int, schedule,
                choice_temperature: float, step0: int, total: int, temperatures: list[float],
                scale_at: Callable[[torch.Tensor], float], epsilon: float = 0.0,
                order_cost: torch.Tensor | None = None, places: torch.Tensor | None = None) -> torch.Tensor:
        """Fill the ``mask_id`` cells of ids (n, h*w), ``unknown[i]`` of them in row i, in ``steps``
        steps; a row with fewer unknown cells than ``steps`` finishes early (its later counts are 0).
        step0 / total: where these steps sit in the whole sampling call (patch shift, callback), whose
        per-step token temperatures are ``temperatures``; scale_at(is_masked): a step's guidance scale;
        epsilon: the probability floor below which codes are never drawn (`epsilon_filter`); order_cost:
        (n, h*w) nats taken off each cell's confidence (Fill order); places: (n, h*w) each cell's place in
        a set order (Fix order: "halton"), which then ranks the cells instead of the confidence."""
        n, (h, w), generator, device = req.n, req.grid, req.generator, ids.device
        per_sample = [mask_counts(u, steps, schedule) if u else [] for u in unknown]
        counts = torch.tensor([c + [0] * (steps - len(c)) for c in per_sample], dtype=torch.long, device=device)
        for t in range(steps):
            is_masked = ids == self.mask_id
            logits = self._masked_logits(ids, is_masked, req.class_ids, scale_at(is_masked), (h, w),
                                         self.patch_shift(step0 + t))  # (M, V)
            new = sample_logits(epsilon_filter(logits, epsilon), temperatures[step0 + t], req.top_k, req.top_p,
                                generator)  # (M,)
            sampled = ids.masked_scatter(is_masked, new)
            if places is not None:   # a set order: the cells latest in it stay masked
                confidence = (-places.to(torch.float)).masked_fill(~is_masked, math.inf)
            else:   # confidence: log p(new token) under the (guided) model, + annealed Gumbel noise
                logp = logits.log_softmax(dim=-1).gather(-1, new[:, None]).squeeze(-1)
                noise_scale = choice_temperature * (1.0 - (t + 1) / steps)
                if noise_scale > 0:
                    logp = logp + noise_scale * gumbel_noise(logp.shape, generator, device)
                confidence = torch.full(ids.shape, math.inf, device=device).masked_scatter(is_masked, logp)
            if order_cost is not None:
                confidence = confidence - order_cost
            # re-mask the n_t least confident new tokens (rank 0 = least confident)
            ranks = ascending_ranks(confidence)
            ids = sampled.masked_fill(ranks < counts[:, t: t + 1], self.mask_id)
            if req.callback is not None:
                req.callback(step0 + t, total, ids.view(n, h, w))
        return ids

    # ---- cost -----------------------------------------------------------------------------
    flops_note = "one full forward per step, logits head on the still-masked tokens"

    def forward_flops(self, grid: tuple[int, int], head_positions: int | None = None) -> int:
        """One bidirectional forward over all h·w tokens, the logits head on ``head_positions``
        of them (default: all)."""
        cfg, n = self.cfg, grid[0] * grid[1]
        head_positions = n if head_positions is None else head_positions
        if cfg.net is not None:
            return count_flops(cfg.net, *grid) + 2 * head_positions * cfg.net.dim * (self.codebook_size + 1)
        return transformer_flops(n, cfg.dim, cfg.depth, cfg.dim, cfg.ff_mult * cfg.dim,
                                 head_positions=head_positions, head_out=self.codebook_size + 1)

    def flops_per_image(self, grid: tuple[int, int], steps_run: int | None = None,
                        forward_passes: int | None = None, schedule: str | None = None) -> int | None:
        """Sampling without inpainting: every step runs the whole network; the head only sees
        the positions still masked before that step (``mask_counts`` of ``schedule``: the one
        sampled with, default the config's). Passes that do not follow that schedule are
        counted as full forwards with the head on every token."""
        steps = steps_run if steps_run is not None else self.cfg.steps
        if forward_passes not in (None, steps):
            return self.forward_flops(grid) * int(forward_passes)
        if steps == 0:
            return 0
        n = grid[0] * grid[1]
        masked_before = [n] + mask_counts(n, steps, schedule or self.cfg.schedule)[:-1]
        return sum(self.forward_flops(grid, m) for m in masked_before)
