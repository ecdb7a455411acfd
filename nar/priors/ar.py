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

Training runs x-transformers. Sampling reads the same weights into ``nar.nn.kv_cache``'s
lean decoder with a static KV cache (preallocated at full length, written in place, rotary
applied once when a key is written; gpt-fast / LlamaGen style): each new token costs one
incremental forward of one position. ``compile=True`` runs that one-position step through
``torch.compile`` (static shapes; on CUDA ``mode="reduce-overhead"``, i.e. CUDA graphs) when
the whole grid is one sequence; ``None`` (default) compiles on CUDA only, since on the small
CPU it was measured slower (``benchmarks/bench_ar_bare.py``). Inpainting teacher-forces the
known tokens into the cache as the scan passes them; runs of cells that are kept in every
batch row are fed as one chunk, and nothing after the last masked cell is computed.

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
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from x_transformers import Decoder

from nar.core.errors import NarError
from nar.nn.flops import block_flops
from nar.nn.kv_cache import CachedDecoder, StaticKVCache
from nar.priors.base import Prior, SampleOutput, SampleRequest
from nar.priors.registry import PRIORS
from nar.sampling.filters import sample_logits

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
        self.use_rotary = "rotary" in cfg.pos
        self.use_2d = "2d" in cfg.pos
        self.random_first = cfg.first_token == "random"

        self.tok_emb = self._token_embedding(cfg.code_dim if cfg.codebook_init else 0)
        self.cls_emb = nn.Embedding(self.num_classes + 1, cfg.dim)
        nn.init.normal_(self.cls_emb.weight, std=0.02)
        if self.use_2d:
            self.row_emb = nn.Embedding(self.train_grid[0], cfg.dim)
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

    def _embed(self, class_ids: torch.Tensor, prev: torch.Tensor, offset: int, width: int) -> torch.Tensor:
        """Inputs for sequence positions ``offset, offset+1, …``: the class token at position 0,
        then the previous grid tokens ``prev`` (B, m) (t_{offset-1} … when offset > 0, t_0 … otherwise).
        ``width`` is the row length of the grid (or window) being modelled, for the 2D embeddings."""
        parts = []
        if offset == 0:
            parts.append(self.cls_emb(class_ids)[:, None])
        if prev.shape[1]:
            parts.append(self.tok_emb(prev))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if self.use_2d:
            k = torch.arange(offset, offset + x.shape[1], device=x.device)
            x = x + self.row_emb(k // width) + self.col_emb(k % width)
        return self.emb_drop(x)

    def _check_fits(self, h: int, w: int) -> None:
        if self.use_2d and (h > self.train_grid[0] or w > self.train_grid[1]):
            raise NarError(f"ar: a {h}x{w} grid is larger than the training grid "
                           f"{self.train_grid[0]}x{self.train_grid[1]}; train on crops of that size "
                           "(sampling larger grids uses the sliding window)")

    # ---- training -----------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, h·w, V): entry k predicts raster token k."""
        b, h, w = tokens.shape
        self._check_fits(h, w)
        flat = tokens.reshape(b, h * w)
        x = self._embed(class_ids, flat[:, :-1], 0, w)
        return self.head(self.layers(x))

    def loss(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b = tokens.shape[0]
        logits = self(tokens, self.drop_condition(cond, b))
        target = tokens.reshape(b, -1)
        if self.random_first:  # t_0 is drawn uniformly at sampling time: do not model it
            logits, target = logits[:, 1:], target[:, 1:]
        logits = logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        acc = (logits.detach().argmax(-1) == target).float().mean()
        return {"loss": loss, "acc": acc}

    # ---- sampling -----------------------------------------------------------------------
    def _step(self, class_ids: torch.Tensor, prev: torch.Tensor, offset: int, width: int, cache, guide: bool,
              cfg_scale: float):
        """Feed positions ``offset … offset+m-1`` (on top of ``cache`` when given) and return the
        logits at the last one plus the new cache. Under guidance the batch is [cond; null]."""
        if guide:
            prev = torch.cat([prev, prev])
        x = self._embed(class_ids, prev, offset, width)
        if cache is None:
            hidden, cache = self.layers(x, return_hiddens=True)
        else:
            hidden, cache = self.layers(x, cache=cache, cache_age=x.shape[1], return_hiddens=True)
        logits = self.head(hidden[:, -1]).float()
        if guide:  # decided once per scan, not per step as Prior.guided would (a host sync each)
            logits = self.combine_guidance(logits, cfg_scale)
        return logits, cache

    sample_options = ("use_cache", "compile")

    def _sample(self, req: SampleRequest) -> SampleOutput:
        """Raster-order sampling of (n, h, w) tokens (inside `Prior.sample`'s envelope). ``steps``
        is ignored (an AR model runs one step per token). Options: ``use_cache=False`` re-runs
        the whole prefix for every token (slow, for benchmarks and tests); ``compile`` runs the
        one-token step through torch.compile (None: ``self.compile_decode``, whose default is
        on CUDA only)."""
        n, (h, w), ids = req.n, req.grid, req.class_ids
        guide = req.cfg_scale != 1.0 and bool((ids != self.null_class).any())
        if guide:
            ids = torch.cat([ids, torch.full_like(ids, self.null_class)])
        use_cache = req.options.get("use_cache", True)
        fast = self._fast_decoder(self._want_compile(req.options.get("compile")), req.bf16) if use_cache else None
        out, passes = self._scan(n, h, w, ids, guide, req.cfg_scale, req.known, req.keep, req.temperature,
                                 req.top_k, req.top_p, req.generator, fast, callback=req.callback)
        return SampleOutput(tokens=out.view(n, h, w), steps_run=h * w, forward_passes=passes)

    def _scan(self, n, h, w, ids, guide, cfg_scale, known, keep, temperature, top_k, top_p, generator,
              fast: "_FastAR | None", callback=None) -> tuple[torch.Tensor, int]:
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
                p = (i - r0) * ww + (j - c0)  # position of cell (i, j) in its window's sequence
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
                    logits = fast.logits(ids, torch.cat([prev, prev]) if guide else prev, cache)
                    if guide:
                        logits = self.combine_guidance(logits, cfg_scale)
                else:
                    logits, _ = self._step(ids, prev, fed, ww, None, guide, cfg_scale)
                passes += 1
                tok = sample_logits(logits, temperature, top_k, top_p, generator)
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

    def _fast_decoder(self, compiled: bool = False, bf16: bool = False) -> "_FastAR":
        """The static-cache decoder over the current weights (bf16 copies with ``bf16``), rebuilt
        only when a parameter changed (optimizer step, load) or moved. Kept outside the module
        tree: it is derived state, never saved."""
        dtype = torch.bfloat16 if bf16 else None
        key = (self.device, dtype, tuple((id(p), p._version) for p in self.parameters()))
        fast = self.__dict__.get("_fast")
        if fast is None or fast.key != key:
            fast = _FastAR(self, dtype)
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


class _FastAR:
    """Inference state of an ARPrior: the lean decoder (same weights, read out of the
    x-transformers layers), embedding tables folded once (token table after the code-vector
    projection, row + column positions of the window width) and the logits head."""

    def __init__(self, prior: ARPrior, dtype: torch.dtype | None):
        with torch.no_grad():
            self.decoder = CachedDecoder.from_x_transformers(prior.layers, prior.cfg.heads, prior.cfg.dim_head,
                                                             dtype=dtype)
            dt = self.decoder.dtype
            tok = prior.tok_emb
            table = tok[1](tok[0].weight) if isinstance(tok, nn.Sequential) else tok.weight
            self.tok_table = table.detach().to(dt)
            self.cls_table = prior.cls_emb.weight.detach().to(dt)
            self.head_w, self.head_b = prior.head.weight.detach().to(dt), prior.head.bias.detach().to(dt)
        self.prior = prior
        self.train_grid = prior.train_grid
        self.use_2d = prior.use_2d
        self.pos_table: torch.Tensor | None = None
        self.width = None
        self.compiled = False
        self._compiled_fn = None
        self._use_compiled = False
        self._static_caches: dict[tuple[int, int], StaticKVCache] = {}
        self.key = None

    def __deepcopy__(self, memo):  # a deep-copied prior (EMA, snapshots) rebuilds its own
        return None

    def prepare(self, width: int, compiled: bool) -> None:
        """Row + column embeddings of every window position for rows of ``width`` cells."""
        if self.width != width:
            length = self.train_grid[0] * width
            if self.use_2d:
                with torch.no_grad():
                    k = torch.arange(length, device=self.tok_table.device)
                    p = self.prior
                    self.pos_table = (p.row_emb(k // width) + p.col_emb(k % width)).to(self.tok_table.dtype)
            else:
                self.pos_table = torch.zeros(length, self.tok_table.shape[1], device=self.tok_table.device,
                                             dtype=self.tok_table.dtype)
            self.width = width
        self._use_compiled = compiled and self.compiled

    def new_cache(self, batch: int, length: int) -> StaticKVCache:
        """A fresh cache, except on the compiled path: there one cache per (batch, length) lives
        as long as this decoder, at a fixed address (marked static, so that CUDA graphs can
        replay the in-place writes instead of skipping graphs for a mutated input)."""
        if not self._use_compiled:
            return self.decoder.new_cache(batch, length)
        cache = self._static_caches.get((batch, length))
        if cache is None:
            cache = self._static_caches[(batch, length)] = self.decoder.new_cache(batch, length)
            if cache.kv.is_cuda:
                torch._dynamo.mark_static_address(cache.kv)
        return cache.reset()  # entries past ``filled`` are masked out

    def embed(self, ids: torch.Tensor, prev: torch.Tensor, offset: int) -> torch.Tensor:
        x = F.embedding(prev, self.tok_table)
        if offset == 0:
            x = torch.cat([self.cls_table[ids][:, None], x], dim=1)
        return x + self.pos_table[offset:offset + x.shape[1]]

    def logits(self, ids: torch.Tensor, prev: torch.Tensor, cache: StaticKVCache) -> torch.Tensor:
        """Feed positions ``cache.filled …`` (class token at 0, then ``prev``); float logits at
        the last one."""
        offset = cache.filled
        if self._use_compiled and offset > 0 and prev.shape[1] == 1:
            self.decoder.tables(cache.length)  # built outside the traced step
            self.decoder.causal_mask(cache.length)
            pos = torch.full((1,), offset, dtype=torch.long, device=prev.device)
            first = self._compiled_fn is None
            try:
                out = self._step_fn()(prev, cache.kv, pos)
            except Exception as e:  # noqa: BLE001 - a compiler that cannot build: the eager step, said once
                if not first:
                    raise
                warnings.warn(f"ar: torch.compile of the decode step failed ({type(e).__name__}: {e}); "
                              "sampling eagerly", stacklevel=2)
                self.compiled = self._use_compiled = False
                self._compiled_fn = None
                out = self._step(prev, cache.kv, pos)
            cache.filled = offset + 1
            return out
        hidden = self.decoder.forward(self.embed(ids, prev, offset), cache)
        return F.linear(hidden[:, -1], self.head_w, self.head_b).float()

    def _step(self, prev: torch.Tensor, kv: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """One token (B, 1) at position ``pos``: embed, decode over the static cache, logits."""
        x = F.embedding(prev, self.tok_table) + self.pos_table.index_select(0, pos)
        hidden = self.decoder.step(x, kv, pos)
        return F.linear(hidden[:, -1], self.head_w, self.head_b).float()

    def _step_fn(self):
        if self._compiled_fn is None:
            cuda = self.tok_table.device.type == "cuda"
            # default dynamic=None: one recompile with dynamic sizes after the first new grid or
            # batch, then each shape only records its own CUDA graph
            self._compiled_fn = torch.compile(self._step, mode="reduce-overhead" if cuda else None, fullgraph=True)
        return self._compiled_fn
