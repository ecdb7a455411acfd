"""The shared VQGAN tokenizer: images <-> (B, h, w) token grids.

    from nar.tokenizer import load_tokenizer
    tok = load_tokenizer("runs/tokenizer/model.safetensors", decode_only=True)
    images = tok.decode_tokens(tokens)            # (B, h, w) -> (B, 3, h*f, w*f)

The functions the command line calls (train / evaluate / reconstruct / encode) live in
`nar.tokenizer.api` and are re-exported here lazily, so importing the model stays light.
"""
from __future__ import annotations

from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.load import load_tokenizer, stamp_hash, tokenizer_hash
from nar.tokenizer.model import VQGAN, Decoder, Encoder

_API = ("train_tokenizer", "evaluate_tokenizer", "reconstruct_image", "encode_to_cache")

__all__ = ["TokenizerConfig", "VQGAN", "Encoder", "Decoder", "load_tokenizer", "stamp_hash", "tokenizer_hash",
           *_API]


def __getattr__(name: str):
    if name in _API:
        from nar.tokenizer import api
        return getattr(api, name)
    raise AttributeError(f"module 'nar.tokenizer' has no attribute {name!r}")
