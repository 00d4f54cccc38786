"""The one place that prints for humans.

Every command reports through a `Console`, so `--quiet` and `--json` only have to
be handled here. Machine output (JSON) goes to a file or stdout; human output goes
to stderr so `--json -` stays parseable, except a table that is the command's answer
(`table(..., result=True)`, as `driftloop models` lists), which goes to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


class Console:
    """Human-facing output with a quiet mode; plain text when not on a terminal."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self._rich = None
        if not quiet and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console as RichConsole  # only for terminals

            self._rich = RichConsole(file=self.stream, highlight=False)

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    def warning(self, message: str) -> None:
        """One line about something that did not stop the command; hidden by --quiet."""
        if not self.quiet:
            print(f"warning: {message}", file=self.stream, flush=True)

    def error(self, message: str) -> None:
        """One line, always shown, even in quiet mode."""
        print(f"error: {message}", file=self.stream, flush=True)

    def traceback(self, text: str) -> None:
        """A traceback asked for with --debug: shown even in quiet mode."""
        print(text.rstrip(), file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Show a step while it runs and its outcome with its duration."""
        started = time.perf_counter()
        if self._rich is not None:
            with self._rich.status(f"[bold]{name}[/bold] …"):
                try:
                    yield
                except BaseException:
                    self._rich.print(f"[red]✗[/red] {name:<10} {time.perf_counter() - started:6.1f}s")
                    raise
            self._rich.print(f"[green]✓[/green] {name:<10} {time.perf_counter() - started:6.1f}s")
            return
        self.info(f"… {name}")
        try:
            yield
        except BaseException:
            self.info(f"✗ {name:<10} {time.perf_counter() - started:6.1f}s")
            raise
        self.info(f"✓ {name:<10} {time.perf_counter() - started:6.1f}s")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
              result: bool = False) -> None:
        """A titled table; `result=True` writes it to stdout instead, as a command's answer (`driftloop models`)."""
        if result:
            Console(quiet=self.quiet, stream=sys.stdout).table(title, columns, rows)
            return
        if self.quiet:
            return
        cells = [[_cell(v) for v in row] for row in rows]
        if self._rich is not None:
            from rich.table import Table

            table = Table(title=title)
            for column in columns:
                table.add_column(column)
            for row in cells:
                table.add_row(*row)
            self._rich.print(table)
            return
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        self.info(title)
        self.info("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for row in cells:
            self.info("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def check_writable(destination: str | None, flag: str) -> None:
    """UsageError now, before any work, for an output file that could not be written at the end (a missing
    directory, a directory given as the file): the work done would end in a traceback and the wrong exit code."""
    if destination is None or destination == "-" or "://" in destination:
        return
    from driftloop.errors import UsageError

    try:
        _check_writable(Path(destination), destination, flag)
    except OSError as e:  # a directory on the way this user may not enter
        raise UsageError(f"{flag} {destination}: {e.strerror or e}") from None


def _check_writable(path: Path, destination: str, flag: str) -> None:
    import os

    from driftloop.errors import UsageError

    if path.is_dir():
        raise UsageError(f"{flag} {destination}: is a directory; give a file name")
    if path.exists():  # written in place: its directory need not be writable (/dev/termination-log, /dev/stdout)
        if not os.access(path, os.W_OK):
            raise UsageError(f"{flag} {destination}: not writable")
        return
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{flag} {destination}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {destination}: directory {parent} is not writable")


def write_json(data: Any, destination: str) -> None:
    """Write `data` as JSON to a file path, or to stdout when `destination` is '-'."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    if destination == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    with open(destination, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
