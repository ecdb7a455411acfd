"""Helpers for the tokenizer tests (a uniquely named module: `conftest` is taken by tests/)."""
from pathlib import Path

from nar.core.config import load_config
from nar.tokenizer.config import TokenizerConfig

TINY = Path(__file__).resolve().parents[2] / "configs" / "tokenizer" / "tiny.toml"


def tiny_config(**overrides) -> TokenizerConfig:
    return load_config(TokenizerConfig, TINY, overrides)
