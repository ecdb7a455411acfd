"""Per-step callbacks, callback(step, total, tokens), through `Prior.sample` for every prior."""
from pathlib import Path

import pytest
import torch

from nar.core.errors import ArgumentError
from nar.priors import build_prior

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "priors"
V = 16


def tiny(name: str):
    torch.manual_seed(0)
    return build_prior(name, RECIPES / f"{name}_tiny.toml", codebook_size=V, train_grid=(8, 8)).eval()


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, step, total, tokens):
        self.calls.append((step, total, tokens.clone()))


def sample(prior, callback, **kw):
    return prior.sample(2, (8, 8), generator=torch.Generator().manual_seed(0), callback=callback, **kw)


@pytest.mark.parametrize("name,steps", [("maskgit", 5), ("sundae", 6)])
def test_parallel_priors_call_once_per_step_with_current_tokens(name, steps):
    prior, rec = tiny(name), Recorder()
    out = sample(prior, rec, steps=steps)
    assert out.steps_run == len(rec.calls) and 1 <= len(rec.calls) <= steps
    assert [c[0] for c in rec.calls] == list(range(len(rec.calls)))       # 0, 1, 2, ... increasing
    assert all(c[1] == steps for c in rec.calls)                           # total = the planned steps
    assert all(c[2].shape == (2, 8, 8) for c in rec.calls)
    assert torch.equal(rec.calls[-1][2], out.tokens)                       # the last call sees the result
    # the callback does not change the sample
    assert torch.equal(sample(prior, None, steps=steps).tokens, out.tokens)
    if name == "maskgit":  # fewer cells still masked after each step, none at the end
        masked = [int((c[2] == prior.mask_id).sum()) for c in rec.calls]
        assert masked == sorted(masked, reverse=True) and masked[-1] == 0 and masked[0] > 0


def test_sundae_early_stop_keeps_the_planned_total_and_stops_calling():
    prior, rec = tiny("sundae"), Recorder()
    # min_change = every cell: each sample is frozen after its first checked step
    out = sample(prior, rec, steps=10, min_change=8 * 8, min_steps=2)
    assert out.steps_run == 2 and len(rec.calls) == 2
    assert [c[:2] for c in rec.calls] == [(0, 10), (1, 10)]
    assert torch.equal(rec.calls[-1][2], out.tokens)


def test_ar_calls_once_per_row():
    prior, rec = tiny("ar"), Recorder()
    out = sample(prior, rec)
    assert [c[:2] for c in rec.calls] == [(i, 8) for i in range(8)]
    for i, (_, _, tokens) in enumerate(rec.calls):   # rows 0..i are final, later rows not written yet
        assert torch.equal(tokens[:, : i + 1], out.tokens[:, : i + 1])
        assert not tokens[:, i + 1:].any()
    assert torch.equal(sample(prior, None).tokens, out.tokens)


def test_ar_inpainting_still_calls_every_row():
    prior, rec = tiny("ar"), Recorder()
    keep = torch.ones(2, 8, 8, dtype=torch.bool)
    keep[:, 4:6, 2:5] = False
    sample(prior, rec, known=torch.zeros(2, 8, 8, dtype=torch.long), keep=keep)
    assert [c[0] for c in rec.calls] == list(range(8))


def test_not_callable_is_an_argument_error():
    with pytest.raises(ArgumentError) as e:
        sample(tiny("maskgit"), callback=3)
    assert e.value.name == "callback"
