"""A rich progress bar that is a no-op when disabled (tests, non-TTY CI logs)."""
from __future__ import annotations

import contextlib
from typing import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, start: int = 0, desc: str = "") -> Iterator:
    """Yields ``advance(completed, info: dict)``."""
    if not enabled:
        yield lambda completed, info=None: None
        return
    columns = [TextColumn(f"[bold]{desc}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(desc, total=total, completed=start, info="")

        def advance(completed: int, info: dict | None = None) -> None:
            text = " ".join(f"{k}={v:.4g}" for k, v in (info or {}).items())
            progress.update(task, completed=completed, info=text)

        yield advance


class StepProgress:
    """A sampling callback, ``callback(step, total, tokens)``, that shows a rich progress bar
    once sampling has run ``delay`` seconds past its first step (quick runs print nothing).
    Use it as a context manager so that the bar is closed; ``unit`` names what is counted."""

    def __init__(self, desc: str = "sampling", unit: str = "steps", delay: float = 1.0, console=None):
        import time
        self._clock = time.perf_counter
        self.desc, self.unit, self.delay, self.console = desc, unit, delay, console
        self.start: float | None = None
        self.progress: Progress | None = None
        self.calls = 0

    def __call__(self, step: int, total: int, tokens=None) -> None:
        self.calls += 1
        if self.progress is None:
            if self.start is None:
                self.start = self._clock()
            if self._clock() - self.start < self.delay:
                return
            columns = [TextColumn(f"[bold]{self.desc}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn(self.unit), TimeElapsedColumn(), TimeRemainingColumn()]
            self.progress = Progress(*columns, console=self.console, transient=True)
            self.progress.start()
            self._task = self.progress.add_task(self.desc, total=total)
        self.progress.update(self._task, completed=step + 1, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> "StepProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
