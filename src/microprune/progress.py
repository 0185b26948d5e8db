"""Progress for long work (scanning, copying, compressing), shown on stderr only to people.

The core reports progress through `progress()`, which does nothing unless the CLI installed a
live display (stderr is a terminal and --quiet was not given). So library users, pipes, CI logs
and --format json output never see a bar, and the core stays free of terminal code.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Task(Protocol):
    def advance(self, amount: int = 1) -> None: ...


class Reporter(Protocol):
    def task(self, label: str, total: int | None = None, unit: str = "files") -> Any: ...


class _Silent:
    def advance(self, amount: int = 1) -> None:
        pass


class _SilentReporter:
    @contextmanager
    def task(self, label: str, total: int | None = None, unit: str = "files") -> Iterator[Task]:
        yield _Silent()


_reporter: Reporter = _SilentReporter()


def progress() -> Reporter:
    return _reporter


def install(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter if reporter is not None else _SilentReporter()


class RichReporter:
    """Transient rich bars on stderr: they vanish when the work is done."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    @contextmanager
    def task(self, label: str, total: int | None = None, unit: str = "files") -> Iterator[Task]:
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                   TextColumn, TimeElapsedColumn)

        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), count, TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bars:
            task_id = bars.add_task(label, total=total)

            class _Live:
                def advance(self, amount: int = 1) -> None:
                    bars.advance(task_id, amount)

            yield _Live()
