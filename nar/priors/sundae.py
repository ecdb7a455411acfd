"""SUNDAE: step-unrolled denoising autoencoder on the 2D hourglass (megapixel-SUNDAE).

Training (Savinov et al. 2022, as used by McKinney & Willcocks):
  corrupt the data grid z -> z' (a per-sample fraction r ~ U(0, 1) of the positions gets
  uniform random codes), then unroll the model T times (T = 2):
      logits_1 = f(z'),  z_1 ~ logits_1 (a sample, no gradient through it),
      logits_2 = f(z_1), ...
  and average the cross-entropy against the clean z over every position of every step.

Sampling (megapixel-SUNDAE §3.4):
  z_0 ~ uniform codes; step t draws every token anew from f(z_{t-1}) with a temperature
  annealed linearly from ``temperature`` to ``temperature_end``. With many steps (T >= 20)
  only a random proportion of tokens takes its new value each step; with fewer, all do
  (the paper: otherwise short chains do not get anywhere). A sample whose step would change
  at most ``min_change`` tokens is frozen (it leaves the batch: later steps run on the others
  only), and sampling stops when every sample is frozen. Inpainting resets the known tokens
  at z_0 and after every step, so kept tokens never change but condition everything else.

Differences from the authors' code (vvvm23/sundae-vqgan), on purpose:
- rotary positions per head on a true 2D grid of any shape (``nar.nn.hourglass``), not one
  rotation before the head split on a square-only grid;
- conditional models get a null class, condition dropout and classifier-free guidance, and
  sampling uses the classes it is given (the reference sampled random classes);
- all sampling randomness (z_0, the draws, the partial-update masks) comes from the caller's
  generator, on the model's device, and the draw is made in fp32 even under bf16 autocast;
- the "update all tokens when T < 20" rule of the paper is implemented (the reference always
  updated a fixed proportion);
- optional shifted patch grids (``shift_patches``): the s×s patch merge makes patch borders
  where neighbouring tokens are drawn from different valley vectors, and with one fixed
  grid those borders add up to visible squares (the block ratio at s tokens). With the
  option on, training rolls the grid by a random offset in [0, s)² per batch (positions
  rolled with their tokens, so a wrapped patch knows where its tokens are), and sampling
  moves the offset every step, as Swin shifts its windows between layers;
- optional ``update_rule = "least_confident"``: a partial update redraws the share of tokens whose
  current code the model finds least likely (ranked as MaskGIT ranks its tokens, with decaying
  Gumbel noise), not a random share; tokens the model agrees with stay put;
- optional ``update_rule = "halton"``: the chain also commits cells for good, in a 2D Halton order
  (Besnier et al. 2025, as MaskGIT's ``order = "halton"``) on MaskGIT's cosine schedule: a step's
  newly committed cells take their draw and never change again, the cells not committed yet keep
  SUNDAE's random partial updates. The last step commits the rest, so each token's final value is
  drawn beside committed neighbours spread evenly over the grid, not beside ones redrawn with it;
- optional ``polish`` (a probability P, 0: off): after the last step, one more guided forward
  reads the finished grid, and every token whose code the model gives a probability below P
  given everything around it takes the model's most likely code instead. A chain ending hot
  (temperature > 1, for texture and variety) leaves lone draws from the far tail that no
  neighbour agrees with; they decode as specks. The pass costs one forward and touches a few
  per cent of the tokens (kept inpainting tokens never);
- optional guidance in a limited interval (``cfg_from``, Kynkäänniemi et al. 2024): the first
  steps, which lay the scene out from noise, run unguided, so guidance sharpens the class of a
  layout the model drew freely instead of pulling every chain to its class's most typical one;
- optional learned absolute row/column positions (``abs_positions``, interpolated on other
  grid sizes, ``nar.nn.positions``): from uniform noise a relative-only model can place
  sky and ground only by distance to the border, which gets weak on a 64×64 grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from nar.core.errors import ArgumentError, NarError
from nar.nn.hourglass import Hourglass2D, HourglassConfig, count_flops, patch_offset, run_shifted
from nar.nn.positions import AbsolutePositions2D
from nar.priors.base import Prior, SampleOutput, SampleRequest
from nar.priors.registry import PRIORS
from nar.sampling.fill import nearest_fill
from nar.sampling.filters import ascending_ranks, check_config_top_p, gumbel_noise, sample_logits
from nar.sampling.orders import halton_ranks
from nar.sampling.schedules import check_guidance_schedule, guidance_scale, mask_counts, temperature_ramp

INITS = ("uniform", "nearest")
UPDATE_RULES = ("random", "least_confident", "checkerboard", "halton")

__all__ = ["SundaeConfig", "SundaePrior"]


def _default_net() -> HourglassConfig:
    return HourglassConfig(dim=512, heads=8, dim_head=64, depths=(2, 8, 2), shorten=(2,),
                           ff_mult=4, dropout=0.0)


@dataclass
class SundaeConfig:
    net: HourglassConfig = field(default_factory=_default_net)
    cond_drop_prob: float = 0.1       # training: class id -> null id with this probability (for CFG)
    unroll_steps: int = 2             # training: T of the unrolled denoising loss (>= 1)
    steps: int = 20                   # sampling: default number of steps
    temperature_end: float = 0.7      # sampling: last-step temperature for a start temperature of 1; it
                                      # scales with the start (0.7 start -> 0.7 x this), so it may exceed 1
    update_proportion: float = 0.5    # sampling: share of tokens updated per step when steps >= partial_update_from
    update_rule: str = "random"       # sampling: which tokens take their new value in a partial update:
                                      # random (paper) | least_confident (the ones the model doubts most) |
                                      # checkerboard (one colour per step, in turn: no two side-by-side) |
                                      # halton (random updates, and cells committed in a Halton order)
    choice_temperature: float = 0.0   # sampling, least_confident: Gumbel noise on the doubt, decays to 0
    partial_update_from: int = 20     # sampling: runs with fewer steps update every token (paper §3.4)
    min_change: int = 0               # sampling: freeze a sample once one step changes <= this many of its tokens
    min_steps: int = 2                # sampling: no sample is frozen before this many steps have run
    codebook_init: bool = True        # init token embeddings from the tokenizer's code vectors when given
    abs_positions: bool = False       # add learned absolute row/col positions (off: relative rotary only)
    sample_precision: str = "auto"    # sampling: auto (bf16 where the hardware has it natively) | fp32 | bf16
    inpaint_init: str = "nearest"     # inpainting z_0 of unknown tokens: nearest known token | uniform (paper)
    cfg_schedule: str = "constant"    # sampling: guidance scale over the steps (nar.sampling.schedules)
    shift_patches: bool = False       # move the hourglass's patch grid: random offset per training batch,
                                      # a new offset every sampling step (no fixed patch borders to see)
    box_corruption: float = 0.0       # training: share of samples corrupted only inside a random box
                                      # (clean around it: the inpainting setting; Prior.training_regions)
    top_p: float = 1.0                # sampling: the nucleus filter when the caller gives no top_p (1.0: off)
    polish: float = 0.0               # sampling: after the last step, tokens the model gives p < this -> its argmax
    cfg_from: float = 0.0             # sampling: steps before this share of the chain run unguided

    def __post_init__(self):
        if isinstance(self.net, dict):  # built by hand from a plain dict
            self.net = HourglassConfig(**self.net)
        if self.unroll_steps < 1:
            raise NarError(f"sundae: unroll_steps must be >= 1, got {self.unroll_steps}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise NarError(f"sundae: cond_drop_prob must be in [0, 1), got {self.cond_drop_prob}")
        if self.steps < 1:
            raise NarError(f"sundae: steps must be >= 1, got {self.steps}")
        if self.temperature_end < 0:
            raise NarError(f"sundae: temperature_end must be >= 0, got {self.temperature_end}")
        if not 0.0 < self.update_proportion <= 1.0:
            raise NarError(f"sundae: update_proportion must be in (0, 1], got {self.update_proportion}")
        if self.update_rule not in UPDATE_RULES:
            raise NarError(f"sundae: update_rule must be one of {UPDATE_RULES}, got {self.update_rule!r}")
        if self.choice_temperature < 0:
            raise NarError(f"sundae: choice_temperature must be >= 0, got {self.choice_temperature}")
        if self.min_change < 0 or self.min_steps < 0:
            raise NarError("sundae: min_change and min_steps must be >= 0")
        if self.inpaint_init not in INITS:
            raise NarError(f"sundae: inpaint_init must be one of {INITS}, got {self.inpaint_init!r}")
        if self.shift_patches and not self.abs_positions:
            raise NarError("sundae: shift_patches needs abs_positions = true (a patch that wraps around "
                           "the grid's edge must know where its tokens are)")
        if self.sample_precision not in ("auto", "fp32", "bf16"):
            raise NarError(f"sundae: sample_precision must be auto, fp32 or bf16, got {self.sample_precision!r}")
        if not 0.0 <= self.box_corruption <= 1.0:
            raise NarError(f"sundae: box_corruption must be in [0, 1], got {self.box_corruption}")
        check_config_top_p("sundae", self.top_p)
        if not 0.0 <= self.polish <= 1.0:
            raise NarError(f"sundae: polish must be in [0, 1], got {self.polish}")
        if not 0.0 <= self.cfg_from <= 1.0:
            raise NarError(f"sundae: cfg_from must be in [0, 1], got {self.cfg_from}")


@dataclass
class _DenoisePlan:
    """What one sampling run does per step (from the options and the config)."""
    temperatures: list[float]     # one per step: the number of steps at most
    update_proportion: float      # share of tokens that take their new value each step
    min_change: int               # a sample whose draw changes <= this many tokens is frozen...
    min_steps: int                # ...once this many steps have run
    init: str = "uniform"         # z_0 of unknown tokens: uniform noise, or "nearest" known token (inpainting)
    cfg_schedule: str = "constant"  # guidance scale per step: constant | linear | falling in the share of steps run
    update_rule: str = "random"   # which tokens a partial update changes (SundaeConfig.update_rule)
    choice_temperature: float = 0.0
    polish: float = 0.0           # probability below which a finished token takes the argmax (0: off)
    cfg_from: float = 0.0         # share of the steps run before guidance starts


@PRIORS.register("sundae")
class SundaePrior(Prior):
    name = "sundae"
    config_cls = SundaeConfig
    default_steps = 20

    def __init__(self, cfg: SundaeConfig, codebook_size: int, num_classes: int = 0,
                 train_grid: tuple[int, int] = (16, 16)):
        super().__init__(cfg, codebook_size, num_classes, train_grid)
        dim = cfg.net.dim
        self.tok_emb = nn.Embedding(self.codebook_size, dim)
        self.class_emb = nn.Embedding(self.num_classes + 1, dim)  # last row: null / dropped
        self.net = Hourglass2D(cfg.net)                           # ends in a LayerNorm
        self.head = nn.Linear(dim, self.codebook_size)
        self.positions = AbsolutePositions2D(self.train_grid, dim) if cfg.abs_positions else None
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.class_emb.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    # ---- model ------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor,
                shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """(B, h, w) ids and (B,) class ids -> (B, h, w, V) logits. The class embedding is
        added at every position (the null id for unconditional). ``shift`` = (dy, dx) moves
        the hourglass's patch grid: the embedded grid is rolled by it (every token keeps its
        own position embedding) and the network's output rolled back."""
        x = self.tok_emb(tokens) + self.class_emb(class_ids)[:, None, None, :]
        if self.positions is not None:
            x = x + self.positions(tokens.shape[1], tokens.shape[2])
        return self.head(run_shifted(self.net, x, shift))

    def patch_shift(self, step: int | None = None) -> tuple[int, int]:
        """The patch-grid offset (dy, dx): (0, 0) unless ``shift_patches``; in training (step
        None) a random one from the default generator, in sampling step t's from a fixed cycle
        that visits every offset of the s×s patch before repeating (the same for every seed)."""
        return patch_offset(self.grid_multiple, step) if self.cfg.shift_patches else (0, 0)

    @property
    def grid_multiple(self) -> int:
        return self.cfg.net.total_shortening

    def check_grid(self, grid: tuple[int, int]) -> tuple[int, int]:
        h, w = super().check_grid(grid)
        t = self.grid_multiple
        if h % t or w % t:
            up = lambda v: -(-v // t) * t  # noqa: E731
            raise NarError(
                f"sundae: token grid {h}x{w} is not divisible by the hourglass shortening {t} "
                f"(net.shorten={list(self.cfg.net.shorten)}); use sides that are multiples of {t}, "
                f"e.g. {up(h)}x{up(w)}")
        return h, w

    flops_note = "one hourglass forward per step run"

    def forward_flops(self, grid: tuple[int, int]) -> int:
        """Forward FLOPs for one sample on an h×w grid (hourglass + logits head)."""
        h, w = grid
        return count_flops(self.cfg.net, h, w) + 2 * h * w * self.cfg.net.dim * self.codebook_size

    def flops_per_image(self, grid: tuple[int, int], steps_run: int | None = None,
                        forward_passes: int | None = None) -> int:
        passes = next(p for p in (forward_passes, steps_run, self.cfg.steps) if p is not None)
        return self.forward_flops(grid) * int(passes)

    def init_from_codebook(self, codebook: torch.Tensor) -> bool:
        """Token embedding = centred code vectors through a fixed orthogonal projection
        (pairwise distances preserved when code dim <= model dim), scaled to std 0.02."""
        if not self.cfg.codebook_init:
            return False
        codebook = codebook.detach().float().cpu()
        if codebook.ndim != 2 or codebook.shape[0] != self.codebook_size:
            raise NarError(f"sundae: codebook of shape {tuple(codebook.shape)} does not fit a prior "
                           f"with {self.codebook_size} codes")
        centred = codebook - codebook.mean(dim=0, keepdim=True)
        proj = torch.empty(codebook.shape[1], self.cfg.net.dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            nn.init.orthogonal_(proj)
        emb = centred @ proj
        emb = emb * (0.02 / emb.std().clamp_min(1e-12))
        with torch.no_grad():
            self.tok_emb.weight.copy_(emb.to(self.tok_emb.weight))
        return True

    def adopt_weights(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Start from a trained *maskgit* checkpoint of the same hourglass (`nar train --prior
        sundae --init-from maskgit.safetensors`), the reverse of `MaskGITPrior.adopt_weights`: the
        network is shared, and the ``[MASK]`` rows of maskgit's input and output tables are dropped."""
        if meta.get("name") != "maskgit":
            raise NarError("sundae starts from another prior's weights only from a maskgit checkpoint "
                           "of the same hourglass network")
        mapped = {"tok_emb.weight": tensors["tok_emb.weight"][:-1],
                  "class_emb.weight": tensors["cls_emb.weight"],
                  "head.weight": tensors["to_logits.weight"][:-1],
                  "head.bias": tensors["to_logits.bias"][:-1]}
        mapped |= {k: v for k, v in tensors.items() if k.startswith(("net.", "positions."))}
        self._load_adopted(mapped, "maskgit", "give [model.net] the maskgit's network, abs_positions = true, "
                           "the same tokenizer and the same classes")

    # ---- training -----------------------------------------------------------------------
    def corrupt(self, tokens: torch.Tensor, rate: torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                region: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """SUNDAE's corruption q(z'|z): per sample a rate r ~ U(0, 1) (or the given (B,) rates);
        each position (inside ``region``, when given) is picked with probability r and gets a
        uniform random code (which may equal the original). Returns (corrupted tokens,
        picked-positions mask)."""
        b = tokens.shape[0]
        if rate is None:
            rate = torch.rand(b, generator=generator, device=tokens.device)
        rate = torch.as_tensor(rate, dtype=torch.float32, device=tokens.device).reshape(b, 1, 1)
        picked = torch.rand(tokens.shape, generator=generator, device=tokens.device) < rate
        if region is not None:
            picked &= region
        noise = torch.randint(self.codebook_size, tokens.shape, generator=generator, device=tokens.device)
        return torch.where(picked, noise, tokens), picked

    def loss(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        tokens = tokens.to(self.device, torch.long)
        if tokens.ndim != 3:
            raise NarError(f"sundae: expected (B, h, w) tokens, got shape {tuple(tokens.shape)}")
        b, h, w = tokens.shape
        self.check_grid((h, w))
        if int(tokens.min()) < 0 or int(tokens.max()) >= self.codebook_size:
            raise NarError(f"sundae: token ids must lie in [0, {self.codebook_size})")
        class_ids = self.drop_condition(cond, b)
        z, _ = self.corrupt(tokens, region=self.training_regions(b, (h, w)))
        parts: dict[str, torch.Tensor] = {}
        losses = []
        for t in range(self.cfg.unroll_steps):
            logits = self(z, class_ids, self.patch_shift())  # a new offset per unrolled step, as in sampling
            ce = F.cross_entropy(logits.reshape(-1, self.codebook_size).float(), tokens.reshape(-1))
            parts[f"loss_step{t + 1}"] = ce
            losses.append(ce)
            if t + 1 < self.cfg.unroll_steps:  # z_{t+1} ~ f(z_t): a sample, no gradient through it
                with torch.no_grad():
                    z = sample_logits(logits.detach(), 1.0)
        parts["loss"] = torch.stack(losses).mean()
        with torch.no_grad():
            parts["acc"] = (logits.argmax(dim=-1) == tokens).float().mean()  # last unroll step
        return parts

    # ---- sampling -----------------------------------------------------------------------
    def temperatures(self, steps: int, temperature: float, temperature_end: float | None) -> list[float]:
        """Per-step temperatures: linear from ``temperature`` to ``temperature_end`` (absolute); when None,
        to the config's end scaled by the start temperature (`temperature_ramp`)."""
        return temperature_ramp(steps, temperature, temperature_end, self.cfg.temperature_end)

    sample_options = ("temperature_end", "update_proportion", "update_rule", "choice_temperature", "min_change",
                      "min_steps", "init", "cfg_schedule", "polish", "cfg_from")

    def _sample(self, req: SampleRequest) -> SampleOutput:
        """Sample (n, h, w) tokens with up to ``steps`` denoising steps (default 20).

        Options: ``temperature_end``: last-step temperature (default: the config's, times
        ``temperature``). ``update_proportion``: share of tokens that take their new value each
        step; None applies the paper's rule (config proportion when steps >= ``partial_update_from``,
        else 1). ``min_change`` / ``min_steps``: once ``min_steps`` steps have run, a sample is frozen
        after a step whose fresh draw differs from the sample's current tokens in at most
        ``min_change`` positions (kept inpainting tokens never count). It then leaves the
        batch and keeps its tokens; sampling stops when all samples are frozen, and
        ``steps_run`` in the result is the number of steps actually run.
        With full updates this is the paper's rule ("the sample did not change"). With
        partial updates the draw is compared at *every* position, not only at the ones the
        random mask let through, so a sample is not frozen just because the mask happened to
        skip its remaining wrong tokens (the authors' code froze on the masked comparison).
        ``cfg_schedule``: "constant" guidance, "linear" from 1 at the first step to ``cfg`` at the
        last (MAR's schedule), or "falling" the other way (`nar.sampling.schedules.guidance_scale`).
        ``cfg_from``: steps before this share of the chain run unguided (one branch, not two).
        ``polish``: after the chain, tokens the guided model gives a probability below this take
        its most likely code (one more forward; 0 turns it off).
        """
        plan = self._plan(req)
        tokens, steps_run = self._denoise(req, plan)
        if plan.polish > 0:
            tokens = self._polish(req, plan, tokens, steps_run)
        return SampleOutput(tokens=tokens, steps_run=steps_run, forward_passes=steps_run + (plan.polish > 0))

    def _plan(self, req: SampleRequest) -> "_DenoisePlan":
        """The sampler's own options, checked, with the config's defaults filled in."""
        opts = req.options
        steps = self.cfg.steps if req.steps is None else req.steps
        temperature_end = opts.get("temperature_end")
        if temperature_end is not None and temperature_end < 0:
            raise ArgumentError("temperature_end", f"sundae: temperature_end must be >= 0, got {temperature_end}")
        update_proportion = opts.get("update_proportion")
        if update_proportion is None:
            update_proportion = self.cfg.update_proportion if steps >= self.cfg.partial_update_from else 1.0
        elif not 0.0 < update_proportion <= 1.0:
            raise ArgumentError("update_proportion",
                                f"sundae: update_proportion must be in (0, 1], got {update_proportion}")
        update_rule = opts.get("update_rule") or self.cfg.update_rule
        if update_rule not in UPDATE_RULES:
            raise ArgumentError("update_rule", f"sundae: update_rule must be one of {UPDATE_RULES}, got {update_rule!r}")
        choice_temperature = opts.get("choice_temperature")
        choice_temperature = self.cfg.choice_temperature if choice_temperature is None else float(choice_temperature)
        if choice_temperature < 0:
            raise ArgumentError("choice_temperature",
                                f"sundae: choice_temperature must be >= 0, got {choice_temperature}")
        min_change = self.cfg.min_change if opts.get("min_change") is None else int(opts["min_change"])
        min_steps = self.cfg.min_steps if opts.get("min_steps") is None else int(opts["min_steps"])
        if min_change < 0 or min_steps < 0:
            raise ArgumentError("min_change", "sundae: min_change and min_steps must be >= 0")
        polish = self.cfg.polish if opts.get("polish") is None else float(opts["polish"])
        if not 0.0 <= polish <= 1.0:
            raise ArgumentError("polish", f"sundae: polish must be in [0, 1], got {polish}")
        cfg_from = self.cfg.cfg_from if opts.get("cfg_from") is None else float(opts["cfg_from"])
        if not 0.0 <= cfg_from <= 1.0:
            raise ArgumentError("cfg_from", f"sundae: cfg_from must be in [0, 1], got {cfg_from}")
        init = opts.get("init") or (self.cfg.inpaint_init if req.keep is not None else "uniform")
        if init not in INITS:
            raise ArgumentError("init", f"sundae: init must be one of {INITS}, got {init!r}")
        return _DenoisePlan(init=init, temperatures=self.temperatures(steps, req.temperature, temperature_end),
                            update_proportion=float(update_proportion), min_change=min_change,
                            min_steps=min_steps, update_rule=update_rule, choice_temperature=choice_temperature,
                            polish=polish, cfg_from=cfg_from,
                            cfg_schedule=check_guidance_schedule(opts.get("cfg_schedule", self.cfg.cfg_schedule)))

    def _guided_logits(self, tokens: torch.Tensor, class_ids: torch.Tensor, cfg_scale: float,
                       shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """(B, h, w, V) logits; with guidance the cond and null halves run as one batched pass."""
        return self.guided(lambda c, x: self(x, c, shift), class_ids, cfg_scale, tokens)

    def _denoise(self, req: SampleRequest, plan: "_DenoisePlan") -> tuple[torch.Tensor, int]:
        """The denoising loop: z_0 uniform (kept tokens in place), then one fresh draw per step.
        Frozen samples leave the working set (``work`` = the rows of ``z`` listed in ``rows``)."""
        device, (h, w) = self.device, req.grid
        z = torch.randint(self.codebook_size, (req.n, h, w), generator=req.generator, device=device)
        if req.keep is not None:
            if plan.init == "nearest":  # inpainting: start from the border's continuation, not noise
                z = nearest_fill(req.known, req.keep, req.generator)
            z = torch.where(req.keep, req.known, z)
        # the working set: samples not frozen yet (rows of z at ``rows``; None = all of them)
        rows, work, ids, known, keep = None, z, req.class_ids, req.known, req.keep
        steps, steps_run = len(plan.temperatures), 0
        places = committed = None
        if plan.update_rule == "halton":  # (B, h, w) each cell's place in its sample's order; cells committed per step
            places = rearrange(halton_ranks(h, w, req.n, req.generator, device), "b (h w) -> b h w", h=h)
            still_free = mask_counts(h * w, steps, "cosine")   # shorter than steps on a grid of fewer cells
            committed = [0] + [h * w - c for c in still_free] + [h * w] * (steps - len(still_free))
        for t, temp in enumerate(plan.temperatures):
            scale = guidance_scale(req.cfg_scale, t / max(steps - 1, 1), plan.cfg_schedule, plan.cfg_from)
            logits = self._guided_logits(work, ids, scale, self.patch_shift(t))
            proposal = sample_logits(logits, temp, req.top_k, req.top_p, req.generator)
            if keep is not None:
                proposal = torch.where(keep, known, proposal)
            steps_run = t + 1
            check = steps_run >= plan.min_steps and steps_run < steps
            if check:  # changes the step proposes, whichever tokens it may update (see _sample())
                active = (proposal != work).flatten(1).sum(dim=1) > plan.min_change
            if places is not None or plan.update_proportion < 1.0:
                update = self._update_mask(logits, work, keep, plan, t, steps, req.generator)
                if places is not None:  # committed cells stay; this step's newly committed ones take their draw
                    update = (places >= committed[t]) & (update | (places < committed[t + 1]))
                proposal = torch.where(update, proposal, work)
            work = proposal
            if req.callback is not None:  # the whole batch as it stands, frozen samples included
                req.callback(t, steps, work if rows is None else self._write_back(z.clone(), rows, work))
            if not check:
                continue
            m = int(active.sum())  # the one host sync per step
            if m == work.shape[0]:
                continue
            z = self._write_back(z, rows, work)
            if m == 0:
                return z, steps_run
            sel = active.nonzero().squeeze(1)
            rows = sel if rows is None else rows[sel]
            work, ids = work[sel], ids[sel]
            if places is not None:
                places = places[sel]
            if keep is not None:
                known, keep = known[sel], keep[sel]
        return self._write_back(z, rows, work), steps_run

    def _polish(self, req: SampleRequest, plan: "_DenoisePlan", z: torch.Tensor, steps_run: int) -> torch.Tensor:
        """(n, h, w): ``z`` with every token the guided model finds less likely than ``plan.polish``
        (given all the others, read in one forward at the last step's guidance) replaced by the
        model's most likely code there. Kept inpainting tokens stay."""
        steps = len(plan.temperatures)
        scale = guidance_scale(req.cfg_scale, (steps_run - 1) / max(steps - 1, 1), plan.cfg_schedule)
        logits = self._guided_logits(z, req.class_ids, scale, self.patch_shift(steps_run)).float()
        p_current = logits.softmax(dim=-1).gather(-1, z.unsqueeze(-1)).squeeze(-1)   # (n, h, w)
        doubted = p_current < plan.polish
        if req.keep is not None:
            doubted &= ~req.keep
        return torch.where(doubted, logits.argmax(dim=-1), z)

    @staticmethod
    def _update_mask(logits: torch.Tensor, work: torch.Tensor, keep: torch.Tensor | None, plan: "_DenoisePlan",
                     step: int, steps: int, generator: torch.Generator | None) -> torch.Tensor:
        """(B, h, w) bool: the tokens that take their new draw at ``step`` of ``steps``.

        ``random``: each with probability ``update_proportion`` (the paper). ``checkerboard``: the
        cells with (row + col + step) even, so the two colours take turns and no token is redrawn
        together with its four side neighbours, which it would have to agree with (red-black Gibbs
        sweeps; ``update_proportion`` is then 1/2 whatever it says). ``least_confident``:
        exactly that share of each sample, the tokens whose current code the model finds least
        likely, ranked with Gumbel noise × ``choice_temperature`` · (1 − progress) as MaskGIT ranks
        the tokens it keeps: the tokens the model agrees with stay, its doubts are redrawn. Kept
        inpainting tokens are never counted in that share."""
        if plan.update_rule in ("random", "halton"):  # halton: the random share of the cells not committed yet
            return torch.rand(work.shape, generator=generator, device=work.device) < plan.update_proportion
        if plan.update_rule == "checkerboard":
            h, w = work.shape[1:]
            rows, cols = torch.arange(h, device=work.device), torch.arange(w, device=work.device)
            return ((rows[:, None] + cols[None, :] + step) % 2 == 0).expand_as(work)
        progress = step / max(steps - 1, 1)
        logp = logits.float().log_softmax(dim=-1).gather(-1, work.unsqueeze(-1)).squeeze(-1)  # (B, h, w)
        noise_scale = plan.choice_temperature * (1.0 - progress)
        if noise_scale > 0:
            logp = logp + noise_scale * gumbel_noise(logp.shape, generator, logp.device)
        free = torch.full((work.shape[0],), work[0].numel(), device=work.device)
        if keep is not None:  # kept tokens rank last and are not counted in any sample's share
            logp = logp.masked_fill(keep, float("inf"))
            free = (~keep).flatten(1).sum(dim=1)
        counts = (free * plan.update_proportion).round().clamp(min=1).minimum(free)  # (B,) per sample
        # rank 0 = the token the model finds least likely, as MaskGIT ranks the tokens it re-masks
        ranks = ascending_ranks(rearrange(logp, "b h w -> b (h w)"))
        return rearrange(ranks < counts[:, None], "b (h w) -> b h w", h=work.shape[1])

    @staticmethod
    def _write_back(z: torch.Tensor, rows: torch.Tensor | None, work: torch.Tensor) -> torch.Tensor:
        if rows is None:
            return work
        z[rows] = work
        return z
