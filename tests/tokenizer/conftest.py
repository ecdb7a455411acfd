"""Fixtures for the tokenizer tests (tests/conftest.py already pins torch to one thread)."""
from pathlib import Path

import pytest

from tok_helpers import TINY


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory) -> Path:
    """A tiny tokenizer trained for 40 steps (discriminator on from step 30); its checkpoint.
    fp32: under bf16 autocast 40 steps land elsewhere on each CPU's bf16 kernels (AVX512-BF16 vs
    AMX), and the re-encoding agreement fell from ~0.3 to chance on an AMX Xeon."""
    from nar.pipelines.tokenizer_jobs import train_tokenizer
    out = tmp_path_factory.mktemp("tok") / "run"
    return train_tokenizer(TINY, {"train.steps": 40, "disc_start": 30, "train.ckpt_every": 40, "train.bf16": False,
                                  "train.log_every": 1}, out=out, progress=False)
