import math
from pathlib import Path

import pytest
import torch

from nar.core.checkpoint import save_checkpoint
from nar.core.errors import NarError
from nar.priors import build_prior, load_prior
from nar.priors.maskgit import MaskGITConfig, MaskGITPrior

REPO = Path(__file__).resolve().parents[2]
V = 16  # codebook size
TINY = dict(dim=32, depth=2, heads=2, dropout=0.0)


def make(num_classes=0, train_grid=(4, 4), codebook_size=V, seed=0, **overrides):
    torch.manual_seed(seed)
    return build_prior("maskgit", overrides={**TINY, **overrides}, codebook_size=codebook_size,
                       num_classes=num_classes, train_grid=train_grid).eval()


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_registry_config_and_defaults():
    prior = build_prior("maskgit", REPO / "configs/priors/maskgit_tiny.toml", codebook_size=V)
    assert isinstance(prior, MaskGITPrior) and prior.name == "maskgit"
    assert MaskGITPrior.default_steps == 12 and prior.mask_id == V
    full = build_prior("maskgit", REPO / "configs/priors/maskgit.toml", codebook_size=1024)
    assert (full.cfg.dim, full.cfg.depth) == (512, 12)
    cfg = MaskGITConfig()
    assert (cfg.cond_drop_prob, cfg.label_smoothing, cfg.schedule, cfg.choice_temperature, cfg.steps) == \
        (0.1, 0.1, "cosine", 4.5, 12)
    assert make().sample(1, (4, 4), generator=gen(0)).steps_run == 12


def test_bad_config_and_options_fail_clearly():
    with pytest.raises(NarError, match="divisible"):
        make(dim=30, heads=4)
    with pytest.raises(NarError, match="schedule"):
        make(schedule="nope")
    with pytest.raises(NarError, match="unknown sampling option"):
        make().sample(1, (4, 4), bogus=1)


def test_loss_masks_cosine_fraction_and_only_scores_masked():
    prior = make()
    eps = prior.cfg.label_smoothing
    tokens = torch.randint(0, V, (4000, 4, 4))
    seen = {}

    def fake_forward(ids, class_ids, grid, select=None, shift=(0, 0)):
        seen["ids"] = ids
        # the label-smoothed target distribution exactly on masked positions (its own entropy is
        # then the minimal loss); visible positions are badly wrong and must not count
        logits = torch.full((*ids.shape, V + 1), math.log(eps / V))
        logits[..., V] = -1e9
        logits.scatter_(-1, tokens.reshape(len(ids), -1, 1), math.log(1 - eps + eps / V))
        logits[..., 0] += (ids != prior.mask_id) * 100.0
        return (logits if select is None else logits[select]).requires_grad_()

    prior.forward = fake_forward
    torch.manual_seed(0)
    parts = prior.loss(tokens)
    masked = seen["ids"] == prior.mask_id
    per_sample = masked.sum(1)
    assert per_sample.min() >= 1 and per_sample.max() <= 16
    # visible tokens pass through unchanged
    visible = ~masked
    assert torch.equal(seen["ids"][visible], tokens.reshape(4000, -1)[visible])
    # E[ceil(16 cos(pi/2 u))] / 16 is about 2/pi + 1/32
    expected = sum(math.ceil(16 * math.cos(math.pi / 2 * (i + 0.5) / 10_000)) for i in range(10_000)) / 16e4
    assert masked.float().mean().item() == pytest.approx(expected, abs=0.02)
    # masked positions predicted as well as possible -> acc 1, loss = entropy of the smoothed target
    assert parts["acc"].item() == 1.0
    p_true, p_other = 1 - eps + eps / V, eps / V
    entropy = -(p_true * math.log(p_true) + (V - 1) * p_other * math.log(p_other))
    assert parts["loss"].item() == pytest.approx(entropy, abs=1e-4)


def test_sampling_fills_every_position_in_t_steps():
    prior = make()
    for steps in (1, 4, 12):
        out = prior.sample(2, (4, 4), steps=steps, generator=gen(0))
        assert out.tokens.shape == (2, 4, 4)
        assert (out.tokens < V).all() and (out.tokens >= 0).all()
        assert out.steps_run == steps and out.forward_passes == steps
    # T > N: one token per step, T clamped to N
    out = prior.sample(1, (2, 3), steps=20, generator=gen(0))
    assert out.steps_run == 6 and (out.tokens < V).all()


