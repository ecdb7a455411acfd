"""`nar train --prior NAME`: a token cache (or fresh renders) + a prior config -> the shared training loop.

Prior config files have a ``[model]`` table (the prior's own dataclass) and a ``[train]``
table (`TrainConfig`); ``--set model.dim=256`` / ``--set train.lr=1e-4`` override fields.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from nar.core.checkpoint import atomic_write_text, load_checkpoint, load_weights_into, read_meta
from nar.core.config import from_dict, load_toml, to_dict, _deep_update
from nar.core.recipes import KINDS_PRIOR
from nar.core.errors import NarError
from nar.data.tokens import TokenCache
from nar.nn.attention import start_new_blocks_as_identity
from nar.nn.hourglass import refine_patch_weights
from nar.nn.positions import AbsolutePositions2D, resize_table
from nar.pipelines.pipeline import Pipeline
from nar.priors import PRIORS
from nar.train.loop import STATE_FILE, TrainConfig, Trainer
from nar.train.prior_task import PriorTask


DATA_FIELDS = ("window",)
FRESH_POOL_DIR = "fresh_tokens"   # a --fresh run's own pool, inside its run folder (unless --fresh-dir)


def load_prior_run_config(name: str, config_path=None, overrides: dict | None = None):
    cls = PRIORS.get(name)
    data = load_toml(config_path, KINDS_PRIOR) if config_path else {}
    model_data = data.get("model", {k: v for k, v in data.items() if k not in ("train", "data")})
    train_data = data.get("train", {})
    model_over, train_over = {}, {}
    for key, value in (overrides or {}).items():
        section, _, field = key.partition(".")
        if section == "model" and field:
            model_over[field] = value
        elif section == "train" and field:
            train_over[field] = value
        elif section != "data" or not field:      # data.* is `prior_data_config`'s
            raise NarError(f"override {key!r} must start with model., train. or data.")
    model_cfg = from_dict(cls.config_cls, _apply(to_dict(cls.config_cls()), model_data, model_over), "model")
    train_cfg = from_dict(TrainConfig, _apply(to_dict(TrainConfig()), train_data, train_over), "train")
    return cls, model_cfg, train_cfg


def prior_data_config(config_path=None, overrides: dict | None = None) -> dict:
    """The ``[data]`` table of a prior run config (with ``data.*`` overrides): ``window = [h, w]``
    trains on random h x w windows of each grid (Taming's crops; sampling a larger grid then
    slides a window of that size), None on whole grids."""
    data = (load_toml(config_path, KINDS_PRIOR) if config_path else {}).get("data", {})
    data = {**data, **{k.partition(".")[2]: v for k, v in (overrides or {}).items() if k.startswith("data.")}}
    unknown = sorted(set(data) - set(DATA_FIELDS))
    if unknown:
        raise NarError(f"prior config [data]: unknown field {unknown[0]!r} (known: {', '.join(DATA_FIELDS)})")
    window = data.get("window")
    if window is not None:
        if isinstance(window, int):
            window = [window, window]
        if len(window) != 2 or any(not isinstance(x, int) or x < 1 for x in window):
            raise NarError(f"prior config [data]: window must be [rows, columns] of positive ints, not {window!r}")
        window = (int(window[0]), int(window[1]))
    return {"window": window}


def _apply(defaults: dict, file_data: dict, overrides: dict) -> dict:
    from nar.core.config import apply_overrides
    return apply_overrides(_deep_update(defaults, file_data), overrides)


def train_prior(name: str, tokens: str | Path | None, config_path=None, overrides: dict | None = None,
                out: str | Path = "runs/prior", tokenizer=None, conditional: bool = True,
                resume: bool = True, progress: bool = True, init_from: str | Path | None = None,
                tensorboard: bool = False, stop_after: int | None = None,
                fresh: dict | None = None) -> Path:
    """Train (or resume) a prior on the token cache ``tokens``, or, with ``fresh`` (the keyword
    arguments of `FreshTokens`, e.g. ``{"size": 1024, "workers": 1, "per_step": 2}``), on fresh
    renders that worker processes encode with ``tokenizer`` (default: the shipped one) while it
    trains; they are kept in ``out/fresh_tokens``. ``init_from``: a trained checkpoint of the same prior whose
    weights a new run starts from; parameters the config adds (e.g. new local-mixing blocks)
    keep their fresh initialisation. A resumed run's own checkpoint replaces them all.
    ``config_path``: a TOML file or a packaged recipe's name (e.g. "sundae_tiny");
    ``tensorboard``: also log to ``out/tensorboard`` (`nar.train.tensorboard`);
    ``stop_after``: stop (checkpointed) after this step, the learning-rate schedule still planned
    over ``train.steps``, as an interruption would."""
    cls, model_cfg, train_cfg = load_prior_run_config(name, config_path, overrides)
    window = prior_data_config(config_path, overrides)["window"]
    cache = _token_source(tokens, fresh, tokenizer, Path(out))
    try:
        if window is not None and (window[0] > cache.grid[0] or window[1] > cache.grid[1]):
            raise NarError(f"training window {window[0]}x{window[1]} is larger than the "
                           f"{cache.grid[0]}x{cache.grid[1]} token grids it is cut from")
        return _train(name, cls, model_cfg, train_cfg, cache, out, tokenizer, conditional, resume, progress,
                      init_from, tensorboard, stop_after, window)
    finally:
        cache.close()


def _token_source(tokens, fresh: dict | None, tokenizer, out: Path):
    if (tokens is None) == (fresh is None):
        raise NarError("train a prior on a token cache (--tokens) or on fresh renders (--fresh), one of the two")
    if fresh is None:
        return TokenCache.open(tokens)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise NarError("fresh renders feed a single training process; under torchrun train on a token cache "
                       "(`nar tokenizer encode`)")
    from nar.train.fresh_tokens import FreshTokens
    from nar.pipelines.models import resolve_tokenizer_ckpt
    settings = dict(fresh)
    folder = Path(settings.pop("folder", None) or out / FRESH_POOL_DIR)
    pool = FreshTokens(resolve_tokenizer_ckpt(tokenizer), folder, **settings)
    # the schedule is this run's (a shared pool folder serves runs of other schedules): kept beside it
    record = {"folder": str(folder.resolve()), "size": pool.size, "seed": pool.seed, **pool.schedule}
    file = out / "fresh_schedule.json"
    if file.is_file() and json.loads(file.read_text()) != record:
        pool.close()
        raise NarError(f"{out} trained on fresh renders with other settings ({file.read_text().strip()}); "
                       "resume with the same --fresh options, or use a new run folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(file, json.dumps(record))
    return pool


def _train(name, cls, model_cfg, train_cfg, cache, out, tokenizer, conditional, resume, progress,
           init_from, tensorboard, stop_after, window) -> Path:
    torch.manual_seed(train_cfg.seed)  # weight init is part of the run's seed
    num_classes = len(cache.class_names) if (conditional and cache.labelled and cache.class_names) else 0
    pipe = _cache_pipeline(cache, tokenizer, train_cfg.device)
    init_codes = _resolve_codebook_init(name, model_cfg, pipe, cache, Path(out), resume, init_from)
    prior = cls(model_cfg, cache.codebook_size, num_classes, window or cache.grid)
    if getattr(prior, "grid_rows", 0) and prior.grid_rows != cache.grid[0]:
        raise NarError(f"{name}: grid_rows = {prior.grid_rows}, but the training grids have {cache.grid[0]} rows")
    if init_from is not None:
        _init_weights(prior, name, init_from)
    if init_codes:
        prior.init_from_codebook(pipe.tokenizer.codebook().detach().cpu())
    # snapshots are decoded to PNG only when the cache's tokenizer is at hand
    decode = None if pipe is None else pipe.decode_tensor

    task = PriorTask(prior, cache, train_cfg.batch_size, decode=decode, window=window)
    trainer = Trainer(task, train_cfg, out, progress=progress, tensorboard=tensorboard)
    return trainer.run(resume=resume, until=stop_after)


def _init_weights(prior, name: str, init_from) -> None:
    """The weights of a trained checkpoint: of the same prior (transformer blocks it lacks start
    as the identity, other new tensors keep their initialisation), or one that the prior maps
    itself (``Prior.adopts`` / ``adopt_weights``: e.g. maskgit from a sundae of the same hourglass
    or, in its raster layout, from an ar; an ar from one with a shorter row table)."""
    tensors, meta = load_checkpoint(init_from)   # read once for every kind of tensor it may not fit
    refined = _refined_patches(prior, tensors, meta, init_from)
    if meta.get("kind") == "prior" and prior.adopts(meta):
        prior.adopt_weights(tensors | refined, meta)
        return
    fresh = _token_tables(prior, tensors, meta, init_from)
    carried = _stretched_positions(prior, tensors, init_from) | refined
    load_weights_into(prior, init_from, "prior", name, allow_new=True,
                      keep_own=lambda k: k in carried or k in fresh)
    added = start_new_blocks_as_identity(prior, set(tensors) | set(carried))
    if added:
        print(f"{init_from}: {len(added)} transformer blocks it lacks start as the identity "
              f"({', '.join(added)})", flush=True)
    with torch.no_grad():
        for key, value in carried.items():
            prior.get_parameter(key).copy_(value)


def _refined_patches(prior, tensors: dict[str, torch.Tensor], meta: dict, init_from) -> dict[str, torch.Tensor]:
    """A parent whose hourglass merges larger patches at its outer level (e.g. 4x4, and this run
    2x2, so the same valley works on a 4x finer grid): its merge and split carried over to this
    run's patch (`nar.nn.hourglass.refine_patch_weights`). Name -> tensor; none when they agree."""
    own_net = getattr(getattr(prior, "cfg", None), "net", None)
    their_net = (meta.get("config") or {}).get("net") or {}
    if own_net is None or not own_net.shorten or not their_net.get("shorten"):
        return {}
    old, new = int(their_net["shorten"][0]), int(own_net.shorten[0])
    keys = ("net.root.merge.proj.weight", "net.root.split.proj.weight", "net.root.split.proj.bias")
    if old == new or not all(k in tensors for k in keys):
        return {}
    refined = dict(zip(keys, refine_patch_weights(*(tensors[k].float() for k in keys), old, new)))
    print(f"{init_from}: its {old}x{old} outer patch merge and split carried over to {new}x{new}", flush=True)
    return refined


