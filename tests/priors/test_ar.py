"""The `ar` prior: causal GPT over raster tokens, KV-cached sampling, sliding window, inpainting."""
import numpy as np
import pytest
import torch

from nar.core.checkpoint import save_checkpoint
from nar.core.errors import NarError
from nar.data.tokens import TokenCache, write_token_cache
from nar.priors import PRIORS, build_prior, load_prior
from nar.priors.ar import ARConfig, ARPrior
from nar.train.loop import TrainConfig, Trainer, train
from nar.train.prior_task import PriorTask

V = 16


def tiny(num_classes=0, grid=(4, 4), codebook=V, seed=0, **cfg):
    torch.manual_seed(seed)
    # fp32: the tests below compare the cached and uncached paths token for token ("auto" would
    # sample in bf16 on CPUs with native bf16, where the two paths round differently)
    base = dict(dim=32, depth=2, heads=2, dim_head=16, ff_mult=2, sample_precision="fp32")
    base.update(cfg)
    return ARPrior(ARConfig(**base), codebook, num_classes, grid).eval()


def gen(seed):
    return torch.Generator().manual_seed(seed)


def overfit(prior, tokens, cond, steps, lr=3e-3):
    opt = torch.optim.Adam(prior.parameters(), lr=lr)
    prior.train()
    for _ in range(steps):
        parts = prior.loss(tokens, cond)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
    return prior.eval(), parts


# ---- registry and construction -------------------------------------------------------------
def test_registry_and_build():
    assert PRIORS.get("ar") is ARPrior and ARPrior.name == "ar" and ARPrior.config_cls is ARConfig
    with pytest.raises(NarError, match="unknown prior 'gpt'.*registered:.*ar"):
        PRIORS.get("gpt")
    p = build_prior("ar", overrides={"dim": 32, "depth": 1, "heads": 2, "dim_head": 16},
                    codebook_size=V, num_classes=3, train_grid=(4, 6))
    assert isinstance(p, ARPrior) and p.cfg.dim == 32 and p.train_grid == (4, 6)
    assert p.cls_emb.num_embeddings == 4 and p.null_class == 3  # num_classes + 1 rows, last = null
    with pytest.raises(NarError, match="first_token"):
        tiny(first_token="zero")
    with pytest.raises(NarError, match="pos"):
        tiny(pos="sinusoidal")
    with pytest.raises(NarError, match="sample_precision"):
        tiny(sample_precision="fp8")


def test_loss_parts_and_grid_check():
    p = tiny()
    parts = p.loss(torch.randint(V, (3, 4, 4)))
    assert set(parts) == {"loss", "acc"} and parts["loss"].ndim == 0 and 0 <= parts["acc"] <= 1
    assert abs(float(parts["loss"].detach()) - np.log(V)) < 1.0  # untrained: near uniform
    with pytest.raises(NarError, match="larger than the training grid"):
        p.loss(torch.randint(V, (1, 5, 4)))


# ---- causality and the KV cache ------------------------------------------------------------
def test_causal_mask_is_causal():
    p = tiny(num_classes=2)
    tokens = torch.randint(V, (2, 4, 4), generator=gen(0))
    ids = torch.tensor([0, 1])
    base = p(tokens, ids)
    for j in (0, 5, 14):
        changed = tokens.clone().view(2, -1)
        changed[:, j] = (changed[:, j] + 1) % V
        out = p(changed.view(2, 4, 4), ids)
        # logits at k predict token k from tokens < k: positions <= j must not move
        assert torch.allclose(out[:, :j + 1], base[:, :j + 1], atol=1e-5)
        assert not torch.allclose(out[:, j + 1:], base[:, j + 1:], atol=1e-3)


