"""`ar`: the spec's autoregressive path — a causal GPT over the raster-ordered token grid
(Taming Transformers / LlamaGen style).

Sequence layout (N = h·w grid tokens t_0 … t_{N-1} in raster order)::

    position  0        1      2          …  N-1
    input     [cls]    t_0    t_1        …  t_{N-2}
    predicts  t_0      t_1    t_2        …  t_{N-1}

``[cls]`` is the class embedding (the null row ``num_classes`` when unconditional, or when
the condition is dropped for classifier-free guidance), so it doubles as the start token.
With ``first_token = "random"`` (the system spec's "randomly select a token from the
codebook as the first token") the prediction at position 0 is not trained and sampling
draws t_0 uniformly from the codebook; the model continues from it.

Positions (``pos``):

* ``"rotary"`` — 1D rotary embedding in every attention layer (x-transformers), relative
  offsets along the raster sequence;
* ``"2d"`` — learned row + column embeddings (``train_grid`` rows / columns) added to the
  input at position k for the *target* cell k (row k // w, column k % w), so every input
  tells the model which cell it is predicting;
* ``"rotary+2d"`` (default) — both.

Grids larger than the training grid use Taming's sliding window: each cell is predicted
from a training-grid-sized window around it (window origin clamped to the grid), so row /
column ids and rotary offsets never leave the range seen in training; learned tables are
never extrapolated. Grids no larger than the training grid are sampled directly.

Nucleus filter (``top_p``): the config carries the filter sampling uses when the caller gives
none (1.0: off; `Prior.resolve_top_p`), so a shipped model samples with the setting it was measured
best with and ``top_p=1`` still draws from the whole distribution. A raster AR that draws a tail code
carries it along the row: on the shipped 6.6 M model such draws make horizontal streaks, and cutting
the last 2 % of the mass (the shipped 0.98) removes many of them, at some sharpness (session 27,
``benchmarks/results/issue13/README.md``).

Temperature: the config's ``temperature`` is likewise the default when the caller gives none
(`Prior.resolve_temperature`). The filter takes sharpness with the tail; a slightly warmer draw
gives some of it back (session 29: temperature 1.1 with top_p 0.98 had 0.62x the real gradient
energy against 0.52x at 1, at FD 2.86x the reconstruction's against 2.60x).

Guidance (``cfg_schedule``, `nar.sampling.schedules.guidance_scale`): "constant" (the default) guides
every cell with the caller's scale; "linear" guides cell k of N with 1 + (cfg - 1) k / (N - 1), so the
top rows (sky, mostly alike across scenes) are drawn from the conditional model unguided and the rows
below, where the scenes differ, get the whole scale (MAR's schedule, read along the raster scan);
"falling" runs the other way. ``guidance = "posterior"`` guides against the model's own class mixture
given the prefix instead of the null branch, ``"contrast"`` against the other classes' mixture alone
(`nar.sampling.guidance`: one branch per class).

Training runs x-transformers. Sampling reads the same weights into ``nar.nn.kv_cache``'s
lean decoder with a static KV cache (preallocated at full length, written in place, rotary
applied once when a key is written; gpt-fast / LlamaGen style): each new token costs one
incremental forward of one position. ``compile=True`` runs that one-position step through
``torch.compile`` (static shapes; on CUDA ``mode="reduce-overhead"``, i.e. CUDA graphs) when
the whole grid is one sequence; ``None`` (default) compiles on CUDA only, since on the small
CPU it was measured slower (``benchmarks/bench_ar_bare.py``). Inpainting teacher-forces the
known tokens into the cache as the scan passes them; runs of cells that are kept in every
batch row are fed as one chunk, and nothing after the last masked cell is computed.

Noisy context (``input_noise``, training only): teacher forcing shows the model only real
prefixes, while sampling feeds it its own draws; a raster AR that has only seen clean rows copies a
wrong code along the row (the streaks above). With ``input_noise`` > 0 each training sample's input
tokens are replaced by uniform codes at a rate drawn from U(0, input_noise) while the targets stay the
real ones, so the model learns to predict the next real token from a context with errors in it (the
noisy-context training of xAR, Ren et al. 2025, with codes swapped in for Gaussian noise). Off by
default: on the shipped 6.6 M model a 300-step fine-tune at 0.2 raised the clean held-out loss by 0.05
nats and made its draws worse, not less streaky (session 47, ``benchmarks/results/issue13/README.md``).

Absolute rows (``grid_rows`` > 0, "2d" positions): Taming's crops give every window the row
ids of the window, so a model trained on 16-row windows of a 64-row grid cannot tell the top of
the image from the bottom (sky under ground as often as over it). With ``grid_rows`` the row
table has one entry per row of the whole training grid and each window's cells take their rows
in that grid (window origin + row in the window); columns stay those of the window. Sampling a
grid of another height maps each window origin to the same relative height of the training grid.

Sliding-window cost: a window keeps its own KV cache only while the scan stays in it —
the first and last ``w_t/2`` columns of a row, and the rows whose window origin is clamped
to the top / bottom edge. Every other cell opens a new window and runs the model on that
window's raster prefix (about half a training sequence), so an H×W grid costs about
``(H - h_t + 1)(W - w_t + 1) · N_t/2`` positions fed (32×32 from a 16×16 model: 41.6k counted)
against ``H·W`` (1024) for a grid sampled whole with one cache, and ``H·W · N_t/2`` (~131k)
for Taming's uncached loop. ``use_cache=False`` gives that uncached loop (x-transformers,
whole prefix every token: the reference the cached paths are tested against).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from x_transformers import Decoder

from nar.core.errors import NarError
from nar.nn.flops import block_flops
from nar.nn.kv_cache import StaticKVCache
from nar.nn.positions import resize_table
from nar.priors.ar_decode import FastARDecoder
from nar.priors.base import Prior, SampleOutput, SampleRequest
from nar.priors.registry import PRIORS
from nar.sampling.filters import check_config_temperature, check_config_top_p, sample_logits
from nar.sampling.guidance import PosteriorGuidance, check_guidance_mode
from nar.sampling.schedules import check_guidance_schedule, guidance_scale

FIRST_TOKEN_MODES = ("class", "random")
POS_MODES = ("rotary+2d", "rotary", "2d")


@dataclass
class ARConfig:
    dim: int = 512
    depth: int = 12
    heads: int = 8
    dim_head: int = 64
    ff_mult: int = 4
    dropout: float = 0.0          # embedding, attention and feed-forward dropout
    cond_drop_prob: float = 0.1   # class id -> null id during training (enables CFG)
    first_token: str = "class"    # "class": start token = class / null embedding; "random": t_0 ~ U(codebook)
    pos: str = "rotary+2d"        # "rotary+2d" | "rotary" | "2d"
    codebook_init: bool = False   # token embedding = tokenizer code vectors (code_dim) + linear projection
    code_dim: int = 0             # width of those code vectors; 0 = taken from init_from_codebook
    flash: bool = True            # torch scaled_dot_product_attention kernels
    sample_precision: str = "auto"  # sampling: auto (bf16 on CUDA; fp32 on CPU, see samples_in_bf16) | fp32 | bf16
    grid_rows: int = 0            # rows of the grids training windows are cut from: see "Absolute rows"
    top_p: float = 1.0            # sampling: the nucleus filter when the caller gives no top_p (1.0: off)
    temperature: float = 1.0      # sampling: the temperature when the caller gives none
    cfg_schedule: str = "constant"  # sampling: guidance scale along the raster scan (nar.sampling.schedules)
    guidance: str = "null"        # sampling: what guidance pushes from: null | posterior | contrast (nar.sampling.guidance)
    guidance_sharpness: float = 1.0  # sampling: β of "posterior" / "contrast" guidance
    input_noise: float = 0.0      # training: see "Noisy context"

    def __post_init__(self):
        if not 0.0 <= self.input_noise < 1.0:
            raise NarError(f"ar: input_noise must be in [0, 1), got {self.input_noise}")
        check_config_top_p("ar", self.top_p)
        check_config_temperature("ar", self.temperature)
        check_guidance_schedule(self.cfg_schedule)
        check_guidance_mode(self.guidance)


@PRIORS.register("ar")
class ARPrior(Prior):
    """Causal decoder-only transformer over raster-ordered tokens, with KV-cached sampling."""

    name = "ar"
    config_cls = ARConfig

    def __init__(self, cfg: ARConfig, codebook_size: int, num_classes: int = 0,
                 train_grid: tuple[int, int] = (16, 16)):
        super().__init__(cfg, codebook_size, num_classes, train_grid)
        if cfg.first_token not in FIRST_TOKEN_MODES:
            raise NarError(f"ar: first_token must be one of {FIRST_TOKEN_MODES}, got {cfg.first_token!r}")
        if cfg.pos not in POS_MODES:
            raise NarError(f"ar: pos must be one of {POS_MODES}, got {cfg.pos!r}")
        if cfg.sample_precision not in ("auto", "fp32", "bf16"):
            raise NarError(f"ar: sample_precision must be auto, fp32 or bf16, got {cfg.sample_precision!r}")
        if cfg.dim < 1 or cfg.depth < 1 or cfg.heads < 1 or cfg.dim_head < 1:
            raise NarError("ar: dim, depth, heads and dim_head must be positive")
        if cfg.grid_rows and (cfg.grid_rows < self.train_grid[0] or "2d" not in cfg.pos):
            raise NarError(f"ar: grid_rows = {cfg.grid_rows} needs 2d positions and at least the training "
                           f"window's {self.train_grid[0]} rows")
        self.use_rotary = "rotary" in cfg.pos
        self.use_2d = "2d" in cfg.pos
        self.random_first = cfg.first_token == "random"

        self.tok_emb = self._token_embedding(cfg.code_dim if cfg.codebook_init else 0)
        self.cls_emb = nn.Embedding(self.num_classes + 1, cfg.dim)
        nn.init.normal_(self.cls_emb.weight, std=0.02)
        if self.use_2d:
            self.row_emb = nn.Embedding(cfg.grid_rows or self.train_grid[0], cfg.dim)
            self.col_emb = nn.Embedding(self.train_grid[1], cfg.dim)
            nn.init.normal_(self.row_emb.weight, std=0.02)
            nn.init.normal_(self.col_emb.weight, std=0.02)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.layers = Decoder(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, attn_dim_head=cfg.dim_head,
                              ff_mult=cfg.ff_mult, rotary_pos_emb=self.use_rotary, attn_dropout=cfg.dropout,
                              ff_dropout=cfg.dropout, attn_flash=cfg.flash)  # pre-norm with a final norm
        self.head = nn.Linear(cfg.dim, self.codebook_size)

    # ---- embeddings ---------------------------------------------------------------------
    def _token_embedding(self, code_dim: int) -> nn.Module:
        if code_dim > 0:  # (V, d_code) code table + projection to the model width (the spec's layout)
            emb = nn.Sequential(nn.Embedding(self.codebook_size, code_dim), nn.Linear(code_dim, self.cfg.dim))
            nn.init.normal_(emb[0].weight, std=1.0)
            return emb
        emb = nn.Embedding(self.codebook_size, self.cfg.dim)
        nn.init.normal_(emb.weight, std=0.02)
        return emb

    def init_from_codebook(self, codebook: torch.Tensor) -> bool:
        """Copy the tokenizer's (V, d) code vectors into the token table (``codebook_init``).
        With ``code_dim = 0`` the table is (re)built with d columns and the prior's config
        becomes a copy with ``code_dim = d`` (the caller's config object is left alone), so call
        this before the optimizer is made. `train_prior` sets ``code_dim`` before building."""
        if not self.cfg.codebook_init:
            return False
        if codebook.ndim != 2 or codebook.shape[0] != self.codebook_size:
            raise NarError(f"ar: codebook of shape {tuple(codebook.shape)} does not fit a prior over "
                           f"{self.codebook_size} codes")
        d = int(codebook.shape[1])
        if self.cfg.code_dim not in (0, d):
            raise NarError(f"ar: code_dim = {self.cfg.code_dim} in the config, but the tokenizer's codes have {d}")
        if self.cfg.code_dim == 0:
            self.cfg = dataclasses.replace(self.cfg, code_dim=d)
            self.tok_emb = self._token_embedding(d).to(self.cls_emb.weight.device)
        with torch.no_grad():
            self.tok_emb[0].weight.copy_(codebook.to(self.tok_emb[0].weight))
        return True

    @property
    def grid_rows(self) -> int:
        """Rows of the grid whose row ids the windows use (0: the window's own rows)."""
        return self.cfg.grid_rows

    def row_shift(self, r0: int, h: int) -> int:
        """Row id of the first row of a window at row ``r0`` of an ``h``-row grid: 0 without
        absolute rows, else the same relative height in the training grid."""
        wh = min(h, self.train_grid[0])
        if not self.grid_rows or h == wh:
            return 0
        return round(r0 * (self.grid_rows - wh) / (h - wh))

    def adopts(self, meta: dict) -> bool:
        """Also an ar whose row or column table has another length (a parent trained without
        absolute rows, or on a grid of other size, e.g. 64x64 tokens for this run's 32x32):
        `adopt_weights` stretches them."""
        grid = meta.get("train_grid") or [0, 0]
        rows = (meta.get("config") or {}).get("grid_rows", 0) or grid[0]
        return super().adopts(meta) or (self.use_2d and (rows != self.row_emb.num_embeddings
                                                         or grid[1] != self.col_emb.num_embeddings))

    def adopt_weights(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Start from an ar checkpoint whose row or column table has another length (`nar train
        --prior ar --init-from ar.safetensors --set model.grid_rows=64`, or a parent of another
        grid): each table is stretched linearly over this one's length (the top row stays the
        top, the bottom the bottom, and so for columns); the rest is copied."""
        if meta.get("name") != self.name:
            raise NarError(f"ar starts only from another ar checkpoint, not a {meta.get('name')} one")
        mapped = dict(tensors)
        for key, table in (("row_emb.weight", self.row_emb), ("col_emb.weight", self.col_emb)):
            mapped[key] = resize_table(tensors[key].float(), table.num_embeddings)   # (L_old, d) -> (L_new, d)
        self._load_adopted(mapped, "ar", "the same network, tokenizer and classes")

    def _embed(self, class_ids: torch.Tensor, prev: torch.Tensor, offset: int, width: int,
               row0: torch.Tensor | int = 0) -> torch.Tensor:
        """Inputs for sequence positions ``offset, offset+1, …``: the class token at position 0,
        then the previous grid tokens ``prev`` (B, m) (t_{offset-1} … when offset > 0, t_0 … otherwise).
        ``width`` is the row length of the grid (or window) being modelled, for the 2D embeddings;
        ``row0`` the row id of its first row (an int, or (B,) per window: absolute rows)."""
        parts = []
        if offset == 0:
            parts.append(self.cls_emb(class_ids)[:, None])
        if prev.shape[1]:
            parts.append(self.tok_emb(prev))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if self.use_2d:
            k = torch.arange(offset, offset + x.shape[1], device=x.device)
            rows = k // width + (row0[:, None] if torch.is_tensor(row0) else row0)  # (L,) or (B, L)
            x = x + self.row_emb(rows) + self.col_emb(k % width)
        return self.emb_drop(x)

    def _check_fits(self, h: int, w: int) -> None:
        if self.use_2d and (h > self.train_grid[0] or w > self.train_grid[1]):
            raise NarError(f"ar: a {h}x{w} grid is larger than the training grid "
                           f"{self.train_grid[0]}x{self.train_grid[1]}; train on crops of that size "
                           "(sampling larger grids uses the sliding window)")

    # ---- training -----------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor,
                row_origin: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, h·w, V): entry k predicts raster token k. ``row_origin`` (B,):
        the row of the whole grid each window starts at (absolute rows; 0 when not given)."""
        b, h, w = tokens.shape
        self._check_fits(h, w)
        flat = tokens.reshape(b, h * w)
        row0 = 0
        if self.grid_rows and row_origin is not None:
            if int(row_origin.max()) + h > self.grid_rows:
                raise NarError(f"ar: a window at row {int(row_origin.max())} runs past the {self.grid_rows} "
                               "rows of grid_rows")
            row0 = row_origin.to(flat.device)
        x = self._embed(class_ids, flat[:, :-1], 0, w, row0)
        return self.head(self.layers(x))

    def loss(self, tokens: torch.Tensor, cond: torch.Tensor | None = None,
             row_origin: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b = tokens.shape[0]
        logits = self(self.noisy_context(tokens), self.drop_condition(cond, b), row_origin)
        target = tokens.reshape(b, -1)
        if self.random_first:  # t_0 is drawn uniformly at sampling time: do not model it
            logits, target = logits[:, 1:], target[:, 1:]
        logits = logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        acc = (logits.detach().argmax(-1) == target).float().mean()
        return {"loss": loss, "acc": acc}

    def noisy_context(self, tokens: torch.Tensor) -> torch.Tensor:
        """Training inputs with each sample's tokens swapped for uniform codes at a rate drawn from
        U(0, input_noise) (global RNG, seeded per step); the targets stay clean. See "Noisy context"."""
        if not self.training or self.cfg.input_noise <= 0:
            return tokens
        rate = torch.rand(tokens.shape[0], 1, 1, device=tokens.device) * self.cfg.input_noise
        swap = torch.rand(tokens.shape, device=tokens.device) < rate
        return torch.where(swap, torch.randint_like(tokens, self.codebook_size), tokens)

    # ---- sampling -----------------------------------------------------------------------
    def _step(self, class_ids: torch.Tensor, prev: torch.Tensor, width: int, guide: bool, cfg_scale: float,
              row0: int = 0, posterior: PosteriorGuidance | None = None) -> torch.Tensor:
        """The uncached step: the whole prefix (class token, then ``prev``) through x-transformers; the
        draw's logits at its last position. Under guidance the batch is [cond; null], or one branch per
        class under ``posterior`` guidance."""
        x = self._embed(class_ids, prev.repeat(self._branches(guide, posterior), 1), 0, width, row0)
        return self._guided(self.head(self.layers(x)[:, -1]).float(), guide, cfg_scale, posterior)

    def _branches(self, guide: bool, posterior: PosteriorGuidance | None) -> int:
        return self.num_classes if posterior is not None else 2 if guide else 1

    def _guided(self, logits: torch.Tensor, guide: bool, cfg_scale: float,
                posterior: PosteriorGuidance | None) -> torch.Tensor:
        """Branch logits -> the draw's (guided when ``guide``; decided once per scan, not per step as
        Prior.guided would, a host sync each)."""
        if posterior is not None:
            return posterior.combine(logits, cfg_scale)
        return self.combine_guidance(logits, cfg_scale) if guide else logits

    sample_options = ("use_cache", "compile", "cfg_schedule", "guidance", "guidance_sharpness")

    def _sample(self, req: SampleRequest) -> SampleOutput:
        """Raster-order sampling of (n, h, w) tokens (inside `Prior.sample`'s envelope). ``steps``
        is ignored (an AR model runs one step per token). Options: ``use_cache=False`` re-runs
        the whole prefix for every token (slow, for benchmarks and tests); ``compile`` runs the
        one-token step through torch.compile (None: ``self.compile_decode``, whose default is
        on CUDA only); ``cfg_schedule`` the guidance scale along the scan, ``guidance`` and
        ``guidance_sharpness`` what it pushes away from (see "Guidance")."""
        n, (h, w), ids = req.n, req.grid, req.class_ids
        guide = req.cfg_scale != 1.0 and bool((ids != self.null_class).any())
        mode, posterior = check_guidance_mode(req.options.get("guidance", self.cfg.guidance)), None
        # inpainting's kept cells and unconditional draws in the batch keep the null branch
        if guide and mode != "null" and req.keep is None and not bool((ids == self.null_class).any()):
            posterior = PosteriorGuidance(ids, self.num_classes, req.options.get(
                "guidance_sharpness", self.cfg.guidance_sharpness), contrast=mode == "contrast")
            ids = posterior.branch_ids
        elif guide:
            ids = torch.cat([ids, torch.full_like(ids, self.null_class)])
        use_cache = req.options.get("use_cache", True)
        fast = self._fast_decoder(self._want_compile(req.options.get("compile")), req.bf16) if use_cache else None
        schedule = check_guidance_schedule(req.options.get("cfg_schedule", self.cfg.cfg_schedule))
        out, passes = self._scan(n, h, w, ids, guide, req.cfg_scale, req.known, req.keep, req.temperature,
                                 req.top_k, req.top_p, req.generator, fast, callback=req.callback,
                                 cfg_schedule=schedule, posterior=posterior)
        return SampleOutput(tokens=out.view(n, h, w), steps_run=h * w, forward_passes=passes)

    def _scan(self, n, h, w, ids, guide, cfg_scale, known, keep, temperature, top_k, top_p, generator,
              fast: "FastARDecoder | None", callback=None, cfg_schedule: str = "constant",
              posterior: PosteriorGuidance | None = None) -> tuple[torch.Tensor, int]:
        """The raster scan: one cell at a time, each from a (cached) window around it. ``fast``
        None: no cache, every step re-runs its window's prefix through x-transformers.
        ``callback(row, h, tokens)`` after each finished row (rows 0 … h-1)."""
        dev = self.device
        out = torch.zeros(n, h * w, dtype=torch.long, device=dev)
        if keep is not None:
            fixed = keep.reshape(n, h * w)
            out = torch.where(fixed, known.reshape(n, h * w), out)
            need = (~fixed).any(0).tolist()  # cells some row must sample (one host sync, before the loop)
        else:
            fixed, need = None, [True] * (h * w)

        wh, ww = min(h, self.train_grid[0]), min(w, self.train_grid[1])
        whole = (wh, ww) == (h, w)  # otherwise: Taming's sliding window
        grid2d = out.view(n, h, w)
        use_cache = fast is not None
        caches: dict[tuple[int, int], StaticKVCache] = {}
        spare: list[StaticKVCache] = []  # caches of windows left behind, reused (never reallocated)
        if use_cache:
            fast.prepare(ww, compiled=whole)
        row_origin, passes = None, 0
        for k in range(h * w):
            if callback is not None and k and k % w == 0:  # row k // w - 1 is finished
                callback(k // w - 1, h, grid2d)
            if not need[k]:
                continue
            i, j = divmod(k, w)
            if k == 0 and self.random_first:  # the spec's random seed token
                tok = torch.randint(self.codebook_size, (n,), generator=generator, device=dev)
            else:
                r0 = min(max(i - wh // 2, 0), h - wh)
                c0 = min(max(j - ww // 2, 0), w - ww)
                if r0 != row_origin:  # windows of earlier row origins are never revisited
                    spare.extend(caches.values())
                    caches.clear()
                    row_origin = r0
                    row0 = self.row_shift(r0, h)  # the row id of the window's first row
                p = (i - r0) * ww + (j - c0)  # position of cell (i, j) in its window's sequence
                scale = guidance_scale(cfg_scale, k / max(h * w - 1, 1), cfg_schedule)
                cache, fed = None, 0
                if use_cache:
                    cache = caches.get((r0, c0))
                    if cache is None:
                        cache = caches[(r0, c0)] = (spare.pop().reset() if spare else
                                                    fast.new_cache(ids.shape[0], wh * ww))
                    fed = cache.filled
                if whole:
                    seq = out
                else:
                    seq = grid2d[:, r0:i + 1, c0:c0 + ww].reshape(n, -1)  # window rows up to i
                # inputs for positions fed … p are the tokens at fed-1 … p-1 (all final by now)
                prev = seq[:, max(fed - 1, 0):p]
                if use_cache:
                    logits = fast.logits(ids, prev.repeat(self._branches(guide, posterior), 1), cache, row0)
                    logits = self._guided(logits, guide, scale, posterior)
                else:
                    logits = self._step(ids, prev, ww, guide, scale, row0, posterior)
                passes += 1
                tok = sample_logits(logits, temperature, top_k, top_p, generator)
                if posterior is not None:
                    posterior.observe(tok)
            if fixed is not None:
                tok = torch.where(fixed[:, k], out[:, k], tok)
            out[:, k] = tok
        if callback is not None:
            callback(h - 1, h, grid2d)
        return out, passes

    # ---- the fast decode path ---------------------------------------------------------------
    compile_decode: bool | None = None  # default of sample(compile=...): None = on CUDA only

    def _want_compile(self, compile: bool | None) -> bool:
        if compile is None:
            compile = self.compile_decode
        return self.device.type == "cuda" if compile is None else bool(compile)

    def _fast_decoder(self, compiled: bool = False, bf16: bool = False) -> FastARDecoder:
        """The static-cache decoder over the current weights (bf16 copies with ``bf16``), rebuilt
        only when a parameter changed (optimizer step, load) or moved. Kept outside the module
        tree: it is derived state, never saved."""
        dtype = torch.bfloat16 if bf16 else None
        key = (self.device, dtype, tuple((id(p), p._version) for p in self.parameters()))
        fast = self.__dict__.get("_fast")
        if fast is None or fast.key != key:
            fast = FastARDecoder(self, dtype)
            fast.key = key
            self.__dict__["_fast"] = fast
        fast.compiled = compiled
        return fast

    def samples_in_bf16(self, precision: str | None = None) -> bool:
        """As for every prior, except that ``auto`` stays fp32 on a CPU: one token per step at
        batch 1 is latency-bound, and there bf16 measured no faster at 16x16 (4.4 vs 4.7 ms per
        token) and 1.7x slower at 64x64 (14.6 vs 8.4 ms; benchmarks/bench_ar_bare.py, one thread)."""
        mode = precision if precision is not None else self.cfg.sample_precision
        if mode == "auto" and self.device.type == "cpu":
            return False
        return super().samples_in_bf16(precision)

    def implementation(self, grid: tuple[int, int] | None = None, compile: bool | None = None,
                       precision: str | None = None) -> str:
        """What ``sample`` runs on this device for this grid, for benchmark tables."""
        h, w = grid if grid is not None else self.train_grid
        whole = h <= self.train_grid[0] and w <= self.train_grid[1]
        bf16 = self.samples_in_bf16(precision)
        compiled = self._want_compile(compile) and whole
        how = ("compiled, CUDA graphs" if self.device.type == "cuda" else "compiled") if compiled else "eager"
        cache = "static KV cache" if whole else "static KV cache per sliding window"
        return f"{cache}, {how}, {'bf16' if bf16 else 'fp32'}"

    # ---- cost -----------------------------------------------------------------------------
    flops_note = ("KV-cached raster scan (one causal forward in total when the grid fits the training grid; "
                  "the sliding window re-feeds each window's prefix)")

    def flops_per_image(self, grid: tuple[int, int], steps_run: int | None = None,
                        forward_passes: int | None = None) -> int:
        """Replays ``_scan`` (no inpainting): which positions each call feeds and how many cached
        keys they attend to, including the sliding window's re-fed prefixes. With one cache (the
        grid fits the training grid) this is one causal forward over h·w tokens, spread over h·w
        sequential steps; under the sliding window it is more (each window's prefix is re-fed)."""
        cfg = self.cfg
        h, w = grid
        wh, ww = min(h, self.train_grid[0]), min(w, self.train_grid[1])
        per_token, per_pair = block_flops(cfg.dim, cfg.heads * cfg.dim_head, cfg.ff_mult * cfg.dim)
        embed = 2 * cfg.code_dim * cfg.dim if cfg.codebook_init else 0  # code-vector projection
        head = 2 * cfg.dim * self.codebook_size
        total, fed_in, row_origin = 0, {}, None
        for k in range(1 if self.random_first else 0, h * w):
            i, j = divmod(k, w)
            r0 = min(max(i - wh // 2, 0), h - wh)
            c0 = min(max(j - ww // 2, 0), w - ww)
            if r0 != row_origin:
                fed_in.clear()
                row_origin = r0
            p = (i - r0) * ww + (j - c0)
            fed = fed_in.get((r0, c0), 0)
            m = p - fed + 1  # positions fed … p (the class token counts at position 0)
            tokens_in = m - (1 if fed == 0 else 0)
            total += cfg.depth * (m * per_token + m * (p + 1) * per_pair) + tokens_in * embed + head
            fed_in[(r0, c0)] = p + 1
        return total
