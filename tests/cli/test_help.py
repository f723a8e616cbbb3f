"""--help on every level, --json on every read command, and exit 2 for a wrong command line (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import typer.main

from cli.backupctl.app import app
from tests.cli.conftest import Result

READ_COMMANDS = {
    ("status",),
    ("prune",),
    ("simulate",),
    ("run",),
    ("restore", "files"),
    ("restore", "dump"),
    ("restore", "db"),
    ("restore", "server"),
    ("iam-review",),
}


def _paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Typer's command tree (Typer brings its own click): every group and command by its path."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*path, name))


def test_every_level_has_help(cli: Callable[..., Result]) -> None:
    found = dict(_paths(typer.main.get_command(app)))
    assert {("drill", "start"), ("drill", "status"), ("iam-review",)} | READ_COMMANDS <= set(found)
    for path in found:
        result = cli(*path, "--help")
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout


def test_every_read_command_has_json() -> None:
    found = dict(_paths(typer.main.get_command(app)))
    for path in READ_COMMANDS:
        assert "--json" in {opt for p in found[path].params for opt in p.opts}, path


def test_a_wrong_command_line_exits_2(cli: Callable[..., Result]) -> None:
    assert cli("statsu").exit_code == 2
    assert cli("status", "--jason").exit_code == 2
    assert cli("restore", "files", "--date", "2026-11-26").exit_code == 2  # --to missing