def test_cache_is_incremental_and_matches_full_forward(monkeypatch):
    from nar.nn.kv_cache import CachedDecoder
    p = tiny()
    lengths, fed = [], CachedDecoder.forward

    def watch(self, x, cache, full=False):
        lengths.append((x.shape[1], cache.filled, cache.length))
        return fed(self, x, cache, full)

    monkeypatch.setattr(CachedDecoder, "forward", watch)
    out = p.sample(2, (4, 4), temperature=0, generator=gen(0))
    monkeypatch.undo()
    # one position per token, written in place into one cache preallocated at full length
    assert lengths == [(1, k, 16) for k in range(16)] and out.forward_passes == 16 and out.steps_run == 16
    # greedy tokens fed back through a full teacher-forced pass give the same argmax everywhere
    full = p(out.tokens, p.class_ids(None, 2))
    assert torch.equal(full.argmax(-1), out.tokens.view(2, -1))

    lengths.clear()
    hook = p.layers.register_forward_hook(lambda mod, args, kw_out: lengths.append(args[0].shape[1]))
    p.sample(1, (4, 4), generator=gen(0), use_cache=False)
    hook.remove()
    assert lengths == list(range(1, 17))  # the uncached path re-runs the whole prefix


@pytest.mark.parametrize("kwargs", [
    dict(temperature=0),
    dict(temperature=1.0),
    dict(temperature=0.8, top_k=5),
    dict(temperature=1.2, top_p=0.7),
    dict(temperature=1.0, top_k=8, top_p=0.9, cfg_scale=3.0, cond=torch.tensor([0, 1, 2])),
])
def test_cached_sampling_equals_uncached(kwargs):
    p = tiny(num_classes=3, seed=1)
    a = p.sample(3, (4, 4), generator=gen(7), **kwargs)
    b = p.sample(3, (4, 4), generator=gen(7), use_cache=False, **kwargs)
    c = p.sample(3, (4, 4), generator=gen(7), **kwargs)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.tokens, c.tokens)
    assert a.tokens.shape == (3, 4, 4) and a.tokens.dtype == torch.long
    if kwargs.get("temperature", 1.0) > 0:  # a different seed gives different tokens
        assert not torch.equal(a.tokens, p.sample(3, (4, 4), generator=gen(8), **kwargs).tokens)


def test_cfg_changes_samples_and_unconditional_ignores_scale():
    p = tiny(num_classes=3, seed=2)
    cond = torch.tensor([1, 1])
    plain = p.sample(2, (4, 4), temperature=0, cond=cond, generator=gen(0)).tokens
    guided = p.sample(2, (4, 4), temperature=0, cond=cond, cfg_scale=4.0, generator=gen(0)).tokens
    assert not torch.equal(plain, guided)
    u1 = p.sample(2, (4, 4), temperature=0, generator=gen(0)).tokens
    u2 = p.sample(2, (4, 4), temperature=0, cfg_scale=4.0, generator=gen(0)).tokens
    assert torch.equal(u1, u2)  # nothing to guide without a condition
    with pytest.raises(NarError, match="class id out of range"):
        p.sample(2, (4, 4), cond=torch.tensor([0, 7]))
    with pytest.raises(NarError, match="unknown sampling option"):
        p.sample(1, (4, 4), steps=3, choice_temperature=1.0)
    with pytest.raises(NarError, match="top_p"):
        p.sample(1, (4, 4), top_p=1.5)


# ---- learning ------------------------------------------------------------------------------
def test_overfits_class_conditional_grids_and_inpaints_them():
    data = torch.randint(V, (4, 4, 4), generator=gen(3))
    cond = torch.arange(4)
    p, parts = overfit(tiny(num_classes=4, dim=64, heads=4, cond_drop_prob=0.0), data, cond, steps=120)
    assert parts["loss"] < 0.05 and parts["acc"] == 1.0
    out = p.sample(4, (4, 4), temperature=0, cond=cond, generator=gen(0))
    assert torch.equal(out.tokens, data)
    # inpainting with the true context: the hidden cells come back as the training grid,
    # which only works when the known cells are really fed into the cache
    keep = torch.rand(4, 4, 4, generator=gen(5)) < 0.5
    known = torch.where(keep, data, torch.zeros_like(data))
    for use_cache in (True, False):
        filled = p.sample(4, (4, 4), temperature=0, cond=cond, known=known, keep=keep, generator=gen(0),
                          use_cache=use_cache)
        assert torch.equal(filled.tokens, data)


