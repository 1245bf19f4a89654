"""Progress of long command-line work (``vpp simulate``, ``vpp plan --all``) through rich.

A bar with the count, the elapsed time and the time left on standard error; lines printed
through :meth:`Bar.note` appear above it. On a terminal the bar redraws in place; elsewhere
(a pipe, a log file, CI) rich draws it once when the work ends, so logs stay readable.
rich is imported when a bar is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Bar:
    """One running bar (see :func:`progress_bar`)."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, done: int, total: int | None = None) -> None:
        """Set the count done (and the total, when it changed)."""
        self._progress.update(self._task, completed=done,
                              **({"total": total} if total is not None else {}))

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def note(self, text: str) -> None:
        """A line above the bar."""
        self._progress.console.print(text, markup=False, highlight=False)


@contextmanager
def progress_bar(description: str, total: int | None, unit: str) -> Iterator[Bar]:
    """A bar for ``total`` steps of ``unit`` (``site-months``) on standard error."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TextColumn("elapsed"), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        yield Bar(progress, progress.add_task(description, total=total))
