"""``drill start|status`` and ``iam-review``: the restore drill and the IAM review are not deployed yet."""

from __future__ import annotations

import typer

from cli.backupctl.errors import USAGE
from cli.backupctl.output import Output


def _not_yet(what: str) -> None:
    Output().error(f"{what} is not deployed yet: this version of schoolbackup has no such job to drive.")
    raise typer.Exit(USAGE)


def register(app: typer.Typer) -> None:
    drill = typer.Typer(help="The twice-yearly restore drill (not deployed yet).", no_args_is_help=True)

    @drill.command("start")
    def drill_start() -> None:
        """Start the restore drill now."""
        _not_yet("The restore drill")

    @drill.command("status")
    def drill_status() -> None:
        """The last restore drill and its result."""
        _not_yet("The restore drill")

    app.add_typer(drill, name="drill")

    @app.command("iam-review")
    def iam_review() -> None:
        """The monthly IAM review: users without MFA, old keys, admin-grade policies."""
        _not_yet("The IAM review")
