"""Data-parallel training on this CPU: a real 2-process gloo run (torchrun) of a tiny prior and a
tiny tokenizer, checked against 1-process runs with the same global batch.

Tolerances: the AR prior trained unconditionally has no rank-local randomness, so the 2-process
losses equal the 1-process ones up to float reduction order (1e-4). The tokenizer's
discriminator (BatchNorm statistics over each rank's half batch) and adaptive GAN weight
(computed from each rank's own loss, as in any DDP VQGAN) make the steps after disc_start
differ slightly: within 5% per step.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nar.core.checkpoint import load_checkpoint, read_meta
from nar.core.errors import NarError
from nar.data.tokens import write_token_cache

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ddp_worker import CONFIGS, PRIOR, TOKENIZER  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def losses(run: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    write_token_cache(root / "tokens", rng.integers(0, 16, (32, 4, 4)), np.zeros(32, dtype=np.int64),
                      {"codebook_size": 16, "tokenizer_hash": "test"})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(HERE / "ddp_worker.py"), str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root, done.stdout


def test_two_process_prior_matches_one_process_with_the_same_global_batch(ddp_runs, tmp_path):
    from nar.pipelines.train_prior import train_prior
    root, stdout = ddp_runs
    assert "world size 2 (gloo), batch 2 per process, global batch 4" in stdout
    run = root / "ddp_ar"
    # rank 0 alone wrote: one checkpoint, one metrics line per step
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl", "model.safetensors",
                                                    "state.safetensors"]
    assert read_meta(run / "model.safetensors")["world_size"] == 2
    assert read_meta(run / "model.safetensors")["global_batch"] == 4
    single = train_prior("ar", root / "tokens", CONFIGS / "priors" / "ar_tiny.toml",
                         {**PRIOR, "train.batch_size": 4}, out=tmp_path / "one", conditional=False, progress=False)
    assert len(losses(run)) == len(losses(single)) == 4
    np.testing.assert_allclose(losses(run), losses(single), atol=1e-4)


def test_interrupted_two_process_run_resumes_bit_exactly(ddp_runs):
    root, _ = ddp_runs
    full, _ = load_checkpoint(root / "ddp_ar" / "model.safetensors")
    split, _ = load_checkpoint(root / "ddp_ar_split" / "model.safetensors")
    assert full.keys() == split.keys()
    assert all(torch.equal(full[k], split[k]) for k in full)


def test_resume_on_another_world_size_continues(ddp_runs, tmp_path, capsys):
    """A 2-process run resumed by one process (same global batch): allowed, said, recorded."""
    import shutil

    from nar.pipelines.train_prior import train_prior
    root, _ = ddp_runs
    run = tmp_path / "moved"
    shutil.copytree(root / "ddp_ar", run)
    train_prior("ar", root / "tokens", CONFIGS / "priors" / "ar_tiny.toml",
                {**PRIOR, "train.batch_size": 4, "train.steps": 6}, out=run, conditional=False, progress=False)
    meta = read_meta(run / "model.safetensors")
    assert meta["step"] == 6 and meta["world_size"] == 1
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


def test_two_process_tokenizer_with_discriminator_and_ema(ddp_runs, tmp_path):
    from nar.core.config import load_config
    from nar.tokenizer.config import TokenizerConfig
    from nar.train.tokenizer_task import TokenizerTask
    from nar.train.loop import Trainer
    root, _ = ddp_runs
    ranks = json.loads((root / "ranks.json").read_text())
    assert ranks[0] == ranks[1]          # generator, discriminator and EMA identical on both ranks
    run = root / "ddp_tok"
    assert (run / "model.safetensors").exists() and read_meta(run / "state.safetensors")["world_size"] == 2
    cfg = load_config(TokenizerConfig, CONFIGS / "tokenizer" / "tiny.toml", {**TOKENIZER, "train.batch_size": 4})
    Trainer(TokenizerTask(cfg, build_perceptual=False), cfg.train, tmp_path / "one", progress=False).run()
    two, one = losses(run), losses(tmp_path / "one")
    assert "d_loss" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    np.testing.assert_allclose(two[:2], one[:2], rtol=1e-4)     # before the discriminator starts
    np.testing.assert_allclose(two, one, rtol=0.05)


def test_two_process_encoding_writes_a_sharded_cache_equal_to_one_process(ddp_runs, tmp_path):
    from nar.data.tokens import TokenCache
    from nar.pipelines.tokenizer_jobs import encode_to_cache
    root, _ = ddp_runs
    assert sorted(p.name for p in (root / "ddp_tokens").iterdir()) == ["index.json", "rank-00000", "rank-00001"]
    sharded = TokenCache.open(root / "ddp_tokens")
    single = TokenCache.open(encode_to_cache(root / "ddp_tok" / "model.safetensors", tmp_path / "tokens", n=6,
                                             size=32, batch_size=2, device="cpu", progress=False))
    assert sharded.header["shards"] == 2 and len(sharded) == 6
    np.testing.assert_array_equal(np.asarray(sharded.tokens), np.asarray(single.tokens))
    np.testing.assert_array_equal(sharded.labels, single.labels)


def test_only_data_parallel_commands_run_under_torchrun(monkeypatch):
    from nar.train import distributed
    monkeypatch.setenv("WORLD_SIZE", "2")
    distributed.check_command(["train", "--prior", "ar"])
    distributed.check_command(["tokenizer", "encode", "--out", "x"])
    with pytest.raises(NarError, match="does not run under torchrun"):
        distributed.check_command(["sample", "--n", "2"])
    assert distributed.rank_range(10, 1, 3) == (3, 6) and distributed.part(8, 1, 2) == slice(4, 8)
