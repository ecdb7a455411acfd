import pytest
import torch

from nar.tokenizer.quantizer import Quantizer, code_counts, usage_stats


def test_nearest_matches_the_library_in_eval_mode():
    for cosine in (True, False):
        q = Quantizer(8, 32, use_cosine_sim=cosine, kmeans_init=False).eval()
        z = torch.randn(2, 8, 5, 7)
        _, tokens, _ = q(z)
        assert torch.equal(q.nearest(z), tokens)
        assert q.lookup(tokens).shape == (2, 8, 5, 7)


def test_round_trip_through_lookup():
    q = Quantizer(8, 32, kmeans_init=False).eval()
    tokens = torch.randint(32, (3, 4, 4))
    # codes are their own nearest neighbours
    assert torch.equal(q.nearest(q.lookup(tokens)), tokens)


def test_kmeans_init_on_chosen_latents():
    q = Quantizer(4, 16, kmeans_init=True)
    assert not q.initialised
    q.kmeans_init_(torch.randn(4, 4, 8, 8))
    assert q.initialised
    assert torch.isfinite(q.codebook()).all()


def test_lookup_rejects_out_of_range_tokens():
    q = Quantizer(4, 16, kmeans_init=False)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        q.lookup(torch.full((1, 2, 2), 16))


def test_usage_and_perplexity():
    uniform = usage_stats(code_counts(torch.arange(64).repeat(3), 64))
    assert uniform["usage"] == 1.0 and abs(uniform["perplexity"] - 64) < 1e-6
    collapsed = usage_stats(code_counts(torch.full((100,), 5), 64))
    assert collapsed["usage"] == 1 / 64 and abs(collapsed["perplexity"] - 1) < 1e-9
