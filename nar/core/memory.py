"""Out-of-memory as a user-facing error: `NarMemoryError` (a `NarError`, so the CLI prints one
line and exits 2; services map it to HTTP 413 when the request is over the limit before any
work, 507 when memory ran out while working) and `memory_guard`, which turns the allocators'
errors (torch CPU "can't allocate memory", torch.cuda.OutOfMemoryError, MemoryError) into it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from nar.core.errors import NarError

_OOM_TEXT = ("can't allocate memory", "out of memory", "not enough memory", "failed to allocate",
             "cannot allocate memory")


class NarMemoryError(NarError):
    """The job does not fit the memory limit (``over_limit``: refused from the estimate before
    any work) or ran out of memory while working (``over_limit`` False)."""

    def __init__(self, message: str, over_limit: bool = True):
        super().__init__(message)
        self.over_limit = over_limit

    @property
    def http_status(self) -> int:
        return 413 if self.over_limit else 507


def is_out_of_memory(error: BaseException) -> bool:
    """True for the allocators' out-of-memory errors (CPU, CUDA, Python)."""
    if isinstance(error, MemoryError):
        return True
    try:
        import torch
        if isinstance(error, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:   # pragma: no cover
        pass
    return isinstance(error, RuntimeError) and any(t in str(error).lower() for t in _OOM_TEXT)


def oom_message(what: str) -> str:
    return (f"out of memory while {what}; free memory, lower --max-memory so the job is refused "
            "or tiled up front, or use --tile / a smaller size")


@contextmanager
def memory_guard(what: str) -> Iterator[None]:
    """``with memory_guard("decoding 8192x8192 tokens"):`` -> an allocator failure inside
    becomes one `NarMemoryError` line naming what was being done and at what size."""
    try:
        yield
    except NarError:
        raise
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        _release()
        raise NarMemoryError(oom_message(what), over_limit=False) from None


def _release() -> None:
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:   # pragma: no cover - best effort
        pass
