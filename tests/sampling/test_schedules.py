import math

import pytest

from nar.core.errors import NarError
from nar.sampling.schedules import SCHEDULES, get_schedule, mask_counts, register_schedule, temperature_ramp


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_endpoints_and_monotone(name):
    gamma = get_schedule(name)
    assert gamma(0.0) == pytest.approx(1.0)
    assert gamma(1.0) == pytest.approx(0.0, abs=1e-12)
    values = [gamma(i / 100) for i in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("steps", [8, 12])
def test_cosine_counts_match_formula(steps):
    n = 256
    counts = mask_counts(n, steps, "cosine")
    expected = [math.floor(n * math.cos(math.pi / 2 * (t + 1) / steps)) for t in range(steps)]
    assert counts == expected
    assert len(counts) == steps and counts[-1] == 0
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def _fixed_per_step(n, counts):
    before = [n] + counts[:-1]
    return [b - a for b, a in zip(before, counts)]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("n,steps", [(256, 8), (256, 24), (16, 12), (16, 15), (16, 16), (10, 9), (1, 1), (7, 3)])
def test_every_step_fixes_a_token(name, n, steps):
    counts = mask_counts(n, steps, name)
    assert len(counts) == steps
    assert counts[-1] == 0
    assert all(f >= 1 for f in _fixed_per_step(n, counts))
    assert sum(_fixed_per_step(n, counts)) == n


@pytest.mark.parametrize("n,steps", [(5, 8), (16, 100), (1, 12)])
def test_more_steps_than_tokens_clamps_to_one_per_step(n, steps):
    counts = mask_counts(n, steps)
    assert len(counts) == n  # T clamped to N
    assert counts == list(range(n - 1, -1, -1))


def test_linear_counts():
    assert mask_counts(100, 4, "linear") == [75, 50, 25, 0]


def test_nothing_to_sample():
    assert mask_counts(0, 12) == []


def test_bad_arguments():
    with pytest.raises(NarError, match="unknown mask schedule"):
        mask_counts(16, 4, "nope")
    with pytest.raises(NarError):
        mask_counts(16, 0)


def test_custom_schedule_by_callable_and_registration():
    # a schedule that never reaches 0 on its own is still forced to finish
    assert mask_counts(10, 2, lambda r: 1.0)[-1] == 0
    register_schedule("_test_quartic")(lambda r: 1.0 - r ** 4)
    try:
        assert mask_counts(100, 2, "_test_quartic") == [93, 0]
    finally:
        SCHEDULES.pop("_test_quartic")
    with pytest.raises(ValueError):
        register_schedule("cosine")(lambda r: 1.0 - r)


def test_guidance_schedules():
    from nar.sampling.schedules import guidance_scale
    assert [guidance_scale(3.0, p) for p in (0.0, 0.5, 1.0)] == [3.0, 3.0, 3.0]
    assert [guidance_scale(3.0, p, "linear") for p in (0.0, 0.25, 1.0)] == [1.0, 1.5, 3.0]
    assert guidance_scale(3.0, 1.7, "linear") == 3.0 and guidance_scale(1.0, 0.5, "linear") == 1.0
    assert [guidance_scale(3.0, p, "falling") for p in (0.0, 0.25, 1.0)] == [3.0, 2.5, 1.0]
    # a limited interval: unguided before ``start``, the schedule's own scale from there on
    assert [guidance_scale(3.0, p, start=0.25) for p in (0.0, 0.2, 0.25, 1.0)] == [1.0, 1.0, 3.0, 3.0]
    assert [guidance_scale(3.0, p, "linear", start=0.5) for p in (0.25, 0.5, 1.0)] == [1.0, 2.0, 3.0]
    with pytest.raises(NarError, match="guidance schedule 'cosine'"):
        guidance_scale(2.0, 0.5, "cosine")
    with pytest.raises(NarError, match="guidance schedule 'cosine'"):
        guidance_scale(2.0, 0.1, "cosine", start=0.5)


def test_temperature_ramp_runs_from_the_start_to_an_absolute_end_or_a_multiple_of_the_start():
    assert temperature_ramp(5, 0.8, 1.2) == pytest.approx([0.8, 0.9, 1.0, 1.1, 1.2])
    assert temperature_ramp(3, 0.5, end_multiple=2.0) == pytest.approx([0.5, 0.75, 1.0])
    assert temperature_ramp(3, 0.5, 0.5, end_multiple=2.0) == [0.5, 0.5, 0.5]  # an explicit end wins
    assert temperature_ramp(3, 0.7) == [0.7, 0.7, 0.7]                          # neither: constant
    assert temperature_ramp(4, 0.0, 1.0) == [0.0] * 4                           # 0 = greedy throughout
    assert temperature_ramp(1, 0.9, 0.1) == [0.9]
    assert temperature_ramp(0, 1.0, 2.0) == []
