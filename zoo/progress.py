"""Progress for long work on stderr: rich bars on a terminal, plain ``log_line``s in a log file, nothing under
ZOO_NO_PROGRESS."""

from __future__ import annotations

import os
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


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Progress]:
    """A rich Progress on stderr with one task; ``bar.update(bar.task_ids[0], advance=k, description=...)``."""
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
