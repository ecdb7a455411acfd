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
