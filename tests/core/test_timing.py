"""The timer synchronizes CUDA around timed regions (checked with a fake device and a mock
clock), does not on CPU, and its percentiles are right on known durations."""
import math

import numpy as np
import pytest
import torch

from nar.core.timing import PeakMemory, Timer, percentile, summarize


class FakeClock:
    """Returns 0, 1.5, 3, ... and records when it was read in a shared event log."""

    def __init__(self, log, step=1.5):
        self.log, self.t, self.step = log, 0.0, step

    def __call__(self):
        self.log.append("clock")
        now = self.t
        self.t += self.step
        return now


def test_cuda_timer_synchronizes_before_and_after_the_region():
    log = []
    timer = Timer(torch.device("cuda"), clock=FakeClock(log), synchronize=lambda: log.append("sync"))
    with timer.region() as t:
        log.append("work")
    assert log == ["sync", "clock", "work", "sync", "clock"]
    assert t.seconds == pytest.approx(1.5)
    assert timer.synchronizes


def test_cuda_timer_time_fn_returns_result_and_synchronizes():
    log = []
    timer = Timer("cuda:0", clock=FakeClock(log, step=0.25), synchronize=lambda: log.append("sync"))
    result, seconds = timer.time(lambda x: log.append("work") or x * 2, 21)
    assert result == 42 and seconds == pytest.approx(0.25)
    assert log == ["sync", "clock", "work", "sync", "clock"]


def test_cpu_timer_never_synchronizes():
    log = []
    timer = Timer("cpu", clock=FakeClock(log), synchronize=lambda: log.append("sync"))
    with timer.region() as t:
        log.append("work")
    assert "sync" not in log
    assert log == ["clock", "work", "clock"]
    assert t.seconds == pytest.approx(1.5)
    assert not timer.synchronizes


def test_default_cpu_timer_measures_real_time():
    timer = Timer("cpu")
    _, s = timer.time(lambda: sum(range(1000)))
    assert 0 <= s < 5


@pytest.mark.parametrize("q", [0, 10, 50, 90, 100])
def test_percentile_matches_numpy_linear(q):
    xs = [0.3, 0.1, 0.9, 0.5, 0.7, 0.2, 1.3]
    assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))


def test_summary_on_known_durations():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert s["p50"] == pytest.approx(5.5)
    assert s["p90"] == pytest.approx(9.1)
    assert s["mean"] == pytest.approx(5.5)
    assert (s["min"], s["max"], s["n"]) == (1.0, 10.0, 10)
    one = summarize([2.0])
    assert one["p50"] == one["p90"] == 2.0 and one["n"] == 1
    empty = summarize([])
    assert empty["n"] == 0 and math.isnan(empty["p50"])


def test_percentile_rejects_bad_q():
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_peak_memory_on_cpu_is_process_rss():
    pm = PeakMemory("cpu")
    pm.reset()  # a no-op off CUDA
    assert pm.kind == "process_rss_high_water"
    assert pm.peak_mb() > 1.0