def test_random_first_token_and_sliding_window_continue_a_pattern():
    # two checkerboards over a 2-code book: the random first token picks the phase, the model
    # continues it, and Taming's sliding window carries it over a grid larger than training
    ii, jj = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    board = (ii + jj) % 2
    data = torch.stack([board, 1 - board])
    p, parts = overfit(tiny(codebook=2, dim=32, first_token="random"), data, None, steps=80, lr=5e-3)
    assert parts["acc"] == 1.0
    phases = set()
    for seed in range(6):
        out = p.sample(1, (7, 9), temperature=0, generator=gen(seed))
        t = out.tokens[0]
        assert t.shape == (7, 9) and out.forward_passes == 7 * 9 - 1  # t_0 costs no forward
        big_i, big_j = torch.meshgrid(torch.arange(7), torch.arange(9), indexing="ij")
        expected = (big_i + big_j + t[0, 0]) % 2
        assert torch.equal(t, expected)
        phases.add(int(t[0, 0]))
    assert phases == {0, 1}  # the first token really is random


def test_sliding_window_on_larger_grid():
    p = tiny(num_classes=2, seed=4)
    kw = dict(temperature=1.0, top_k=6, cond=torch.tensor([0, 1]), cfg_scale=2.0)
    a = p.sample(2, (7, 10), generator=gen(1), **kw)
    b = p.sample(2, (7, 10), generator=gen(1), use_cache=False, **kw)
    assert a.tokens.shape == (2, 7, 10) and a.steps_run == 70 and a.forward_passes == 70
    assert a.tokens.min() >= 0 and a.tokens.max() < V
    assert torch.equal(a.tokens, b.tokens)  # the per-window caches are exact
    # wider only / taller only grids use windows of the grid's own extent on the other axis
    assert p.sample(1, (3, 9), generator=gen(0)).tokens.shape == (1, 3, 9)
    assert p.sample(1, (9, 2), generator=gen(0)).tokens.shape == (1, 9, 2)


# ---- inpainting ----------------------------------------------------------------------------
def test_inpainting_never_changes_kept_tokens():
    p = tiny(num_classes=2, seed=5)
    for seed, grid in [(0, (4, 4)), (1, (4, 4)), (2, (6, 5))]:
        g = gen(100 + seed)
        known = torch.randint(V, (3, *grid), generator=g)
        keep = torch.rand(3, *grid, generator=g) < 0.6
        kw = dict(known=known, keep=keep, temperature=1.5, cond=torch.tensor([0, 1, 0]), cfg_scale=1.5)
        a = p.sample(3, grid, generator=gen(seed), **kw)
        b = p.sample(3, grid, generator=gen(seed), use_cache=False, **kw)
        assert torch.equal(a.tokens[keep], known[keep])
        assert torch.equal(a.tokens, b.tokens)
        assert a.tokens.min() >= 0 and a.tokens.max() < V
    # every cell kept: nothing to compute; a 2D mask broadcasts over the batch
    known = torch.randint(V, (2, 4, 4), generator=gen(9))
    out = p.sample(2, (4, 4), known=known, keep=torch.ones(2, 4, 4, dtype=torch.bool))
    assert torch.equal(out.tokens, known) and out.forward_passes == 0
    keep2d = torch.zeros(4, 4, dtype=torch.bool)
    keep2d[:2] = True  # top half kept: it is fed as one chunk, only the bottom half is sampled
    out = p.sample(2, (4, 4), known=known, keep=keep2d, generator=gen(0))
    assert torch.equal(out.tokens[:, :2], known[:, :2]) and out.forward_passes == 8
    with pytest.raises(NarError, match="both known tokens and a keep mask"):
        p.sample(2, (4, 4), known=known)
    with pytest.raises(NarError, match="do not match"):
        p.sample(2, (4, 5), known=known, keep=keep2d)


