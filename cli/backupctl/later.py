"""``drill start|status`` and ``iam-review``: the restore drill and the IAM review are not deployed yet."""

from __future__ import annotations

import typer

from cli.backupctl.context import Cli
from cli.backupctl.errors import USAGE
from cli.backupctl.output import Output


def _not_yet(ctx: typer.Context, what: str) -> None:
    """``what`` is the catalogue's name of the job (``cli.restore.drill``...)."""
    cli: Cli = ctx.obj
    Output().error(cli.say("cli.restore.not_deployed", what=cli.say(what)))
    raise typer.Exit(USAGE)


def register(app: typer.Typer) -> None:
    drill = typer.Typer(help="The twice-yearly restore drill (not deployed yet).", no_args_is_help=True)

    @drill.command("start")
    def drill_start(ctx: typer.Context) -> None:
        """Start the restore drill now."""
        _not_yet(ctx, "cli.restore.drill")

    @drill.command("status")
    def drill_status(ctx: typer.Context) -> None:
        """The last restore drill and its result."""
        _not_yet(ctx, "cli.restore.drill")

    app.add_typer(drill, name="drill")

    @app.command("iam-review")
    def iam_review(ctx: typer.Context) -> None:
        """The monthly IAM review: users without MFA, old keys, admin-grade policies."""
        _not_yet(ctx, "cli.restore.iam_review")
