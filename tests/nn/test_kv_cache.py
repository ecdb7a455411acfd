"""The static KV cache decoder reads x-transformers' weights and matches its forward."""
import pytest
import torch

from nar.nn.kv_cache import CachedDecoder
from nar.priors.ar import ARConfig, ARPrior


def model(pos="rotary+2d", dim_head=16, seed=0):
    torch.manual_seed(seed)
    p = ARPrior(ARConfig(dim=32, depth=2, heads=2, dim_head=dim_head, ff_mult=2, pos=pos), 16, 2, (4, 4)).eval()
    with torch.no_grad():  # x-transformers starts its norms at exactly 1 (gamma 0 + unit offset): move them
        for name, w in p.layers.named_parameters():
            if name.endswith("gamma"):
                w.add_(torch.randn_like(w) * 0.1)
    return p


@pytest.mark.parametrize("pos,dim_head", [("rotary+2d", 16), ("2d", 16), ("rotary", 8)])
def test_chunks_and_steps_match_the_x_transformers_forward(pos, dim_head):
    p = model(pos, dim_head)
    x = torch.randn(3, 11, 32)
    with torch.inference_mode():
        ref = p.layers(x)
        dec = CachedDecoder.from_x_transformers(p.layers, 2, dim_head)
        cache = dec.new_cache(3, 16)
        assert cache.kv.shape == (2, 3, 2, 2, 16, dim_head) and cache.filled == 0
        kv = cache.kv
        # a prefill chunk, single positions, a chunk in the middle: the prefix-attention path
        out = [dec.forward(x[:, :4], cache), dec.forward(x[:, 4:5], cache), dec.forward(x[:, 5:9], cache),
               dec.forward(x[:, 9:11], cache, full=True)]
        assert cache.filled == 11 and cache.kv is kv  # written in place, never reallocated
        torch.testing.assert_close(torch.cat(out, 1), ref, atol=2e-5, rtol=1e-5)
        # the static-shape step (what torch.compile gets): whole-length masked attention
        cache2 = dec.new_cache(3, 16)
        steps = [dec.forward(x[:, :2], cache2)]
        steps += [dec.step(x[:, i:i + 1], cache2.kv, torch.tensor([i])) for i in range(2, 11)]
        torch.testing.assert_close(torch.cat(steps, 1), ref, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(cache2.kv[:, :, :, :, :11], cache.kv[:, :, :, :, :11], atol=2e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="holds 16 positions"):
        dec.forward(torch.randn(3, 6, 32), cache)


def test_bf16_weights_are_cast_once():
    p = model()
    dec = CachedDecoder.from_x_transformers(p.layers, 2, 16, dtype=torch.bfloat16)
    assert dec.dtype == torch.bfloat16 and all(t.dtype == torch.bfloat16 for t in dec.layers[0].values())
    with torch.inference_mode():
        out = dec.forward(torch.randn(1, 5, 32), dec.new_cache(1, 8))
        ref = p.layers(torch.randn(1, 5, 32))
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