# ---- checkpoints and training --------------------------------------------------------------
def test_save_load_roundtrip_and_mismatch(tmp_path):
    p = tiny(num_classes=3, seed=6, codebook_init=True)  # code_dim 0: taken from the codebook
    assert p.init_from_codebook(torch.randn(V, 8)) and p.cfg.code_dim == 8
    path = save_checkpoint(tmp_path / "ar.safetensors", p.state_dict(), p.meta())
    q = load_prior(path)
    assert isinstance(q, ARPrior) and q.cfg == p.cfg and q.train_grid == (4, 4)
    tokens = torch.randint(V, (2, 4, 4), generator=gen(0))
    ids = torch.tensor([0, 3])
    assert torch.equal(p(tokens, ids), q(tokens, ids))
    assert torch.equal(p.sample(2, (4, 4), generator=gen(1)).tokens, q.sample(2, (4, 4), generator=gen(1)).tokens)
    with pytest.raises(NarError, match="not 'maskgit'"):
        load_prior(path, name="maskgit")
    with pytest.raises(NarError, match="code_dim"):
        q.init_from_codebook(torch.randn(V, 4))
    assert not tiny().init_from_codebook(torch.randn(V, 8))  # codebook_init off: not used


def test_resume_equals_uninterrupted_training(tmp_path):
    rng = np.random.default_rng(0)
    write_token_cache(tmp_path / "tokens", rng.integers(0, V, size=(12, 4, 4)), np.arange(12) % 2,
                      {"codebook_size": V, "tokenizer_hash": "t0", "class_names": ["a", "b"]})
    cache = TokenCache.open(tmp_path / "tokens")
    cfg = TrainConfig(steps=6, batch_size=4, lr=3e-3, warmup_steps=2, log_every=1, ckpt_every=100,
                      snapshot_every=0, device="cpu")

    def task():
        return PriorTask(tiny(num_classes=2, seed=11, dropout=0.1), cache, cfg.batch_size)

    full = task()
    train(full, cfg, tmp_path / "full", progress=False)
    Trainer(task(), cfg, tmp_path / "split", progress=False).run(until=3)  # interrupted after 3 steps
    resumed = task()
    train(resumed, cfg, tmp_path / "split", progress=False)
    start = tiny(num_classes=2, seed=11)
    assert not torch.equal(start.head.weight, full.model.head.weight)  # it did train
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    q = load_prior(tmp_path / "split" / "model.safetensors", name="ar", tokenizer_hash="t0")
    assert q.meta_info["step"] == 6 and q.meta_info["class_names"] == ["a", "b"]


# ---- the static-shape decode step (the compiled path, run eagerly here) ----------------------
@pytest.mark.parametrize("kwargs", [
    dict(temperature=0),
    dict(temperature=1.0, top_k=8, top_p=0.9, cfg_scale=3.0, cond=torch.tensor([0, 1, 2])),
])
def test_static_step_path_equals_uncached(monkeypatch, kwargs):
    # torch.compile(fn) -> fn: the same static-shape step (index_copy_ into the cache, masked
    # attention over its whole length) that compile=True traces, without the compile time
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    p = tiny(num_classes=3, seed=1)
    assert p.implementation((4, 4), compile=True) == "static KV cache, compiled, fp32"
    assert p.implementation((8, 8), compile=True) == "static KV cache per sliding window, eager, fp32"
    assert p.implementation((4, 4)) == "static KV cache, eager, fp32"  # CPU default: not compiled
    a = p.sample(3, (4, 4), generator=gen(7), compile=True, **kwargs)
    b = p.sample(3, (4, 4), generator=gen(7), use_cache=False, **kwargs)
    assert torch.equal(a.tokens, b.tokens)
    known = torch.randint(V, (3, 4, 4), generator=gen(2))
    keep = torch.rand(3, 4, 4, generator=gen(3)) < 0.5
    a = p.sample(3, (4, 4), generator=gen(7), compile=True, known=known, keep=keep, **kwargs)
    b = p.sample(3, (4, 4), generator=gen(7), use_cache=False, known=known, keep=keep, **kwargs)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.tokens[keep], known[keep])


