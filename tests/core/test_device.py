import pytest
import torch

from nar.core.device import PRECISIONS, native_bf16, precision_context, use_bf16
from nar.core.errors import NarError

CPU = torch.device("cpu")


def test_precision_names():
    assert use_bf16(CPU, "bf16") and not use_bf16(CPU, "fp32")
    assert use_bf16(CPU, "auto") == native_bf16(CPU)   # auto: bf16 only where the hardware has it
    with pytest.raises(NarError, match="precision must be one of"):
        use_bf16(CPU, "fp16")
    assert PRECISIONS == ("auto", "fp32", "bf16")


def test_precision_context_casts_matmuls_only_in_bf16():
    a = torch.randn(4, 8)
    with precision_context(CPU, "bf16"):
        assert (a @ a.T).dtype == torch.bfloat16
    with precision_context(CPU, "fp32"):
        assert (a @ a.T).dtype == torch.float32
