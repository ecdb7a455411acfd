"""Benchmark set-up shared by `nar bench` and the scripts under benchmarks/."""
import pytest
import torch

from nar.core.errors import NarError
from nar.eval.machine import device_slug, environment, int_tuple, setup_device


def test_setup_device_sets_threads_and_restores():
    before = torch.get_num_threads()
    try:
        dev = setup_device("cpu", 1)
        assert dev == torch.device("cpu") and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_setup_device_errors_are_one_clear_message():
    with pytest.raises(NarError, match="threads"):
        setup_device("cpu", 0)
    if not torch.cuda.is_available():
        with pytest.raises(NarError, match="CUDA"):
            setup_device("cuda")
    assert setup_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_environment_records_where_numbers_come_from():
    env = environment(torch.device("cpu"))
    for key in ("device_name", "cpu_count", "torch_threads", "torch", "commit", "load_avg_start", "date_utc"):
        assert key in env
    assert env["device_name"].startswith("CPU") and device_slug(torch.device("cpu")) == "cpu"


def test_int_tuple():
    assert int_tuple("16,32, 64,") == (16, 32, 64)
