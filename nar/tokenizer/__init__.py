"""The shared VQGAN tokenizer, model only: images <-> (B, h, w) token grids.

    from nar.tokenizer import load_tokenizer
    tok = load_tokenizer("runs/tokenizer/model.safetensors", decode_only=True)
    images = tok.decode_tokens(tokens)            # (B, h, w) -> (B, 3, h*f, w*f)

The model, its quantizer and losses live here; its training task is `nar.train.tokenizer_task`
and the jobs the command line runs (train, evaluate, reconstruct, encode a token cache) are in
`nar.pipelines.tokenizer_jobs`. Most users want `nar.Pipeline`, which loads it for them.
"""
from __future__ import annotations

from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.load import load_tokenizer, stamp_hash, tokenizer_hash
from nar.tokenizer.model import VQGAN, Decoder, Encoder

__all__ = ["TokenizerConfig", "VQGAN", "Encoder", "Decoder", "load_tokenizer", "stamp_hash", "tokenizer_hash"]
