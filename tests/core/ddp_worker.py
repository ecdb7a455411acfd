"""Run by tests/core/test_distributed.py under ``torchrun --nproc_per_node 2`` (gloo on CPU):
one launch trains a tiny prior and a tiny tokenizer (with its discriminator and EMA), and an
interrupted-then-resumed prior run, checks that every rank ends with the same weights, and
encodes a few images into a sharded token cache.

    python -m torch.distributed.run --nproc_per_node 2 ... ddp_worker.py ROOT
ROOT holds tokens/ (a token cache); results go to ROOT/ddp_*/ and ROOT/ranks.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# fp32: these runs are compared with one-process runs to 1e-4 (bf16 rounding differs with the batch split)
PRIOR = {"train.bf16": False, "train.steps": 4, "train.batch_size": 2, "train.log_every": 1, "train.snapshot_every": 0,
         "train.warmup_steps": 1, "train.device": "cpu", "train.ema_decay": 0.9}
TOKENIZER = {"train.bf16": False, "train.steps": 5, "train.batch_size": 2, "train.log_every": 1, "train.ckpt_every": 100,
             "train.ema_decay": 0.9, "disc_start": 2, "kmeans_init": False, "threshold_ema_dead_code": 0.0}


def checksum(modules) -> torch.Tensor:
    return torch.stack([sum(p.double().sum() for p in m.state_dict().values() if p.is_floating_point())
                        for m in modules])


def main(root: Path) -> None:
    from nar.core.config import load_config
    from nar.pipelines.train_prior import train_prior
    from nar.tokenizer.config import TokenizerConfig
    from nar.train.tokenizer_task import TokenizerTask
    from nar.train import distributed
    from nar.train.loop import Trainer

    world = distributed.init()
    assert world.size == 2, world
    train_prior("ar", root / "tokens", CONFIGS / "priors" / "ar_tiny.toml", PRIOR, out=root / "ddp_ar",
                conditional=False, progress=False)
    # interrupted after step 2 (as a kill right after that checkpoint would leave it), then resumed
    split = {**PRIOR, "train.ckpt_every": 2}
    from nar.pipelines import train_prior as tp
    cls, model_cfg, train_cfg = tp.load_prior_run_config("ar", CONFIGS / "priors" / "ar_tiny.toml", split)
    from nar.data.tokens import TokenCache
    from nar.train.prior_task import PriorTask
    for until in (2, None):
        torch.manual_seed(train_cfg.seed)
        cache = TokenCache.open(root / "tokens")
        prior = cls(model_cfg, cache.codebook_size, 0, cache.grid)
        Trainer(PriorTask(prior, cache, train_cfg.batch_size), train_cfg, root / "ddp_ar_split",
                progress=False).run(until=until)

    cfg = load_config(TokenizerConfig, CONFIGS / "tokenizer" / "tiny.toml", TOKENIZER)
    task = TokenizerTask(cfg, build_perceptual=False)
    trainer = Trainer(task, cfg.train, root / "ddp_tok", progress=False)
    trainer.run()
    # every rank must hold the same generator, discriminator, EMA weights and codebook
    sums = checksum([trainer.model, trainer.extras["discriminator"], trainer.ema])
    gathered = [torch.zeros_like(sums) for _ in range(world.size)]
    torch.distributed.all_gather(gathered, sums)
    if world.is_main:
        (root / "ranks.json").write_text(json.dumps([g.tolist() for g in gathered]))
    distributed.barrier()
    # distributed encoding: one cache per rank + index.json
    from nar.pipelines.tokenizer_jobs import encode_to_cache
    encode_to_cache(root / "ddp_tok" / "model.safetensors", root / "ddp_tokens", n=6, size=32, batch_size=2,
                    device="cpu", progress=False)


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]))
    finally:
        from nar.train import distributed
        distributed.shutdown()
