"""Printing: Rich tables and progress for people, one JSON object for ``--json`` (nothing else on stdout)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lambdas.common.messages import say


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


# Every read command's --json: one JSON object on stdout, people's lines on stderr.
JsonFlag = Annotated[
    bool, typer.Option("--json", help="One JSON object on stdout (people's lines go to stderr).")
]
PIPED_WIDTH = 160  # a table written to a file or a pipe: wide enough for the reasons, no wrapping mid-id


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPED_WIDTH
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


@dataclass
class Output:
    as_json: bool = False
    console: Console = field(default_factory=lambda: _console(stderr=False))
    errors: Console = field(default_factory=lambda: _console(stderr=True))

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def line(self, text: str = "", style: str | None = None) -> None:
        """A line for people; with ``--json`` it goes to stderr, so stdout stays one JSON object."""
        (self.errors if self.as_json else self.console).print(text, style=style, markup=False)

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        (self.errors if self.as_json else self.console).print(table)

    def error(self, text: str) -> None:
        self.errors.print(f"backupctl: {text}", style="bold red", markup=False)


def age_text(hours: float | None, language: str = "en") -> str:
    """An age for a table: hours up to three days, then days (German with a decimal comma)."""
    if hours is None:
        return "-"
    if hours < 72:
        return f"{hours:.0f} h"
    days = f"{hours / 24:.1f}"
    return say("cli.common.age_days", language, days=days.replace(".", ",") if language == "de" else days)