def test_each_step_fixes_the_scheduled_number_of_tokens():
    prior = make()
    masked_after = []
    original = prior.forward

    def spy(ids, class_ids, grid, select=None, shift=(0, 0)):
        masked_after.append(int((ids[0] == prior.mask_id).sum()))
        return original(ids, class_ids, grid, select)

    prior.forward = spy
    prior.sample(1, (8, 8), steps=8, generator=gen(0))
    from nar.sampling.schedules import mask_counts
    assert masked_after == [64] + mask_counts(64, 8)[:-1]


def test_mask_id_never_sampled_even_when_its_logit_dominates():
    prior = make()
    with torch.no_grad():
        prior.to_logits.bias[prior.mask_id] = 1e4
    for kwargs in (dict(temperature=1.0), dict(temperature=0.0), dict(temperature=2.0, top_k=3),
                   dict(temperature=1.0, top_p=0.5)):
        out = prior.sample(3, (4, 4), steps=6, generator=gen(1), **kwargs)
        assert (out.tokens != prior.mask_id).all() and (out.tokens < V).all()


def test_inpainting_keeps_known_tokens():
    prior = make(num_classes=2)
    n, grid = 3, (6, 6)
    known = torch.randint(0, V, (n, *grid), generator=gen(5))
    keep = torch.rand(n, *grid, generator=gen(6)) < 0.5
    keep[2] = True           # one sample fully known
    keep[1, :, :] = False    # one with nothing known
    keep[1, 0, 0] = True
    out = prior.sample(n, grid, steps=8, known=known, keep=keep, cond=torch.tensor([0, 1, 0]),
                       cfg_scale=2.0, generator=gen(0))
    assert torch.equal(out.tokens[keep], known[keep])
    assert (out.tokens < V).all()
    assert out.steps_run == 8
    # a 2D keep mask broadcasts; only the unknown tokens count towards T
    keep2 = torch.ones(*grid, dtype=torch.bool)
    keep2[0, :3] = False
    out = prior.sample(2, grid, steps=12, known=known[0], keep=keep2, generator=gen(0))
    assert out.steps_run == 3 and torch.equal(out.tokens[:, keep2], known[0][keep2].expand(2, -1))
    # everything kept: nothing to run
    out = prior.sample(1, grid, known=known[:1], keep=torch.ones(1, *grid, dtype=torch.bool))
    assert out.steps_run == 0 and torch.equal(out.tokens, known[:1])
    with pytest.raises(NarError):
        prior.sample(1, grid, known=known[:1])


def test_same_seed_same_tokens_different_seed_differs():
    prior = make(codebook_size=64)
    a = prior.sample(2, (8, 8), steps=6, generator=gen(123)).tokens
    b = prior.sample(2, (8, 8), steps=6, generator=gen(123)).tokens
    c = prior.sample(2, (8, 8), steps=6, generator=gen(124)).tokens
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_cfg_runs_as_one_batched_pass():
    prior = make(num_classes=3)
    batches = []
    original = prior.forward

    def spy(ids, class_ids, grid, select=None, shift=(0, 0)):
        batches.append(class_ids.tolist())
        return original(ids, class_ids, grid, select)

    prior.forward = spy
    cond = torch.tensor([0, 2])
    guided = prior.sample(2, (4, 4), steps=4, cond=cond, cfg_scale=3.0, generator=gen(0))
    assert guided.forward_passes == 4 and len(batches) == 4
    assert all(b == [0, 2, 3, 3] for b in batches)  # cond + null ids, one pass
    batches.clear()
    plain = prior.sample(2, (4, 4), steps=4, cond=cond, cfg_scale=1.0, generator=gen(0))
    assert all(b == [0, 2] for b in batches)
    assert not torch.equal(guided.tokens, plain.tokens)


def test_runs_on_grids_larger_and_non_square_than_training():
    prior = make(train_grid=(4, 4))
    out = prior.sample(1, (8, 12), steps=4, generator=gen(0))
    assert out.tokens.shape == (1, 8, 12) and (out.tokens < V).all()
    # the interpolated absolute table agrees with the learned one on the training grid's corners
    big = prior.abs_positions((8, 12)).reshape(8, 12, -1)
    small = prior.abs_positions((4, 4)).reshape(4, 4, -1)
    for (r, c), (R, C) in [((0, 0), (0, 0)), ((3, 3), (7, 11)), ((0, 3), (0, 11))]:
        assert torch.allclose(small[r, c], big[R, C], atol=1e-6)