def test_fast_decoder_follows_the_weights():
    p = tiny(seed=3)
    before = p.sample(2, (4, 4), temperature=0).tokens
    fast = p.__dict__["_fast"]
    assert p.sample(2, (4, 4), temperature=0).tokens.equal(before) and p.__dict__["_fast"] is fast  # reused
    assert not any("_fast" in k for k in p.state_dict())  # derived state, never saved
    with torch.no_grad():
        p.head.bias.add_(torch.randn(V) * 10)  # an in-place update (optimizer step, load) rebuilds it
    after = p.sample(2, (4, 4), temperature=0)
    assert p.__dict__["_fast"] is not fast
    assert torch.equal(after.tokens, p.sample(2, (4, 4), temperature=0, use_cache=False).tokens)
    import copy
    q = copy.deepcopy(p)  # derived state is not copied: the copy builds its own on first use
    assert q.__dict__["_fast"] is None and torch.equal(q.sample(2, (4, 4), temperature=0).tokens, after.tokens)


def test_sampling_precision_argument():
    p = tiny()
    assert not p.samples_in_bf16() and p.samples_in_bf16("bf16")  # tiny() pins fp32; the argument wins
    assert not tiny(sample_precision="auto").samples_in_bf16()   # auto on a CPU: fp32 (latency-bound steps)
    assert p.implementation((4, 4), precision="bf16").endswith("bf16")
    out = p.sample(2, (4, 4), generator=gen(0), precision="bf16")  # the bf16 static-cache path runs
    assert out.tokens.shape == (2, 4, 4) and out.tokens.dtype == torch.long
    assert int(out.tokens.min()) >= 0 and int(out.tokens.max()) < V
    with pytest.raises(NarError, match="precision must be one of"):
        p.sample(1, (4, 4), generator=gen(0), precision="fp16")


# ---- absolute rows (grid_rows): windows cut from a taller grid know how high they sit ----------

def test_a_window_reads_the_rows_of_its_origin():
    """A window at row r of the grid is embedded exactly as a window-sized model whose row table
    is rows r … r+wh-1 of the whole grid's table."""
    whole = tiny(num_classes=2, grid=(3, 5), grid_rows=8, seed=1)
    x, ids = torch.randint(V, (3, 3, 5)), torch.tensor([0, 1, 2])
    origin = torch.tensor([0, 2, 5])
    logits = whole(x, ids, row_origin=origin)
    for b, r in enumerate(origin.tolist()):
        window = tiny(num_classes=2, grid=(3, 5), seed=1)
        state = whole.state_dict()
        state["row_emb.weight"] = state["row_emb.weight"][r:r + 3]
        window.load_state_dict(state)
        assert torch.allclose(logits[b], window(x[b:b + 1], ids[b:b + 1])[0], atol=1e-5)
    with pytest.raises(NarError, match="runs past the 8 rows"):
        whole(x, ids, row_origin=torch.tensor([0, 0, 6]))


def test_row_shift_maps_windows_to_the_same_relative_height():
    p = tiny(grid=(3, 5), grid_rows=8)
    assert [p.row_shift(r, 8) for r in range(6)] == list(range(6))  # the training grid: identity
    assert p.row_shift(0, 14) == 0 and p.row_shift(11, 14) == 5 and p.row_shift(6, 14) == 3  # taller
    assert p.row_shift(0, 3) == 0  # a grid no taller than the window
    assert tiny(grid=(3, 5)).row_shift(4, 8) == 0  # without absolute rows: the window's own rows


