"""Tokenizer checkpoints -> a `VQGAN` (full, or decoder-only), and the content hash that token
caches and priors record to say which tokenizer made their tokens."""
from __future__ import annotations

from pathlib import Path

import torch

from nar.core.checkpoint import expect_kind, load_checkpoint, read_meta, save_checkpoint, tensors_hash
from nar.core.device import pick_device
from nar.core.errors import NarError
from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.model import DECODE_PREFIXES, VQGAN

__all__ = ["load_tokenizer", "tokenizer_hash", "stamp_hash"]


def stamp_hash(path: str | Path) -> str:
    """Write the weights' content hash into the checkpoint metadata (so `tokenizer_hash` is a
    header read, not a pass over the weights). Idempotent."""
    path = Path(path)
    tensors, meta = load_checkpoint(path)
    expect_kind(meta, "tokenizer", path)
    digest = tensors_hash(tensors)
    if meta.get("hash") != digest:
        save_checkpoint(path, tensors, {**meta, "hash": digest})
    return digest


def tokenizer_hash(path: str | Path) -> str:
    """Which tokens a tokenizer makes (the token cache and priors record it): the content hash
    of its weights, read from the header when stamped, computed otherwise; for a decoder-only
    fine-tune, the hash of the tokenizer whose encoder and codebook it kept (``tokens_hash``)."""
    path = Path(path)
    meta = read_meta(path)
    expect_kind(meta, "tokenizer", path, name="vqgan")
    if meta.get("tokens_hash"):     # a decoder fine-tune: its tokens are its parent's
        return str(meta["tokens_hash"])
    if meta.get("hash"):
        return str(meta["hash"])
    tensors, _ = load_checkpoint(path)
    return tensors_hash(tensors)


def load_tokenizer(path: str | Path, decode_only: bool = False, device: str | torch.device = "cpu") -> VQGAN:
    """A VQGAN in eval mode with frozen weights. ``decode_only`` builds and reads only what
    decoding needs (quantizer codebook, post_quant_conv, decoder): no encoder, no discriminator."""
    path = Path(path)
    meta = read_meta(path)
    expect_kind(meta, "tokenizer", path, name="vqgan")
    cfg = TokenizerConfig.from_model_dict(meta["config"])
    model = VQGAN(cfg, decode_only=decode_only)
    if decode_only:
        tensors = {}
        for prefix in DECODE_PREFIXES:
            part, _ = load_checkpoint(path, prefix=prefix)
            tensors.update({prefix + key: value for key, value in part.items()})
    else:
        tensors, _ = load_checkpoint(path)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise NarError(f"{path} does not match the model its config describes "
                       f"({len(missing)} missing, {len(unexpected)} unexpected tensors)")
    # tokens_hash first (a decoder fine-tune, stamped or not), then the stamped hash; only an
    # unstamped plain checkpoint needs its tensors hashed, and a full load has them in memory
    model.hash = (tokenizer_hash(path) if meta.get("tokens_hash") or meta.get("hash") or decode_only
                  else tensors_hash(tensors))
    model.path = path.resolve()
    model.meta = meta
    return model.to(pick_device(device)).eval().requires_grad_(False)
