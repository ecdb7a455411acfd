"""Shared fixtures: one tiny tokenizer, token cache and one tiny checkpoint per prior,
built once per test session in seconds (real nar commands, tiny configs)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"

# Tiny models on a 2-core CI box: extra intra-op threads only add overhead (and, with other
# processes running, can make tests 10x slower).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_sr(tmp_path_factory):
    """A 2x super-resolution checkpoint of a tiny, untrained-but-not-identity SR net."""
    from nar.core.checkpoint import save_checkpoint
    from nar.core.config import to_dict
    from nar.sr.model import SRModelConfig, SRNet
    torch.manual_seed(0)
    net = SRNet(SRModelConfig(channels=8, blocks=2)).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.05)   # a trained-like tail, not the zero start
    path = tmp_path_factory.mktemp("sr") / "sr.safetensors"
    save_checkpoint(path, net.state_dict(), {"kind": "sr", "name": "srnet", "config": to_dict(net.cfg), "scale": 2})
    return path


@pytest.fixture(scope="session")
def benchmark_script():
    """Import a script of benchmarks/ by name (they are scripts, not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    from nar.pipelines.train_prior import train_prior
    from nar.priors import prior_names
    from nar.pipelines.tokenizer_jobs import encode_to_cache, train_tokenizer

    root = tmp_path_factory.mktemp("tiny_models")
    tok = train_tokenizer(CONFIGS / "tokenizer" / "tiny.toml", {"train.steps": 4}, out=root / "tok",
                          progress=False)
    tokens = encode_to_cache(tok, root / "tokens", n=24, size=32, seed=0, batch_size=8)
    priors = {}
    for name in prior_names():
        run = train_prior(name, tokens, CONFIGS / "priors" / f"{name}_tiny.toml",
                          {"train.steps": 3, "train.batch_size": 4, "train.snapshot_every": 0,
                           "train.warmup_steps": 1, "train.device": "cpu"},
                          out=root / name, progress=False)
        priors[name] = run / "model.safetensors"
    return {"tokenizer": tok, "tokens": tokens, "priors": priors, "root": root}


@pytest.fixture
def train_steps():
    """``train_steps(prior, tokens, cond, steps, lr)`` trains the prior in place (AdamW, no weight
    decay) and returns (the first step's loss, the last step's loss parts), the prior back in eval."""
    def run(prior, tokens, cond, steps: int, lr: float = 3e-3):
        opt = torch.optim.AdamW(prior.parameters(), lr=lr, weight_decay=0.0)
        prior.train()
        first = None
        for _ in range(steps):
            parts = prior.loss(tokens, cond)
            first = first if first is not None else parts["loss"].item()
            opt.zero_grad()
            parts["loss"].backward()
            opt.step()
        prior.eval()
        return first, parts
    return run