@pytest.mark.parametrize("grid", [(8, 5), (8, 9), (13, 7)])
def test_cached_sliding_window_equals_uncached_with_absolute_rows(grid):
    p = tiny(num_classes=2, grid=(3, 5), grid_rows=8, seed=3)
    kw = dict(temperature=1.0, cond=torch.tensor([0, 1]), cfg_scale=2.0)
    a = p.sample(2, grid, generator=gen(2), **kw)
    b = p.sample(2, grid, generator=gen(2), use_cache=False, **kw)
    assert a.tokens.shape == (2, *grid) and torch.equal(a.tokens, b.tokens)


def test_absolute_rows_learn_what_sits_where():
    """Grids of 8 rows: 'sky' (code 1) over 'ground' (code 2), learned from 2-row windows. Only
    the model that knows each window's row can draw sky over ground; one that sees window rows
    cannot tell a window of sky at the top from one of ground at the bottom."""
    grid = torch.full((8, 4), 1)
    grid[4:] = 2
    tokens = grid.expand(16, 8, 4)

    def trained(**cfg):
        p = tiny(grid=(2, 4), seed=0, **cfg).train()
        opt = torch.optim.Adam(p.parameters(), lr=3e-3)
        g = gen(0)
        for _ in range(150):
            top = torch.randint(7, (16,), generator=g)
            windows = torch.stack([t[r:r + 2] for t, r in zip(tokens, top.tolist())])
            loss = p.loss(windows, row_origin=top)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        return p.eval()

    drawn = trained(grid_rows=8).sample(2, (8, 4), temperature=0, generator=gen(0)).tokens
    assert torch.equal(drawn, tokens[:2])
    blind = trained().sample(2, (8, 4), temperature=0, generator=gen(0)).tokens
    assert not torch.equal(blind, tokens[:2])


def test_adopting_a_parent_stretches_its_row_table():
    parent = tiny(grid=(3, 5), seed=2)
    meta = {"name": "ar", "config": {"grid_rows": 0}, "train_grid": [3, 5]}
    child = tiny(grid=(3, 5), grid_rows=9, seed=4)
    assert child.adopts(meta) and not child.adopts({**meta, "config": {"grid_rows": 9}})
    child.adopt_weights(parent.state_dict(), meta)
    rows, old = child.row_emb.weight, parent.row_emb.weight
    assert rows.shape == (9, 32)
    assert torch.allclose(rows[0], old[0]) and torch.allclose(rows[4], old[1]) and torch.allclose(rows[8], old[2])
    assert torch.allclose(rows[2], (old[0] + old[1]) / 2, atol=1e-6)
    assert torch.equal(child.head.weight, parent.head.weight)  # everything else copied
    with pytest.raises(NarError, match="only from another ar"):
        child.adopt_weights(parent.state_dict(), {**meta, "name": "sundae"})



def test_adopting_a_parent_of_a_larger_grid_stretches_both_tables():
    """A child on half the grid (512² images after a 1024² parent): rows and columns both
    shrink by stretching, so column j of the child starts from the parent's column at the same
    fraction of the width."""
    parent = tiny(grid=(5, 5), seed=2)
    meta = {"name": "ar", "config": {"grid_rows": 0}, "train_grid": [5, 5]}
    child = tiny(grid=(3, 3), seed=4)
    assert child.adopts(meta) and not child.adopts({**meta, "train_grid": [3, 3]})
    child.adopt_weights(parent.state_dict(), meta)
    for new, old in ((child.row_emb.weight, parent.row_emb.weight), (child.col_emb.weight, parent.col_emb.weight)):
        assert new.shape == (3, 32)
        assert torch.allclose(new[0], old[0]) and torch.allclose(new[1], old[2]) and torch.allclose(new[2], old[4])
    assert torch.equal(child.head.weight, parent.head.weight)