def test_tiny_model_overfits_one_grid_per_class(train_steps):
    torch.manual_seed(0)
    prior = make(num_classes=3, dim=64, heads=4)
    grids = torch.randint(0, V, (3, 4, 4), generator=gen(1))
    labels = torch.arange(3).repeat(8)
    first, parts = train_steps(prior, grids[labels], labels, 120)
    assert parts["loss"].item() < first / 2
    out = prior.sample(3, (4, 4), steps=4, temperature=0.0, cond=torch.arange(3), choice_temperature=0.0)
    assert torch.equal(out.tokens, grids)
    # sampled with noise and guidance it still lands (almost) on the class's grid
    out = prior.sample(3, (4, 4), steps=4, temperature=0.5, cond=torch.arange(3), cfg_scale=2.0,
                       generator=gen(0))
    assert (out.tokens == grids).float().mean() > 0.9


def test_save_and_load_round_trip(tmp_path):
    prior = make(num_classes=2, train_grid=(4, 6))
    path = save_checkpoint(tmp_path / "maskgit.safetensors", prior.state_dict(), prior.meta())
    loaded = load_prior(path, name="maskgit")
    assert isinstance(loaded, MaskGITPrior) and loaded.train_grid == (4, 6)
    ids = torch.randint(0, V + 1, (2, 24))
    cls = torch.tensor([0, 2])
    with torch.no_grad():
        assert torch.equal(prior(ids, cls, (4, 6)), loaded(ids, cls, (4, 6)))
    a = prior.sample(1, (4, 6), steps=3, generator=gen(9)).tokens
    b = loaded.sample(1, (4, 6), steps=3, generator=gen(9)).tokens
    assert torch.equal(a, b)
    with pytest.raises(NarError):
        load_prior(path, name="sundae")


def test_box_corruption_masks_only_inside_the_box():
    prior = make(box_corruption=1.0, train_grid=(8, 8))
    tokens = torch.randint(0, V, (64, 8, 8))
    seen = {}

    def fake_forward(ids, class_ids, grid, select=None, shift=(0, 0)):
        seen["ids"] = ids
        logits = torch.zeros((*ids.shape, V + 1))
        return (logits if select is None else logits[select]).requires_grad_()

    prior.forward = fake_forward
    torch.manual_seed(0)
    prior.loss(tokens)
    torch.manual_seed(0)
    torch.rand(64)                                      # the schedule draw comes first
    region = prior.training_regions(64, (8, 8)).reshape(64, -1)
    masked = seen["ids"] == prior.mask_id
    assert masked.any(1).all() and not (masked & ~region).any()
    assert torch.equal(seen["ids"][~masked], tokens.reshape(64, -1)[~masked])
    with pytest.raises(NarError, match="box_corruption"):
        make(box_corruption=-0.1)


def _fake_model(prior, target, margin):
    """A forward whose every cell prefers ``target``'s token by ``margin`` nats over each of the
    other codes (so sampling at temperature 1 errs often); [MASK] is never likely."""
    def forward(ids, class_ids, grid, select=None, shift=(0, 0)):
        logits = torch.zeros(*ids.shape, V + 1)
        logits[..., V] = -1e9
        logits.scatter_(-1, target.reshape(1, -1, 1).expand(len(ids), -1, 1), margin)
        return logits if select is None else logits[select]
    prior.forward = forward


def test_refinement_redraws_the_least_likely_tokens():
    prior = make()
    target = torch.randint(0, V, (8, 8), generator=gen(3))
    _fake_model(prior, target, margin=3.0)
    plain = prior.sample(4, (8, 8), steps=6, generator=gen(0))
    assert (plain.steps_run, plain.forward_passes) == (6, 6)
    one = prior.sample(4, (8, 8), steps=6, generator=gen(0), refine_rounds=1, refine_ratio=0.25)
    # one round: 4 scoring passes (one per 2x2 lattice) + 2 decoding steps; only re-masked cells change
    assert (one.steps_run, one.forward_passes) == (8, 12)
    assert ((one.tokens != plain.tokens).flatten(1).sum(1) <= 16).all()
    # wrong tokens are the unlikely ones, so each round redraws them and the error rate falls
    refined = prior.sample(4, (8, 8), steps=6, generator=gen(0), refine_rounds=4, refine_ratio=0.4)
    errors = lambda out: (out.tokens != target).float().mean().item()
    assert errors(plain) > 0.15 and errors(refined) < 0.7 * errors(plain)


