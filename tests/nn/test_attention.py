import torch
from einops import rearrange

from nar.nn.attention import Attention, TransformerBlock, TransformerStack, start_new_blocks_as_identity
from nar.nn.rotary import AxialRotary2D

HEADS, DIM_HEAD = 4, 8
DIM = HEADS * DIM_HEAD


def identity_out_attention(**kw) -> Attention:
    """Attention whose output projection is the identity, so head i owns features [i*d, (i+1)*d)."""
    torch.manual_seed(0)
    attn = Attention(DIM, HEADS, DIM_HEAD, **kw)
    with torch.no_grad():
        attn.to_out.weight.copy_(torch.eye(DIM))
    return attn.eval()


def per_head(out):
    return rearrange(out, "b n (h d) -> h b n d", h=HEADS)


def test_matches_reference_softmax_attention():
    attn = identity_out_attention()
    x = torch.randn(2, 12, DIM)
    q, k, v = rearrange(attn.to_qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=HEADS)
    weights = (q @ k.transpose(-1, -2) / DIM_HEAD**0.5).softmax(-1)
    expected = rearrange(weights @ v, "b h n d -> b n (h d)")
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-4)


def test_rotary_reaches_every_head():
    attn = identity_out_attention()
    rotary = AxialRotary2D(DIM_HEAD)
    x = torch.randn(1, 32, DIM)
    plain = per_head(attn(x))
    wide = per_head(attn(x, rotary.freqs(4, 8)))
    tall = per_head(attn(x, rotary.freqs(8, 4)))  # same content, other 2D layout
    for head in range(HEADS):
        assert (wide[head] - plain[head]).abs().max() > 1e-3, f"head {head} got no positions"
        assert (wide[head] - tall[head]).abs().max() > 1e-3, f"head {head} ignores the 2D layout"


def test_not_causal_by_default():
    attn = identity_out_attention()
    x = torch.randn(1, 10, DIM)
    y = x.clone()
    y[:, -1] += 1.0
    assert not torch.allclose(attn(x)[:, 0], attn(y)[:, 0])


def test_block_and_stack_shapes():
    torch.manual_seed(0)
    rotary = AxialRotary2D(DIM_HEAD)
    x = torch.randn(2, 24, DIM)
    block = TransformerBlock(DIM, HEADS, DIM_HEAD, ff_mult=2)
    assert block(x, rotary.freqs(4, 6)).shape == x.shape
    stack = TransformerStack(DIM, depth=3, heads=HEADS, dim_head=DIM_HEAD, ff_mult=2, dropout=0.1)
    out = stack(x, rotary_freqs=rotary.freqs(4, 6))
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in stack.parameters())


def test_blocks_a_parent_lacks_start_as_the_identity():
    torch.manual_seed(0)
    parent = TransformerStack(DIM, 1, HEADS, DIM_HEAD, ff_mult=2).eval()
    child = TransformerStack(DIM, 3, HEADS, DIM_HEAD, ff_mult=2).eval()
    child.load_state_dict(parent.state_dict(), strict=False)   # blocks.0 and the final norm
    new = start_new_blocks_as_identity(child, set(parent.state_dict()))
    assert new == ["blocks.1", "blocks.2"]
    x = torch.randn(2, 6, DIM)
    torch.testing.assert_close(child(x), parent(x))
    # the zeroed layers still learn: a gradient reaches them
    child(x).square().sum().backward()
    assert child.blocks[1].attn.to_out.weight.grad.abs().sum() > 0
    assert child.blocks[1].ff.net[-1].weight.grad.abs().sum() > 0
    # a block the parent had is left alone
    assert not start_new_blocks_as_identity(parent, set(parent.state_dict()))