def test_bad_grid_rows_are_refused():
    with pytest.raises(NarError, match="grid_rows = 2 needs 2d positions and at least"):
        tiny(grid=(3, 5), grid_rows=2)
    with pytest.raises(NarError, match="needs 2d positions"):
        tiny(grid=(3, 5), grid_rows=8, pos="rotary")


def test_a_config_top_p_is_the_default_a_caller_can_override_or_turn_off():
    """ar's config carries the nucleus filter it samples with when the caller gives none (the
    shipped ar's, set by `ship_models.py --sampling ar top_p=...`); top_p=1 turns it off."""
    filtered, plain = tiny(num_classes=2, top_p=0.3), tiny(num_classes=2)
    assert filtered.resolve_top_p(None) == 0.3 and filtered.resolve_top_p(1.0) == 1.0
    cond = torch.tensor([0, 1, 0, 1])
    by_config = filtered.sample(4, cond=cond, generator=gen(3)).tokens
    assert torch.equal(by_config, filtered.sample(4, cond=cond, top_p=0.3, generator=gen(3)).tokens)
    assert torch.equal(filtered.sample(4, cond=cond, top_p=1.0, generator=gen(3)).tokens,
                       plain.sample(4, cond=cond, generator=gen(3)).tokens)    # the same weights, filter off
    assert not torch.equal(by_config, plain.sample(4, cond=cond, generator=gen(3)).tokens)
    for bad in (0.0, 1.5):
        with pytest.raises(NarError, match="top_p"):
            tiny(top_p=bad)


def test_a_config_temperature_is_the_default_a_caller_can_override():
    """ar's config carries the temperature it samples at when the caller gives none (set by
    `ship_models.py --sampling ar temperature=...`); an explicit one wins, 0 stays greedy."""
    warm, plain = tiny(num_classes=2, temperature=1.7), tiny(num_classes=2)
    assert warm.resolve_temperature(None) == 1.7 and warm.resolve_temperature(0.0) == 0.0
    assert plain.resolve_temperature(None) == 1.0
    cond = torch.tensor([0, 1, 0, 1])
    by_config = warm.sample(4, cond=cond, generator=gen(3)).tokens
    assert torch.equal(by_config, warm.sample(4, cond=cond, temperature=1.7, generator=gen(3)).tokens)
    assert torch.equal(warm.sample(4, cond=cond, temperature=1.0, generator=gen(3)).tokens,
                       plain.sample(4, cond=cond, generator=gen(3)).tokens)    # the same weights at 1
    assert not torch.equal(by_config, plain.sample(4, cond=cond, generator=gen(3)).tokens)
    for bad in (0.0, -1.0):
        with pytest.raises(NarError, match="temperature"):
            tiny(temperature=bad)


def test_a_guidance_schedule_scales_cfg_along_the_raster_scan():
    """``cfg_schedule="linear"`` guides cell k of N with 1 + (cfg - 1) k / (N - 1): the first cell is
    the conditional model's own draw, the last gets the whole scale; "constant" is plain CFG."""
    prior = tiny(num_classes=2)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in prior.parameters():   # a model whose class matters, so guidance changes draws
            p.add_(0.5 * torch.randn_like(p))
    cond = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    constant = prior.sample(8, cond=cond, cfg_scale=4.0, generator=gen(5)).tokens
    assert torch.equal(constant, prior.sample(8, cond=cond, cfg_scale=4.0, generator=gen(5),
                                              cfg_schedule="constant").tokens)
    linear = prior.sample(8, cond=cond, cfg_scale=4.0, generator=gen(5), cfg_schedule="linear").tokens
    unguided = prior.sample(8, cond=cond, cfg_scale=1.0, generator=gen(5)).tokens
    assert torch.equal(linear[:, 0, 0], unguided[:, 0, 0])      # scale 1 at the first cell
    assert not torch.equal(linear, constant) and not torch.equal(linear, unguided)
    by_config = tiny(num_classes=2, cfg_schedule="linear")
    by_config.load_state_dict(prior.state_dict())
    assert torch.equal(by_config.sample(8, cond=cond, cfg_scale=4.0, generator=gen(5)).tokens, linear)
    with pytest.raises(NarError, match="guidance schedule"):
        tiny(cfg_schedule="rising")
    with pytest.raises(NarError, match="guidance schedule"):
        prior.sample(2, cond=cond[:2], cfg_scale=2.0, cfg_schedule="rising")


