import pytest
import torch

from nar.core.errors import NarError
from nar.tokenizer.model import VQGAN

from tok_helpers import tiny_config


@pytest.mark.parametrize("ch_mult, factor", [((1, 2, 2, 2), 8), ((1, 2, 2, 2, 2), 16), ((1, 1, 2, 2, 2, 2), 32)])
def test_shapes_for_each_factor_and_non_square(ch_mult, factor):
    model = VQGAN(tiny_config(ch_mult=ch_mult, ch=4, crop=32))
    assert model.factor == factor
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    recon, quant_loss, info = model(x)
    assert recon.shape == x.shape
    assert info["tokens"].shape == (2, 64 // factor, 96 // factor) and info["tokens"].dtype == torch.long
    assert 0 < info["usage"] <= 1 and info["perplexity"] >= 1 and torch.isfinite(quant_loss)
    model.eval()
    tokens = model.encode(x)
    assert tokens.shape == (2, 64 // factor, 96 // factor)
    assert model.decode_tokens(tokens).shape == x.shape


def test_megapixel_through_a_tiny_f32_model():
    model = VQGAN(tiny_config(ch=2, ch_mult=(1, 1, 2, 2, 2, 2), z_channels=8)).eval()
    with torch.no_grad():
        tokens = model.encode(torch.zeros(1, 3, 1024, 1024))
        assert tokens.shape == (1, 32, 32)
        assert model.decode_tokens(tokens).shape == (1, 3, 1024, 1024)


def test_encode_picks_the_code_forward_picks():
    model = VQGAN(tiny_config()).eval()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        _, _, info = model(x)
    assert torch.equal(model.encode(x), info["tokens"])


def test_sizes_not_divisible_by_the_factor_are_refused():
    model = VQGAN(tiny_config()).eval()
    with pytest.raises(NarError, match="multiple of the tokenizer's factor 8"):
        model.encode(torch.zeros(1, 3, 30, 32))


def test_codebook_is_unit_length_low_dim():
    cfg = tiny_config(kmeans_init=False)   # with k-means init the codes are set by the first batch
    book = VQGAN(cfg).codebook()
    assert book.shape == (cfg.codebook_size, cfg.codebook_dim)
    torch.testing.assert_close(book.norm(dim=-1), torch.ones(cfg.codebook_size))


def test_decode_only_model_has_no_encoder():
    model = VQGAN(tiny_config(), decode_only=True)
    names = [n for n, _ in model.named_parameters()]
    assert names and not any(n.startswith(("encoder.", "quant_conv.")) for n in names)
    assert model.decode_tokens(torch.zeros(1, 2, 3, dtype=torch.long)).shape == (1, 3, 16, 24)
    with pytest.raises(NarError, match="decode-only"):
        model.encode(torch.zeros(1, 3, 16, 16))


def test_inference_decoder_paths_give_the_training_image():
    # no-grad decoding takes the fast paths (sub-pixel upsampling, in-place activations and
    # residuals); with gradients on, the plain Taming layers: the same image, the same weights
    from nar.tokenizer.model import Upsample
    torch.manual_seed(0)
    up = Upsample(8)
    x = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = up(x)
    torch.testing.assert_close(fast, up.conv(torch.nn.functional.interpolate(x, scale_factor=2.0)),
                               atol=1e-5, rtol=1e-5)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        up.conv.weight.mul_(2)  # new weights: the phase kernels are rebuilt
        torch.testing.assert_close(up(x), up.conv(torch.nn.functional.interpolate(x, scale_factor=2.0)),
                                   atol=1e-5, rtol=1e-5)
    model = VQGAN(tiny_config(), decode_only=True).eval()
    tokens = torch.randint(model.codebook_size, (1, 4, 6))
    slow = model.decode_tokens(tokens)  # grad enabled: the training layers
    with torch.inference_mode():
        torch.testing.assert_close(model.decode_tokens(tokens), slow.detach(), atol=1e-5, rtol=1e-5)
    assert set(model.state_dict()) == set(VQGAN(tiny_config(), decode_only=True).state_dict())
