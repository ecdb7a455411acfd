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