def test_refinement_never_touches_kept_tokens_and_counts_its_steps():
    prior = make(num_classes=2)
    grid = (8, 8)
    known = torch.randint(0, V, (2, *grid), generator=gen(5))
    keep = torch.rand(2, *grid, generator=gen(6)) < 0.5
    original, inputs, calls = prior.forward, [], []

    def spy(ids, class_ids, grid, select=None, shift=(0, 0)):
        inputs.append(ids.clone())
        return original(ids, class_ids, grid, select, shift)

    prior.forward = spy
    out = prior.sample(2, grid, steps=5, known=known, keep=keep, cond=torch.tensor([0, 1]), cfg_scale=2.0,
                       generator=gen(0), refine_rounds=2, refine_ratio=0.3, refine_steps=3,
                       callback=lambda t, total, ids: calls.append((t, total)))
    assert torch.equal(out.tokens[keep], known[keep]) and (out.tokens < V).all()
    kept = keep.reshape(2, -1).repeat(2, 1)  # guidance runs [cond; null]
    assert all(not (x[kept] == prior.mask_id).any() for x in inputs)
    assert calls == [(t, 11) for t in range(11)]
    assert (out.steps_run, out.forward_passes) == (11, 5 + 2 * (4 + 3))


def test_refinement_settings_are_checked():
    prior = make()
    for bad in (dict(refine_rounds=-1), dict(refine_rounds=1.5), dict(refine_ratio=0.0),
                dict(refine_ratio=1.5), dict(refine_steps=0)):
        with pytest.raises(NarError, match=next(iter(bad))):
            prior.sample(1, (4, 4), generator=gen(0), **bad)
    with pytest.raises(NarError, match="refine_ratio"):
        make(refine_ratio=2.0)


def test_linear_guidance_schedule_grows_with_the_fixed_share(record_guidance):
    prior = make(num_classes=2)
    scales = record_guidance(prior)
    kw = dict(cond=torch.tensor([0, 1]), cfg_scale=3.0, generator=gen(0))
    out = prior.sample(2, (4, 4), steps=4, cfg_schedule="linear", **kw)
    assert out.tokens.shape == (2, 4, 4) and len(scales) == 4
    # step 0: nothing fixed yet, the conditional model unguided; then 1 + 2 * (share fixed)
    assert scales[0] == 1.0 and scales == sorted(scales) and 1.0 < scales[-1] < 3.0
    scales.clear()
    prior.sample(2, (4, 4), steps=4, **kw)
    assert scales == [3.0] * 4
    with pytest.raises(NarError, match="guidance schedule"):
        prior.sample(1, (4, 4), generator=gen(0), cfg_schedule="cosine")


def test_epsilon_keeps_every_draw_off_the_smoothing_floor():
    prior = make()
    target = torch.randint(0, V, (8, 8), generator=gen(3))
    _fake_model(prior, target, margin=3.0)
    # the fake model's wrong codes sit e^-3 below the right one: about 1/(1 + 15 e^-3) = 0.57 for the
    # right code and 0.029 for each wrong one; a floor of 0.05 leaves only the right one
    plain = prior.sample(4, (8, 8), steps=6, generator=gen(0))
    cut = prior.sample(4, (8, 8), steps=6, generator=gen(0), epsilon=0.05)
    assert (plain.tokens != target).any() and torch.equal(cut.tokens, target.expand(4, 8, 8))
    with pytest.raises(NarError, match="epsilon"):
        prior.sample(1, (4, 4), generator=gen(0), epsilon=1.5)


def _ring_reader(prior, cell, margin):
    """A forward under which every cell predicts the token at ``cell`` (by ``margin`` nats), and
    nothing in particular while ``cell`` is still masked."""
    def forward(ids, class_ids, grid, select=None, shift=(0, 0)):
        logits = torch.zeros(*ids.shape, V + 1)
        logits[..., V] = -1e9
        anchor = ids[:, cell]
        known = anchor != prior.mask_id
        logits[known] = logits[known].scatter(-1, anchor[known].reshape(-1, 1, 1).expand(-1, ids.shape[1], 1), margin)
        return logits if select is None else logits[select]
    prior.forward = forward


