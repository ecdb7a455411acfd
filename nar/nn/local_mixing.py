"""Full-resolution local mixing for grids of tokens: a ConvNeXt-style block.

The 1024² SUNDAE default merges 4×4 token patches straight into its valley, so without this
the 16 tokens of a patch never see one another (nor the patch next door): each is drawn
independently from the valley vector, and the samples show the patch grid as visible blocks.
One block gives every token its k×k neighbourhood at the cost of a depthwise convolution and
a small per-token MLP, far cheaper than attention over 4096 tokens.

    x (B, h, w, D) -> x + MLP(depthwise_conv_k×k(LayerNorm(x)))

The last projection starts at zero, so adding blocks to a trained network leaves its
function unchanged until they learn something (fine-tuning a shipped model).
"""
from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

__all__ = ["LocalMixer", "local_mixer_flops"]


class LocalMixer(nn.Module):
    def __init__(self, dim: int, kernel: int = 3, mult: int = 1):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"local mixing kernel must be odd, got {kernel}")
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, h, w, D) -> (B, h, w, D)
        y = rearrange(self.norm(x), "b h w d -> b d h w")
        y = rearrange(self.conv(y), "b d h w -> b h w d")
        return x + self.mlp(y)


def local_mixer_flops(dim: int, kernel: int, mult: int, n_tokens: int) -> int:
    """Matmul/conv FLOPs of one block on n tokens (2 per multiply-add)."""
    return n_tokens * (2 * dim * kernel * kernel + 2 * 2 * dim * dim * mult)
