"""Progress for long work on stderr: rich bars on a terminal, plain ``log_line``s in a log file, nothing under
ZOO_NO_PROGRESS."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
err_console = Console(stderr=True)


def enabled() -> bool:
    return err_console.is_terminal and not os.environ.get("ZOO_NO_PROGRESS")


def log_line(message: str) -> None:
    """A plain progress line where no bar shows (stderr redirected to a log file); silent under ZOO_NO_PROGRESS."""
    if not err_console.is_terminal and not os.environ.get("ZOO_NO_PROGRESS"):
        err_console.print(message, highlight=False, soft_wrap=True)


class LogProgress:
    """Progress as plain lines for a log file (stderr not a terminal): the first after ``FIRST`` seconds, then one
    every ``EVERY`` seconds, and a last one when work that took long finishes. The subset of rich's Progress API the
    callers use: ``task_ids``, ``advance``, ``update``."""

    FIRST, EVERY = 5.0, 30.0

    def __init__(self, description: str, total: int | None) -> None:
        self.description, self.total, self.completed = description, total, 0
        self.task_ids = [0]
        self.start = self.last = time.monotonic()
        self.printed, self.shown = False, 0

    def _maybe_print(self, final: bool = False) -> None:
        now = time.monotonic()
        due = (now - self.start >= self.FIRST) if not self.printed else (now - self.last >= self.EVERY)
        if due or (final and self.printed and self.completed != self.shown):
            of = f"/{self.total:,}" if self.total else ""
            log_line(f"{self.description}: {self.completed:,}{of} ({now - self.start:.0f} s)")
            self.last, self.printed, self.shown = now, True, self.completed

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.completed += int(advance)
        self._maybe_print()

    def update(self, task_id: int, *, description: str | None = None, completed: float | None = None,
               advance: float | None = None, **_: object) -> None:
        if description is not None:
            self.description = description
        if completed is not None:
            self.completed = int(completed)
        if advance is not None:
            self.completed += int(advance)
        self._maybe_print()


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Progress | LogProgress]:
    """A rich Progress on stderr with one task (``bar.advance(bar.task_ids[0], k)``, ``bar.update(...,
    description=...)``); in a log file, plain lines now and then (:class:`LogProgress`)."""
    if not err_console.is_terminal and not os.environ.get("ZOO_NO_PROGRESS"):
        log = LogProgress(description, total)
        yield log
        log._maybe_print(final=True)
        return
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=err_console, redirect_stdout=False, transient=True,
                        disable=not enabled())
    with progress:
        progress.add_task(description, total=total)
        yield progress


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(description, total) as bar:
        for item in items:
            yield item
            bar.advance(bar.task_ids[0])
