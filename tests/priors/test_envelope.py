"""One sampling envelope for every prior (Prior.sample): arguments checked up front in the
library's own words, eval mode during sampling and the caller's mode restored afterwards,
ordinary (non-inference) tensors out; and maskgit's FLOP count under a schedule override."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from nar.core.config import from_dict, to_dict
from nar.core.errors import ArgumentError, NarError
from nar.priors import PRIORS, prior_names

TINY = {
    "ar": dict(dim=32, depth=1, heads=2, dim_head=16, ff_mult=2, dropout=0.3),
    "maskgit": dict(dim=32, depth=1, heads=2, ff_mult=2, dropout=0.3),
    "sundae": dict(net=dict(dim=32, heads=2, dim_head=16, depths=[1, 1, 1], shorten=[2], ff_mult=2, dropout=0.3)),
}


def tiny_prior(name, num_classes=3, **extra):
    cls = PRIORS.get(name)
    data = to_dict(cls.config_cls())
    for key, value in {**TINY[name], **extra}.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    torch.manual_seed(0)
    return cls(from_dict(cls.config_cls, data), 16, num_classes, (4, 4))


@pytest.mark.parametrize("name", prior_names())
def test_sampling_runs_in_eval_mode_and_restores_the_callers_mode(name):
    prior = tiny_prior(name)
    prior.eval()
    ref = prior.sample(2, (4, 4), steps=2, generator=torch.Generator().manual_seed(0)).tokens
    prior.train()
    out = prior.sample(2, (4, 4), steps=2, generator=torch.Generator().manual_seed(0)).tokens
    assert prior.training                       # the caller's mode is back
    assert torch.equal(out, ref)                # no dropout while sampling
    assert not out.is_inference() and out.dtype == torch.long
    prior.eval()
    prior.sample(1, (4, 4), steps=1)
    assert not prior.training


@pytest.mark.parametrize("name", prior_names())
@pytest.mark.parametrize("kwargs, arg", [
    (dict(n=0), "n"), (dict(steps=0), "steps"), (dict(temperature=-1.0), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_p=1.5), "top_p"), (dict(cfg_scale=-1.0), "cfg"),
    (dict(cond=torch.tensor([0, 1, 2])), "cond"), (dict(cond=torch.tensor([0, 9])), "cond"),
    (dict(bogus_option=1), "options"),
])
def test_bad_arguments_fail_up_front_in_the_librarys_words(name, kwargs, arg):
    prior = tiny_prior(name)
    args = {"n": 2, "grid": (4, 4), "steps": 2, **kwargs}
    with pytest.raises(ArgumentError) as excinfo:
        prior.sample(**args)
    assert excinfo.value.name == arg
    assert "--" not in str(excinfo.value)


def test_maskgit_checks_its_own_options():
    prior = tiny_prior("maskgit")
    with pytest.raises(ArgumentError, match="choice_temperature"):
        prior.sample(1, (4, 4), steps=2, choice_temperature=-1.0)
    with pytest.raises(NarError, match="unknown mask schedule"):
        prior.sample(1, (4, 4), steps=2, schedule="nope")


def _cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(q, k, v)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_maskgit_flops_honour_a_schedule_override(schedule):
    prior = tiny_prior("maskgit", num_classes=0, dropout=0.0).eval()
    grid = (4, 6)
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out = prior.sample(1, grid, steps=3, schedule=schedule, generator=torch.Generator().manual_seed(0))
    analytic = prior.flops_per_image(grid, steps_run=out.steps_run, forward_passes=out.forward_passes,
                                     schedule=schedule)
    assert analytic == counter.get_total_flops()
