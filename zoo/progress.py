"""Progress bars for long work: rich, on stderr, silent when stderr is not a terminal or ZOO_NO_PROGRESS is set."""

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
