"""Fixtures shared by the prior tests."""
import pytest


@pytest.fixture
def record_guidance():
    """``record_guidance(prior)`` wraps the prior's ``guided`` and returns the list that collects the
    guidance scale of every call (one per sampling step)."""
    def install(prior) -> list[float]:
        original, scales = prior.guided, []

        def spy(forward, class_ids, cfg_scale, *inputs):
            scales.append(cfg_scale)
            return original(forward, class_ids, cfg_scale, *inputs)

        prior.guided = spy
        return scales
    return install


@pytest.fixture
def train_steps():
    """``train_steps(prior, tokens, cond, steps, lr)`` trains the prior in place (AdamW, no weight
    decay) and returns (the first step's loss, the last step's loss parts), the prior back in eval."""
    import torch

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
