"""Posterior guidance: CFG whose 'unconditional' is the model's own class mixture given the prefix."""
import pytest
import torch

from nar.core.errors import NarError
from nar.sampling.guidance import PosteriorGuidance, check_guidance_mode


def test_branches_are_class_major_and_bad_inputs_are_refused():
    g = PosteriorGuidance(torch.tensor([2, 0]), num_classes=3)
    assert g.branch_ids.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(NarError, match="real class"):
        PosteriorGuidance(torch.tensor([0, 3]), num_classes=3)   # 3 is the null class
    with pytest.raises(NarError, match="sharpness"):
        PosteriorGuidance(torch.tensor([0]), num_classes=3, sharpness=-1.0)
    with pytest.raises(NarError, match="before combine"):
        g.observe(torch.tensor([1, 1]))
    with pytest.raises(NarError, match="unknown guidance mode 'cond'"):
        check_guidance_mode("cond")


def test_with_an_open_prefix_it_is_cfg_against_the_uniform_class_mixture():
    torch.manual_seed(0)
    logits = torch.randn(3 * 2, 5)                       # (classes · draws, codes)
    g = PosteriorGuidance(torch.tensor([1, 2]), num_classes=3)
    guided = g.combine(logits, cfg_scale=2.5)
    logp = logits.view(3, 2, 5).log_softmax(-1)
    mixture = (logp.exp().mean(0)).log()
    asked = torch.stack([logp[1, 0], logp[2, 1]])
    assert torch.allclose(guided, mixture + 2.5 * (asked - mixture), atol=1e-5)
    g.observe(torch.tensor([0, 4]))
    assert torch.allclose(g.prefix_ll, logp[:, [0, 1], [0, 4]], atol=1e-6)


def test_guidance_fades_once_the_prefix_has_settled_the_class():
    """Tokens only class 0 makes likely drive the posterior to class 0, and then the guided draw is
    the conditional's own; while the prefix still favours another class, guidance pushes away from it."""
    logits = torch.zeros(2, 4)
    logits[0, 0] = 6.0                                    # class 0 branch: code 0 very likely
    g = PosteriorGuidance(torch.tensor([0]), num_classes=2)
    first = g.combine(logits, cfg_scale=3.0)
    assert not torch.allclose(first, logits[:1].log_softmax(-1), atol=1e-3)
    for _ in range(10):
        g.combine(logits, cfg_scale=3.0)
        g.observe(torch.tensor([0]))
    assert g.posterior().exp()[0, 0] > 0.999
    settled = g.combine(logits, cfg_scale=3.0)
    assert torch.allclose(settled, logits[:1].log_softmax(-1), atol=1e-3)
    tempered = PosteriorGuidance(torch.tensor([0]), num_classes=2, sharpness=0.0)  # β = 0: never settles
    tempered.combine(logits, 3.0)
    tempered.observe(torch.tensor([0]))
    assert torch.allclose(tempered.combine(logits, 3.0), first, atol=1e-6)


def test_contrast_guidance_pushes_against_the_other_classes_only_and_does_not_fade():
    torch.manual_seed(1)
    logits = torch.randn(3, 6)                           # three classes, one draw
    g = PosteriorGuidance(torch.tensor([1]), num_classes=3, contrast=True)
    logp = logits.log_softmax(-1)
    rivals = (0.5 * (logp[0].exp() + logp[2].exp())).log()   # the asked class 1 left out
    assert torch.allclose(g.combine(logits, 2.0)[0], rivals + 2.0 * (logp[1] - rivals), atol=1e-5)
    for _ in range(20):   # a prefix that is certainly class 1 still leaves its two rivals to push from
        g.combine(logits, 2.0)
        g.observe((logp[1] - logp[[0, 2]].max(0).values).argmax()[None])
    assert g.posterior().exp()[1, 0] == 0 and torch.isclose(g.posterior().exp().sum(), torch.tensor(1.0))
    assert not torch.allclose(g.combine(logits, 2.0)[0], logp[1], atol=1e-2)
    with pytest.raises(NarError, match="two classes"):
        PosteriorGuidance(torch.tensor([0]), num_classes=1, contrast=True)
