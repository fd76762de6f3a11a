"""Output discipline: data on stdout (``--json`` is clean JSON), messages and progress on stderr."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from zoo.progress import err_console

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def info(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)  # one line per message in a log file


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A rich table of results on stderr (the human view; ``--json`` carries the data)."""
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    # a log file or pipe gets the full table rather than rich's 80-column default
    console = err_console if err_console.is_terminal else Console(stderr=True, width=200)
    console.print(t)


def print_table(columns: list[str], rows: list[list[Any]]) -> None:
    """A listing on stdout (what `zoo list` prints when not --json)."""
    t = Table(box=None, pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    out = Console(soft_wrap=False)
    (out if out.is_terminal else Console(soft_wrap=False, width=200)).print(t)  # pipes: no 80-column wrap