def test_noisy_context_swaps_inputs_only_in_training_and_scores_the_clean_targets(monkeypatch):
    p = tiny(num_classes=2, grid=(8, 8), input_noise=0.5, cond_drop_prob=0.0)
    tokens = torch.randint(V, (64, 8, 8), generator=gen(1))
    ids = torch.zeros(64, dtype=torch.long)
    fed = []
    forward = ARPrior.forward
    monkeypatch.setattr(ARPrior, "forward", lambda self, x, *a: fed.append(x) or forward(self, x, *a))
    torch.manual_seed(0)
    parts = p.train().loss(tokens, ids)
    noisy = fed[0]
    assert noisy.shape == tokens.shape
    assert 0.1 < (noisy != tokens).float().mean().item() < 0.25   # rate ~ U(0, 0.5); 1/16 of swaps redraw the code
    logits = forward(p, noisy, ids).reshape(-1, V)
    assert torch.allclose(parts["loss"], torch.nn.functional.cross_entropy(logits, tokens.reshape(-1)))
    assert not torch.allclose(parts["loss"], torch.nn.functional.cross_entropy(logits, noisy.reshape(-1)))
    p.eval().loss(tokens, ids)
    assert torch.equal(fed[-1], tokens)   # evaluation sees the real context
    with pytest.raises(NarError, match="input_noise"):
        ARConfig(input_noise=1.0)


def test_posterior_guidance_runs_one_branch_per_class_cached_as_uncached():
    """``guidance="posterior"``: the same draws with and without the KV cache, different from null-branch
    CFG, the conditional's own at scale 1; inpainting keeps its kept cells (and the null branch)."""
    prior = tiny(num_classes=3, seed=4)
    torch.manual_seed(2)
    with torch.no_grad():
        for p in prior.parameters():   # a model whose class matters
            p.add_(0.5 * torch.randn_like(p))
    cond = torch.tensor([0, 1, 2, 1])
    post = prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5), guidance="posterior")
    assert post.tokens.shape == (4, 4, 4) and post.forward_passes == 16
    uncached = prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5), guidance="posterior", use_cache=False)
    assert torch.equal(post.tokens, uncached.tokens)
    assert not torch.equal(post.tokens, prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5)).tokens)
    unguided = prior.sample(4, cond=cond, cfg_scale=1.0, generator=gen(5)).tokens
    assert torch.equal(prior.sample(4, cond=cond, cfg_scale=1.0, generator=gen(5), guidance="posterior").tokens,
                       unguided)
    by_config = tiny(num_classes=3, guidance="posterior", guidance_sharpness=0.5)
    by_config.load_state_dict(prior.state_dict())
    soft = prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5), guidance="posterior", guidance_sharpness=0.5)
    assert torch.equal(by_config.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5)).tokens, soft.tokens)
    keep = torch.rand(4, 4, 4, generator=gen(1)) < 0.5
    filled = prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5), guidance="posterior",
                          known=post.tokens, keep=keep).tokens
    assert torch.equal(filled[keep], post.tokens[keep])
    contrast = prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5), guidance="contrast")
    assert not torch.equal(contrast.tokens, post.tokens)
    assert torch.equal(contrast.tokens, prior.sample(4, cond=cond, cfg_scale=3.0, generator=gen(5),
                                                     guidance="contrast", use_cache=False).tokens)
    with pytest.raises(NarError, match="guidance mode"):
        tiny(guidance="marginal")
