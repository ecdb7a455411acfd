"""Nearest-code quantizer: a thin wrapper over ``vector_quantize_pytorch.VectorQuantize``.

The library does the training-time work (EMA codebook, k-means init, dead-code replacement,
rotation-trick gradients, commitment loss). This wrapper adds what a tokenizer needs on top:
token lookup for decoding, a chunked nearest-code search for encoding megapixel images, and
codebook usage / perplexity statistics (a collapsed codebook is a bug to catch).
"""
from __future__ import annotations

import torch
from einops import rearrange
from loguru import logger
from torch import nn
from vector_quantize_pytorch import VectorQuantize

# the library logs (loguru) when k-means init gets fewer vectors than codes; the training
# task says so itself, once and with the fix, so keep the library quiet
logger.disable("vector_quantize_pytorch")

SEARCH_CHUNK = 8192  # tokens per nearest-code search block (bounds memory at 2048² inputs)


class Quantizer(nn.Module):
    def __init__(self, dim: int, codebook_size: int, use_cosine_sim: bool = True,
                 codebook_update: str = "ema", decay: float = 0.99, kmeans_init: bool = True,
                 kmeans_iters: int = 10, threshold_ema_dead_code: float = 0.5,
                 commitment_weight: float = 0.25):
        super().__init__()
        self.dim, self.codebook_size, self.use_cosine_sim = dim, codebook_size, use_cosine_sim
        learned = codebook_update == "learned"
        self.vq = VectorQuantize(
            dim=dim, codebook_size=codebook_size, accept_image_fmap=True,
            use_cosine_sim=use_cosine_sim, decay=decay, kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters, threshold_ema_dead_code=threshold_ema_dead_code,
            commitment_weight=commitment_weight,
            ema_update=not learned, learnable_codebook=learned,
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, d, h, w) -> quantized (B, d, h, w) with straight-through gradients,
        tokens (B, h, w) long, quantizer loss (scalar; commitment, codebook when learned)."""
        quantized, tokens, loss = self.vq(z.float())
        return quantized, tokens.long(), loss

    @property
    def initialised(self) -> bool:
        return bool(self.vq._codebook.initted)

    @torch.no_grad()
    def kmeans_init_(self, z: torch.Tensor, batch_latents: int | None = None) -> None:
        """Run the library's k-means codebook init on latents z (B, d, h, w) of our choosing
        (it would otherwise use the first training batch, often fewer vectors than codes).

        k-means leaves each code's EMA count at its cluster size over all of z; rescaled to
        ``batch_latents`` (latents per training batch) the counts start on the scale that
        ``threshold_ema_dead_code`` is compared with, so dead codes are found from the start
        instead of after the inflated counts have decayed."""
        codebook = self.vq._codebook
        flat = rearrange(z.float(), "b d h w -> 1 (b h w) d")   # (num_codebooks=1, n, d)
        codebook.init_embed_(codebook.transform_input(flat))
        if batch_latents is not None:
            scale = batch_latents / flat.shape[1]
            codebook.cluster_size.mul_(scale)
            codebook.embed_avg.mul_(scale)

    def codebook(self) -> torch.Tensor:
        """(V, d) code vectors (unit length with cosine codes)."""
        return self.vq.codebook

    def lookup(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, h, w) -> code vectors (B, d, h, w)."""
        if tokens.min() < 0 or tokens.max() >= self.codebook_size:
            raise ValueError(f"token ids must lie in [0, {self.codebook_size}), got "
                             f"[{int(tokens.min())}, {int(tokens.max())}]")
        codes = self.codebook()[tokens.long()]            # (B, h, w, d)
        return rearrange(codes, "b h w d -> b d h w")

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d, h, w) -> tokens (B, h, w): the code ``forward`` picks in eval mode, found
        block by block so a 2048² image never builds an (h*w, V) matrix at once."""
        b, _, h, w = z.shape
        flat = rearrange(z.float(), "b d h w -> (b h w) d")
        codebook = self.codebook().float()
        if self.use_cosine_sim:
            flat = nn.functional.normalize(flat, dim=-1)
        out = torch.empty(flat.shape[0], dtype=torch.long, device=z.device)
        for start in range(0, flat.shape[0], SEARCH_CHUNK):
            block = flat[start:start + SEARCH_CHUNK]
            if self.use_cosine_sim:
                score = block @ codebook.t()                # (n, V) similarity
            else:
                score = -torch.cdist(block, codebook)        # (n, V) negative distance
            out[start:start + SEARCH_CHUNK] = score.argmax(dim=-1)
        return rearrange(out, "(b h w) -> b h w", b=b, h=h, w=w)


def code_counts(tokens: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code occurs: (V,) int64."""
    return torch.bincount(tokens.reshape(-1).long(), minlength=codebook_size)


def usage_stats(counts: torch.Tensor) -> dict[str, float]:
    """From per-code counts: ``usage`` (fraction of codes used at least once) and
    ``perplexity`` (exp of the entropy of the code distribution; V when all are used equally)."""
    counts = counts.double()
    total = counts.sum().clamp(min=1)
    probs = counts / total
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"usage": float((counts > 0).double().mean()), "perplexity": float(entropy.exp())}
