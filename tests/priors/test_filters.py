"""Logit filters and categorical sampling shared by every prior (nar/sampling/filters.py)."""
import math

import pytest
import torch

from nar.core.errors import NarError
from nar.sampling.filters import ascending_ranks, gumbel_noise, sample_logits, top_k_filter, top_p_filter, validate_sampling_args


def kept(logits):
    return torch.isfinite(logits)


def test_top_k_keeps_exactly_the_k_largest():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 50, generator=g)
    for k in (1, 3, 17):
        out = top_k_filter(logits, k)
        assert (kept(out).sum(-1) == k).all()
        top = torch.topk(logits, k, dim=-1).indices
        assert kept(out).gather(-1, top).all()
        assert torch.equal(out[kept(out)], logits[kept(out)])  # survivors are untouched
    assert top_k_filter(logits, None) is logits and top_k_filter(logits, 50) is logits


def test_top_p_keeps_the_nucleus():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert kept(top_p_filter(logits, 0.8)).tolist() == [True, True, False, False]
    assert kept(top_p_filter(logits, 0.81)).tolist() == [True, True, True, False]
    assert kept(top_p_filter(logits, 0.5)).tolist() == [True, False, False, False]
    assert kept(top_p_filter(logits, 0.01)).tolist() == [True, False, False, False]  # best always kept
    assert kept(top_p_filter(logits, 0.99)).all()
    assert top_p_filter(logits, 1.0) is logits and top_p_filter(logits, None) is logits
    # unsorted order, batched rows and 3-D input
    shuffled = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.25, 0.25, 0.25, 0.25]]).log()
    assert kept(top_p_filter(shuffled, 0.8)).tolist() == [[False, True, False, True], [True, True, True, True]]
    assert kept(top_p_filter(shuffled[None], 0.8)).shape == (1, 2, 4)


def test_top_k_then_top_p_in_sample_logits():
    logits = torch.tensor([0.4, 0.3, 0.2, 0.1]).log().expand(2000, 4)
    ids = sample_logits(logits, 1.0, top_k=3, top_p=0.6, generator=torch.Generator().manual_seed(0))
    # top-3 renormalised: 0.444, 0.333, 0.222 -> nucleus 0.6 keeps {0, 1}
    assert set(ids.tolist()) == {0, 1}


def test_temperature_zero_is_argmax_and_temperature_sharpens():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 3, 10, generator=g)
    assert torch.equal(sample_logits(logits, 0.0), logits.argmax(-1))
    two = torch.tensor([[1.0, 0.0]]).expand(4000, 2)
    cold = sample_logits(two, 0.25, generator=torch.Generator().manual_seed(0)).float().mean()
    warm = sample_logits(two, 1.0, generator=torch.Generator().manual_seed(0)).float().mean()
    expect_cold, expect_warm = 1 / (1 + math.exp(4)), 1 / (1 + math.e)  # probability of id 1
    assert abs(cold - expect_cold) < 0.02 and abs(warm - expect_warm) < 0.03


def test_sampling_follows_the_distribution_and_is_reproducible():
    probs = torch.tensor([0.1, 0.6, 0.3])
    logits = probs.log().expand(20000, 3)
    a = sample_logits(logits, 1.0, generator=torch.Generator().manual_seed(5))
    b = sample_logits(logits, 1.0, generator=torch.Generator().manual_seed(5))
    c = sample_logits(logits, 1.0, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    freq = torch.bincount(a, minlength=3).float() / a.numel()
    assert torch.allclose(freq, probs, atol=0.015)
    assert a.shape == (20000,) and a.dtype == torch.long
    shaped = sample_logits(torch.zeros(2, 3, 5), 1.0, generator=torch.Generator().manual_seed(0))
    assert shaped.shape == (2, 3) and shaped.max() < 5


def test_gumbel_noise_is_reproducible_and_finite():
    a = gumbel_noise((1000,), torch.Generator().manual_seed(0), "cpu")
    b = gumbel_noise((1000,), torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert abs(float(a.mean()) - 0.5772) < 0.1  # Euler–Mascheroni: the Gumbel(0, 1) mean


def test_validate_sampling_args():
    validate_sampling_args(steps=8, temperature=0.0, top_k=1, top_p=1.0, n=1)
    # errors below the CLI speak in argument names, never in flags; .name lets the CLI add the flag
    for kwargs, msg in [(dict(n=0), "n must"), (dict(steps=0), "steps"), (dict(temperature=-1), "temperature"),
                        (dict(top_k=0), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.2), "top_p")]:
        with pytest.raises(NarError, match=msg) as excinfo:
            validate_sampling_args(**kwargs)
        assert "--" not in str(excinfo.value) and excinfo.value.name == next(iter(kwargs))


def test_sample_logits_matches_the_distribution():
    logits = torch.log(torch.tensor([0.1, 0.6, 0.3, 0.0]))
    ids = sample_logits(logits.expand(20000, 4), 1.0, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(ids, minlength=4).float() / ids.numel()
    assert torch.allclose(freq, torch.tensor([0.1, 0.6, 0.3, 0.0]), atol=0.015)
    assert (sample_logits(logits.expand(100, 4), 1.0, top_k=1) == 1).all()
    assert (sample_logits(logits.expand(10, 4), 0.0) == 1).all()


def test_epsilon_filter_drops_the_floor_and_keeps_the_best():
    from nar.sampling.filters import epsilon_filter
    # a label-smoothed distribution: 0.9 on three codes, 0.1 spread over all 100
    probs = torch.full((2, 100), 0.1 / 100)
    probs[0, :3] += torch.tensor([0.5, 0.3, 0.1])
    probs[1, 7] = 0.5   # one clear winner, the rest at or near the floor
    logits = probs.log()
    kept = epsilon_filter(logits, 0.002).isfinite()
    assert kept[0].nonzero().flatten().tolist() == [0, 1, 2]
    assert kept[1].nonzero().flatten().tolist() == [7]
    assert torch.equal(epsilon_filter(logits, 0.0), logits)
    # a filter above every probability still leaves the most likely code
    assert epsilon_filter(logits, 0.9).isfinite().sum(-1).tolist() == [1, 1]
    draws = sample_logits(epsilon_filter(logits, 0.002).expand(500, 2, 100).reshape(1000, 100),
                          generator=torch.Generator().manual_seed(0))
    assert set(draws.tolist()) <= {0, 1, 2, 7}


def test_ascending_ranks_match_a_double_stable_argsort_and_break_ties_by_index():
    scores = torch.tensor([[0.5, -1.0, 0.5, float("inf"), 0.2], [3.0, 3.0, 3.0, 1.0, 2.0]])
    assert ascending_ranks(scores).tolist() == [[2, 0, 3, 4, 1], [2, 3, 4, 0, 1]]
    many = torch.randint(0, 5, (4, 7, 300)).float()                 # (…, N): ranks along the last dim
    assert torch.equal(ascending_ranks(many), many.argsort(dim=-1, stable=True).argsort(dim=-1, stable=True))
    assert torch.equal(ascending_ranks(many).sort(dim=-1).values, torch.arange(300).expand(4, 7, 300))