def _stretched_positions(prior, tensors: dict[str, torch.Tensor], init_from) -> dict[str, torch.Tensor]:
    """A parent trained on another grid (e.g. 64x64 tokens, and this run 32x32): its learned
    2D position tables (`AbsolutePositions2D`, which stretch to any grid at sampling time anyway)
    are stretched to this run's table length, so the child starts from the layout its parent
    learned. Name -> stretched table, for the tables whose length differs."""
    out = {}
    for mod_name, module in prior.named_modules():
        if not isinstance(module, AbsolutePositions2D):
            continue
        for table_name in ("row_emb", "col_emb"):
            key, own = f"{mod_name}.{table_name}", getattr(module, table_name)
            theirs = tensors.get(key)
            if theirs is not None and theirs.shape[1:] == own.shape[1:] and theirs.shape[0] != own.shape[0]:
                out[key] = resize_table(theirs.float(), own.shape[0]).to(own.dtype)
    if out:
        print(f"{init_from}: position tables stretched to this run's grid ({', '.join(sorted(out))})", flush=True)
    return out


def _token_tables(prior, tensors: dict[str, torch.Tensor], meta: dict, init_from) -> set[str]:
    """A parent trained on another tokenizer's codebook (e.g. 512 codes, and this run 4096): its
    token tables (embedding and output rows, one per code, + [MASK] where there is one) mean
    nothing for the new codes, so they keep this run's initialisation; the network between them
    is what carries over. Their names; none when the codebooks have the same size."""
    old_size = int(meta.get("codebook_size", prior.codebook_size))
    if old_size == prior.codebook_size:
        return set()
    own = prior.state_dict()
    tables = {k for k, v in tensors.items() if k in own and v.shape != own[k].shape
              and v.shape[0] in (old_size, old_size + 1) and own[k].shape[0] in (prior.codebook_size,
                                                                                  prior.codebook_size + 1)}
    print(f"{init_from}: {old_size} codes, this run {prior.codebook_size}; its network is kept, "
          f"{len(tables)} token tables ({', '.join(sorted(tables))}) start fresh", flush=True)
    return tables


