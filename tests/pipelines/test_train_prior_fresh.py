"""Fresh renders for prior training (`nar train --fresh`): a fixed stream of grids, a pool that
grows on a schedule, worker processes that make the same tokens, exact resume."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nar.core.errors import NarError
from nar.train.fresh_tokens import FreshTokens, encode_landscapes, join_pools
from nar.data.tokens import TokenCache
from nar.pipelines.train_prior import train_prior
from nar.tokenizer.load import load_tokenizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TRAIN = {"train.steps": 4, "train.batch_size": 2, "train.snapshot_every": 0, "train.warmup_steps": 1,
         "train.device": "cpu", "train.lr": 1e-3, "train.ckpt_every": 100}


def pool(tiny_models, folder, **kw):
    settings = {"size": 32, "seed": 0, "initial": 8, "per_step": 2, "chunk": 4, "workers": 0, **kw}
    return FreshTokens(tiny_models["tokenizer"], folder, **settings)


def test_the_stream_is_the_landscape_dataset_encoded(tiny_models, tmp_path):
    """Grid i is item i of LandscapeDataset(size, seed), as `nar tokenizer encode` makes it."""
    fresh = pool(tiny_models, tmp_path / "f")
    fresh.advance_to(0)
    cache = TokenCache.open(tiny_models["tokens"])          # LandscapeDataset(24, 32, seed=0)
    tokens, labels = fresh.batch(64, torch.Generator().manual_seed(0))
    assert tokens.shape == (64, *cache.grid) and fresh.grid == cache.grid
    made = np.concatenate(fresh._tokens)
    assert len(fresh) == 8 and np.array_equal(made, np.asarray(cache.tokens[:8]))
    assert np.array_equal(fresh.labels, cache.labels[:8])
    assert fresh.header["tokenizer_hash"] == cache.header["tokenizer_hash"] and fresh.labelled


def test_the_pool_grows_on_its_schedule_and_batches_draw_from_the_window(tiny_models, tmp_path):
    fresh = pool(tiny_models, tmp_path / "f", window=4)
    assert [fresh.available(s) for s in (0, 1, 5)] == [8, 10, 18]
    fresh.advance_to(5)
    assert len(fresh) == 20                                   # whole chunks of 4
    newest = {np.asarray(g).tobytes() for g in np.concatenate(fresh._tokens)[14:18]}
    tokens, _ = fresh.batch(32, torch.Generator().manual_seed(1))
    assert {g.numpy().astype(np.concatenate(fresh._tokens).dtype).tobytes() for g in tokens} <= newest
    with pytest.raises(RuntimeError, match="advance_to"):
        pool(tiny_models, tmp_path / "g").batch(2, torch.Generator())


def test_worker_processes_make_the_same_tokens(tiny_models, tmp_path):
    with pool(tiny_models, tmp_path / "w", workers=1) as fresh:
        fresh.advance_to(2)                                   # 12 grids: 3 chunks from the worker
        made = np.concatenate(fresh._tokens[:3])
    expected, _ = encode_landscapes(load_tokenizer(tiny_models["tokenizer"]), 32, 0, 0, 12)
    assert np.array_equal(made, expected)


def test_a_resumed_pool_reads_its_chunks_and_refuses_another_stream(tiny_models, tmp_path):
    first = pool(tiny_models, tmp_path / "f")
    first.advance_to(1)
    again = pool(tiny_models, tmp_path / "f")
    assert len(again) == len(first) == 12
    assert np.array_equal(np.concatenate(again._tokens), np.concatenate(first._tokens))
    with pytest.raises(NarError, match="another stream"):
        pool(tiny_models, tmp_path / "f", chunk=2)
    with pytest.raises(NarError, match="another stream"):
        pool(tiny_models, tmp_path / "f", seed=1)


def test_runs_share_a_pool_folder_and_read_each_others_chunks(tiny_models, tmp_path, monkeypatch):
    import nar.train.fresh_tokens as fresh_tokens
    first = pool(tiny_models, tmp_path / "shared")
    first.advance_to(2)                                       # 12 grids made
    made = []
    real = fresh_tokens.encode_landscapes
    monkeypatch.setattr(fresh_tokens, "encode_landscapes", lambda *a: made.append(a[3]) or real(*a))
    other = pool(tiny_models, tmp_path / "shared", per_step=1, initial=4)   # another schedule
    other.advance_to(11)                                      # 15 grids: 12 read, 3 chunks' worth made
    assert made == [12] and len(other) == 16
    assert np.array_equal(np.concatenate(other._tokens[:3]), np.concatenate(first._tokens))
    first.advance_to(3)                                       # 14 grids: chunk 3 is on disk now
    assert made == [12] and np.array_equal(first._tokens[3], other._tokens[3])


def test_bad_pool_settings_are_refused(tiny_models, tmp_path):
    for bad in ({"initial": 0}, {"chunk": 0}, {"per_step": -1}, {"workers": -1}):
        with pytest.raises(NarError):
            pool(tiny_models, tmp_path / "bad", **bad)


def test_pools_join_into_one_token_cache_in_stream_order(tiny_models, tmp_path):
    """`nar tokenizer join-pools`: the grids of several runs' pools, each once, as a token cache."""
    first, second = pool(tiny_models, tmp_path / "a"), pool(tiny_models, tmp_path / "b", seed=1)
    first.advance_to(0)
    second.advance_to(2)
    cache = TokenCache.open(join_pools([tmp_path / "a", tmp_path / "b"], tmp_path / "joined"))
    assert len(cache) == 8 + 12 and cache.grid == first.grid
    assert np.array_equal(np.asarray(cache.tokens), np.concatenate(first._tokens + second._tokens))
    assert np.array_equal(cache.labels, np.concatenate([first.labels, second.labels]))
    assert cache.header["tokenizer_hash"] == first.header["tokenizer_hash"]
    assert cache.header["source"].endswith("seed 0: items 0-7; fresh procedural landscapes, "
                                           "LandscapeDataset seed 1: items 0-11")
    with pytest.raises(NarError, match="already holds a token cache"):
        join_pools([tmp_path / "a"], tmp_path / "joined")
    with pytest.raises(NarError, match="not a pool of fresh tokens"):
        join_pools([tmp_path / "joined"], tmp_path / "again")
    bigger = FreshTokens(tiny_models["tokenizer"], tmp_path / "c", size=64, initial=4, workers=0)
    bigger.advance_to(0)
    with pytest.raises(NarError, match="differs from .* in grid"):
        join_pools([tmp_path / "a", tmp_path / "c"], tmp_path / "mixed")
    np.savez(tmp_path / "a" / "chunk-000002.npz", tokens=np.zeros((3, 1, 1)), labels=np.zeros(3))
    with pytest.raises(NarError, match="chunk-000002.npz does not match"):
        join_pools([tmp_path / "a"], tmp_path / "bad_chunk")     # checked as a resumed pool checks it