def test_best_of_k_keeps_the_fill_that_best_explains_its_surroundings():
    prior = make()
    grid, k, cell = (8, 8), 8, 3 * 8 + 3
    _ring_reader(prior, cell, margin=4.0)
    known = torch.full((1, *grid), 5)
    keep = torch.ones(1, *grid, dtype=torch.bool)
    keep[0, 2:6, 2:6] = False
    # the same draws as best-of-k makes: k rows of the one image, in one batch
    every = prior.sample(k, grid, steps=4, known=known.expand(k, -1, -1), keep=keep.expand(k, -1, -1),
                         generator=gen(0)).tokens
    best = prior.sample(1, grid, steps=4, known=known, keep=keep, generator=gen(0), candidates=k)
    anchors = every.reshape(k, -1)[:, cell]
    assert (anchors == 5).any() and not (anchors == 5).all()   # the test can tell a good fill from a bad one
    assert best.tokens.shape == (1, *grid) and best.tokens.reshape(-1)[cell] == 5   # the ring is all 5s
    assert torch.equal(best.tokens[0], every[int((anchors == 5).nonzero()[0])])
    assert torch.equal(best.tokens[keep], known[keep])
    # 4 decoding steps, then one scoring pass per lattice that holds ring cells
    assert (best.steps_run, best.forward_passes) == (4, 4 + 4)


def test_best_of_k_settings_are_checked():
    prior = make()
    known, keep = torch.zeros(1, 4, 4, dtype=torch.long), torch.rand(1, 4, 4, generator=gen(0)) < 0.5
    for bad in (dict(candidates=0), dict(candidates=1.5), dict(rank_ring=0)):
        with pytest.raises(NarError, match=next(iter(bad))):
            prior.sample(1, (4, 4), known=known, keep=keep, generator=gen(0), **bad)
    with pytest.raises(NarError, match="free sampling"):
        prior.sample(1, (4, 4), generator=gen(0), candidates=2)
    with pytest.raises(NarError, match="candidates"):
        make(candidates=0)


def test_outside_in_fixes_the_region_from_its_border_inwards():
    from nar.sampling.fill import distance_to_kept
    prior = make()
    grid = (8, 8)
    known = torch.randint(0, V, (2, *grid), generator=gen(1))
    keep = torch.ones(2, *grid, dtype=torch.bool)
    keep[:, 1:7, 1:7] = False
    dist = distance_to_kept(keep)
    seen = []
    out = prior.sample(2, grid, steps=6, known=known, keep=keep, generator=gen(0), outside_in=1000.0,
                       callback=lambda t, total, ids: seen.append(ids.clone()))
    assert torch.equal(out.tokens[keep], known[keep])
    for ids in seen[:-1]:
        masked = ids == prior.mask_id
        fixed = ~masked & ~keep
        for i in range(2):   # every cell fixed so far lies no deeper than any cell still masked
            if fixed[i].any() and masked[i].any():
                assert dist[i][fixed[i]].max() <= dist[i][masked[i]].min()
    # the plain order does not: some step fixes a deeper cell before a shallower one
    plain = []
    prior.sample(2, grid, steps=6, known=known, keep=keep, generator=gen(0),
                 callback=lambda t, total, ids: plain.append(ids.clone()))
    assert any(dist[i][(ids[i] != prior.mask_id) & ~keep[i]].max() > dist[i][ids[i] == prior.mask_id].min()
               for ids in plain[:-1] for i in range(2) if (ids[i] == prior.mask_id).any())
    with pytest.raises(NarError, match="outside_in"):
        prior.sample(1, grid, generator=gen(0), outside_in=1.0)   # free sampling: nothing kept
    with pytest.raises(NarError, match="outside_in"):
        prior.sample(2, grid, known=known, keep=keep, generator=gen(0), outside_in=-1.0)


def test_best_of_k_ranks_class_conditional_samples_by_the_implicit_classifier():
    prior = make(num_classes=3)
    grid, k, margin = (4, 4), 6, 1.5

    def forward(ids, class_ids, grid, select=None, shift=(0, 0)):
        """class c prefers code c everywhere by ``margin`` nats; the null class is uniform."""
        logits = torch.zeros(*ids.shape, V + 1)
        logits[..., V] = -1e9
        conditioned = class_ids != prior.null_class
        logits[torch.arange(len(ids))[conditioned], :, class_ids[conditioned]] = margin
        return logits if select is None else logits[select]

    prior.forward = forward
    every = prior.sample(k, grid, steps=4, cond=torch.full((k,), 2), generator=gen(0)).tokens
    best = prior.sample(1, grid, steps=4, cond=torch.tensor([2]), generator=gen(0), candidates=k)
    # log p(x | 2) - log p(x | null) grows with the number of cells holding code 2
    hits = (every == 2).flatten(1).sum(1)
    assert hits.max() > hits.min()
    assert torch.equal(best.tokens[0], every[int(hits.argmax())])
    assert best.forward_passes == 4 + 4   # 4 decoding steps, 4 lattice passes ([cond; null] batched)