def _resolve_codebook_init(name: str, model_cfg, pipe: Pipeline | None, cache: TokenCache, out: Path,
                           resume: bool, init_from) -> bool:
    """Whether to initialise token embeddings from the tokenizer's codes (``codebook_init``),
    with the width of those codes (``code_dim``, for priors that have one) fixed in the config
    *before* the model is built, so that the config a run records is the one it was built with.

    With ``init_from`` the parent's token table is kept, unless the parent was trained on
    another codebook size (its tables start fresh, from the codes). Where the codes come from:
    the tokenizer that made the cache; else, when resuming, the run's
    own saved config (its weights replace any initialisation); else, with ``init_from``, that
    checkpoint's config. A new run that asks for codebook_init without any of them is an error,
    not a silent no-op."""
    if not getattr(model_cfg, "codebook_init", False):
        return False
    has_width = hasattr(model_cfg, "code_dim")
    if pipe is not None:
        if has_width and model_cfg.code_dim == 0:
            model_cfg.code_dim = int(pipe.tokenizer.codebook().shape[1])
        # a parent of another codebook size hands over no token table: this run's starts from the codes
        return init_from is None or int(read_meta(init_from).get("codebook_size", -1)) != cache.codebook_size
    state = out / STATE_FILE
    saved = None
    if resume and state.is_file():
        saved = read_meta(state).get("model_meta", {}).get("config", {})
    elif init_from is not None:
        saved = read_meta(init_from).get("config", {})
    if saved is None:
        where = cache.header.get("tokenizer_path") or "not recorded"
        raise NarError(f"{name}: codebook_init is on, but the tokenizer that made token cache {cache.path} "
                       f"is not at hand (its path: {where}); give that tokenizer, or set "
                       "model.codebook_init = false")
    if has_width and model_cfg.code_dim == 0 and saved.get("code_dim"):
        model_cfg.code_dim = int(saved["code_dim"])
    return False


def _cache_pipeline(cache: TokenCache, tokenizer=None, device: str = "auto") -> Pipeline | None:
    """A pipeline holding the tokenizer that made ``cache`` (the one given, else the path in
    its header), or None when it is not on this machine."""
    path = Path(tokenizer) if tokenizer else (Path(cache.header["tokenizer_path"])
                                              if cache.header.get("tokenizer_path") else None)
    if path is None or not path.exists():
        return None
    pipe = Pipeline.load(tokenizer=path, device=device)
    if pipe.tokenizer_hash != cache.header.get("tokenizer_hash"):
        raise NarError(f"tokenizer {path} did not make token cache {cache.path}")
    return pipe