def test_training_on_fresh_renders_resumes_exactly(tiny_models, tmp_path):
    fresh = {"size": 32, "initial": 4, "per_step": 1, "chunk": 2, "workers": 0}
    config = CONFIGS / "priors" / "maskgit_tiny.toml"
    run = train_prior("maskgit", None, config, TRAIN, out=tmp_path / "stop", tokenizer=tiny_models["tokenizer"],
                      progress=False, stop_after=2, fresh=fresh)
    assert len(list((run / "fresh_tokens").glob("chunk-*.npz"))) == 3      # 4 + 1 grids before step 1
    with pytest.raises(NarError, match="other settings"):
        train_prior("maskgit", None, config, TRAIN, out=tmp_path / "stop", tokenizer=tiny_models["tokenizer"],
                    progress=False, fresh={**fresh, "per_step": 2})
    train_prior("maskgit", None, config, TRAIN, out=tmp_path / "stop", tokenizer=tiny_models["tokenizer"],
                progress=False, fresh=fresh)
    whole = train_prior("maskgit", None, config, TRAIN, out=tmp_path / "whole",
                        tokenizer=tiny_models["tokenizer"], progress=False, fresh=fresh)
    a, b = load_file(run / "model.safetensors"), load_file(whole / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)           # stop + resume == one uninterrupted run
    from nar.core.checkpoint import read_meta
    meta = read_meta(whole / "model.safetensors")
    assert meta["num_classes"] == 6 and meta["token_cache"].endswith("fresh_tokens")   # scene-conditional


def test_a_prior_trains_on_a_cache_or_fresh_renders_not_both(tiny_models, tmp_path):
    config = CONFIGS / "priors" / "maskgit_tiny.toml"
    with pytest.raises(NarError, match="one of the two"):
        train_prior("maskgit", tiny_models["tokens"], config, TRAIN, out=tmp_path / "a", progress=False,
                    fresh={"size": 32})
    with pytest.raises(NarError, match="one of the two"):
        train_prior("maskgit", None, config, TRAIN, out=tmp_path / "b", progress=False)


def test_render_workers_exit_when_the_training_process_is_killed(tiny_models, tmp_path):
    """A killed trainer runs no pool shutdown; its render workers must not render on for nobody."""
    script = (
        "import time\n"
        "from nar.train.fresh_tokens import FreshTokens\n"
        f"pool = FreshTokens({str(tiny_models['tokenizer'])!r}, {str(tmp_path / 'f')!r}, size=32, initial=4, "
        "per_step=1, chunk=2, workers=1)\n"
        "pool.advance_to(0)\n"
        "print(*pool._pool._processes, flush=True)\n"
        "time.sleep(120)\n")
    trainer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    workers = [int(pid) for pid in trainer.stdout.readline().split()]
    assert workers
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:      # an exited child of init may linger as a zombie
            return f.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(alive(pid) for pid in workers)