def test_reflect_init_starts_from_the_mirrored_border_and_only_refines():
    from nar.sampling.fill import reflect_fill
    prior = make()
    grid = (8, 8)
    known = torch.randint(0, V, (1, *grid), generator=gen(2))
    keep = torch.ones(1, *grid, dtype=torch.bool)
    keep[:, 2:6, 2:6] = False
    calls = []
    plain = prior.sample(1, grid, known=known, keep=keep, generator=gen(0), init="reflect", refine_rounds=0)
    assert torch.equal(plain.tokens, reflect_fill(known, keep)) and plain.steps_run == 0
    out = prior.sample(1, grid, known=known, keep=keep, generator=gen(0), init="reflect", refine_rounds=2,
                       refine_ratio=0.25, refine_steps=2, callback=lambda t, total, ids: calls.append((t, total)))
    assert torch.equal(out.tokens[keep], known[keep])
    assert ((out.tokens != plain.tokens).sum() <= 2 * 4)   # at most 2 rounds x 25 % of the 16 cells redrawn
    assert calls == [(t, 4) for t in range(4)] and (out.steps_run, out.forward_passes) == (4, 2 * (4 + 2))
    with pytest.raises(NarError, match="init"):
        prior.sample(1, grid, generator=gen(0), init="reflect")    # free sampling: nothing to mirror
    with pytest.raises(NarError, match="init"):
        prior.sample(1, grid, known=known, keep=keep, generator=gen(0), init="noise")
    with pytest.raises(NarError, match="init"):   # checked even when nothing is left to draw
        prior.sample(1, grid, known=known, keep=torch.ones_like(keep), generator=gen(0), init="noise")
    with pytest.raises(NarError, match="init"):   # and when the config is built
        MaskGITConfig(init="noise")


@pytest.fixture
def token_temperatures(monkeypatch) -> list[float]:
    """The token temperature of every draw maskgit makes (one per sampling step), in order."""
    import nar.priors.maskgit as maskgit_module
    seen, draw = [], maskgit_module.sample_logits

    def spy(logits, temperature, *args):
        seen.append(temperature)
        return draw(logits, temperature, *args)

    monkeypatch.setattr(maskgit_module, "sample_logits", spy)
    return seen


def test_temperature_end_ramps_the_token_temperature_over_the_steps(token_temperatures):
    seen = token_temperatures
    prior = make()
    prior.sample(2, (4, 4), steps=5, temperature=0.8, temperature_end=1.2, generator=gen(0))
    # linear from 0.8 at the first step to 1.2 at the last: the option is absolute, as sundae's
    assert seen == pytest.approx([0.8, 0.9, 1.0, 1.1, 1.2])
    seen.clear()
    plain = prior.sample(2, (4, 4), steps=5, generator=gen(1))
    assert seen == [1.0] * 5  # the default config: constant
    # an end of 1 is the constant temperature, draw for draw; the config's end is the default
    assert torch.equal(prior.sample(2, (4, 4), steps=5, generator=gen(1), temperature_end=1.0).tokens, plain.tokens)
    seen.clear()
    make(temperature_end=2.0).sample(1, (4, 4), steps=3, generator=gen(0))
    assert seen == pytest.approx([1.0, 1.5, 2.0])
    seen.clear()   # the config's end is a multiple of the start, as sundae's config states it
    make(temperature_end=2.0).sample(1, (4, 4), steps=3, temperature=0.5, generator=gen(0))
    assert seen == pytest.approx([0.5, 0.75, 1.0])
    with pytest.raises(NarError, match="temperature_end"):
        prior.sample(1, (4, 4), generator=gen(0), temperature_end=-1)


