"""A bounded request queue with one worker thread that runs compatible requests as a batch.

Requests are submitted with a *key* (e.g. prior + grid + steps + temperature: whatever must
be equal for two requests to share one model call) and a payload. The worker takes the
oldest pending request, then waits until ``max_batch`` requests with the same key are
pending or ``max_wait_ms`` have passed since that request arrived, and hands them all to
``run_batch(key, payloads) -> results`` in one call. Requests with other keys wait their
turn (first come, first served by arrival of each batch's oldest member).

The queue is bounded: ``submit`` raises `QueueFull` when ``max_queue`` requests are already
waiting (the service answers 503), so load beyond capacity is refused rather than growing
memory and latency without limit. All model work runs on the one worker thread: a single
process never runs two models at once on the same cores or device.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence


class QueueFull(Exception):
    """The queue already holds ``max_queue`` waiting requests."""


@dataclass
class _Item:
    key: Hashable
    payload: Any
    future: Future
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class BatchInfo:
    """What the worker tells each request about the batch it ran in."""
    size: int              # requests in the batch
    queued_s: float        # this request's wait from submit to the batch's start
    started: float         # perf_counter at the batch's start


class BatchQueue:
    def __init__(self, run_batch: Callable[[Hashable, Sequence[Any], Sequence[BatchInfo]], Sequence[Any]],
                 max_batch: int = 8, max_wait_ms: float = 10.0, max_queue: int = 64, name: str = "nar-batch"):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_ms >= 0")
        self.run_batch = run_batch
        self.max_batch, self.max_wait, self.max_queue = int(max_batch), max_wait_ms / 1000.0, int(max_queue)
        self._pending: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self.batches_run = 0
        self.requests_run = 0
        self.largest_batch = 0
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ---- client side ----------------------------------------------------------------------
    def submit(self, key: Hashable, payload: Any) -> Future:
        """Queue one request; its future resolves to ``(result, BatchInfo)``."""
        item = _Item(key, payload, Future())
        with self._cond:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"the request queue is full ({self.max_queue} waiting); try again shortly")
            self._pending.append(item)
            self._cond.notify_all()
        return item.future

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def busy(self) -> bool:
        return self._busy

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in progress, fail the waiting requests, end the worker."""
        with self._cond:
            self._stopping = True
            left = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for item in left:
            item.future.set_exception(QueueFull("the server is shutting down"))
        self._thread.join(timeout)

    # ---- worker side ----------------------------------------------------------------------
    def _take_batch(self) -> list[_Item] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            first = self._pending[0]
            deadline = first.arrived + self.max_wait
            while not self._stopping:
                same = sum(1 for it in self._pending if it.key == first.key)
                left = deadline - time.perf_counter()
                if same >= self.max_batch or left <= 0:
                    break
                self._cond.wait(left)
            if self._stopping:
                return None
            batch = [it for it in self._pending if it.key == first.key][: self.max_batch]
            for it in batch:
                self._pending.remove(it)
            self._busy = True
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            start = time.perf_counter()
            infos = [BatchInfo(size=len(batch), queued_s=start - it.arrived, started=start) for it in batch]
            try:
                results = list(self.run_batch(batch[0].key, [it.payload for it in batch], infos))
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} requests")
            except BaseException as e:  # noqa: BLE001 - every error goes back to its request
                for it in batch:
                    it.future.set_exception(e)
            else:
                for it, info, result in zip(batch, infos, results):
                    if isinstance(result, BaseException):   # a per-request failure
                        it.future.set_exception(result)
                    else:
                        it.future.set_result((result, info))
            finally:
                self._busy = False
                self.batches_run += 1
                self.requests_run += len(batch)
                self.largest_batch = max(self.largest_batch, len(batch))
