"""`TrainConfig`: the training schedule every model's recipe carries (the ``[train]`` table).

A plain dataclass in core so that a model's config (e.g. `TokenizerConfig`, whose TOML file
holds the whole recipe) can name it without importing the training loop that reads it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 3e-4
    min_lr_ratio: float = 0.1     # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 500
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0        # 0 disables
    ema_decay: float = 0.0        # 0 disables; the EMA weights are what model.safetensors holds
    log_every: int = 25
    ckpt_every: int = 500
    snapshot_every: int = 1000    # 0 disables sample / reconstruction grids
    seed: int = 0
    device: str = "auto"          # auto | cpu | cuda
    bf16: bool = True             # autocast to bf16 where native: CUDA, CPUs with AVX512-BF16/AMX (else fp32)