def test_a_fill_keeps_its_temperature_where_free_draws_cool(token_temperatures):
    """The shipped maskgit cools over its steps (config end 0.75 x the start, session 46); an inpainting
    fill takes its options from `inpaint_options` with the fill temperature, and draws at that one
    temperature over every step (its refinement rounds included), as it did before the ramp."""
    from nar.sampling import INPAINT_OPTIONS, inpaint_options
    seen = token_temperatures
    prior, grid = make(temperature=0.8, temperature_end=0.75), (6, 6)
    known = torch.randint(0, V, (1, *grid), generator=gen(5))
    keep = torch.ones(1, *grid, dtype=torch.bool)
    keep[:, 1:5, 1:5] = False
    options = inpaint_options("maskgit", temperature=0.7)
    assert options == {**INPAINT_OPTIONS["maskgit"], "temperature_end": 0.7}
    out = prior.sample(1, grid, temperature=0.7, known=known, keep=keep, generator=gen(0), **options)
    assert seen and seen == pytest.approx([0.7] * len(seen)) and torch.equal(out.tokens[keep], known[keep])
    seen.clear()   # the same fill without the constant end cools as free draws do
    prior.sample(1, grid, temperature=0.7, known=known, keep=keep, generator=gen(0), **INPAINT_OPTIONS["maskgit"])
    assert seen[0] == pytest.approx(0.7) and seen[-1] == pytest.approx(0.525)
    # a caller's own end wins; no fill temperature (the prior's default) or another prior: nothing added
    assert inpaint_options("maskgit", {"temperature_end": 0.9}, 0.7)["temperature_end"] == 0.9
    assert "temperature_end" not in inpaint_options("maskgit")
    assert "temperature_end" not in inpaint_options("sundae", temperature=0.7)


def test_halton_order_fixes_the_cells_in_its_sequence(record_guidance):
    from nar.sampling.orders import halton_ranks
    from nar.sampling.schedules import mask_counts
    prior = make(num_classes=2)
    grid, seen = (8, 8), []
    out = prior.sample(2, grid, steps=6, generator=gen(3), cond=torch.tensor([0, 1]), cfg_scale=2.0,
                       order="halton", schedule="arccos", callback=lambda t, total, ids: seen.append(ids.clone()))
    assert (out.tokens < V).all() and out.steps_run == 6
    # the generator's first draw is the per-sample offset of the order
    places = halton_ranks(*grid, 2, gen(3))
    for t, ids in enumerate(seen):
        masked = (ids == prior.mask_id).reshape(2, -1)
        assert masked.sum(dim=1).tolist() == [mask_counts(64, 6, "arccos")[t]] * 2
        # the masked cells are exactly the ones latest in each sample's order
        assert torch.equal(masked, places >= 64 - masked.sum(dim=1, keepdim=True))
    # inpainting: kept tokens stay, and the order runs over the region only
    known = torch.randint(0, V, (2, *grid), generator=gen(1))
    keep = torch.zeros(2, *grid, dtype=torch.bool)
    keep[:, :4] = True
    out = prior.sample(2, grid, steps=4, known=known, keep=keep, generator=gen(0), order="halton")
    assert torch.equal(out.tokens[keep], known[keep]) and out.steps_run == 4
    with pytest.raises(NarError, match="order"):
        prior.sample(1, grid, generator=gen(0), order="spiral")
    with pytest.raises(NarError, match="order"):
        prior.sample(2, grid, known=known, keep=keep, generator=gen(0), order="halton", outside_in=1.0)
    with pytest.raises(NarError, match="order"):
        make(order="spiral")


def test_a_config_temperature_is_the_default_a_caller_can_override():
    """maskgit's config carries the token temperature it samples at when the caller gives none (set
    by `ship_models.py --sampling maskgit temperature=...`); an explicit one wins."""
    cool, plain = make(num_classes=2, temperature=0.6), make(num_classes=2)
    assert cool.resolve_temperature(None) == 0.6 and plain.resolve_temperature(None) == 1.0
    cond = torch.tensor([0, 1, 0])
    by_config = cool.sample(3, (4, 4), steps=4, cond=cond, generator=gen(3)).tokens
    assert torch.equal(by_config, cool.sample(3, (4, 4), steps=4, cond=cond, temperature=0.6, generator=gen(3)).tokens)
    assert torch.equal(cool.sample(3, (4, 4), steps=4, cond=cond, temperature=1.0, generator=gen(3)).tokens,
                       plain.sample(3, (4, 4), steps=4, cond=cond, generator=gen(3)).tokens)
    with pytest.raises(NarError, match="temperature"):
        make(temperature=0.0)
