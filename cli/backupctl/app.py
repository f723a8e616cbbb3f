"""backupctl: "are we safe?" and "bring it back", on the same domain code as the Lambdas.

Every command against AWS takes the usual profile and region settings (``--profile``, ``--region`` or
the AWS_* environment) and ``--endpoint-url`` (a moto server, for a rehearsal). Exit status: 0 success,
1 a problem found, 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.backupctl import (
    drill,
    iam_review,
    prune,
    restore_db,
    restore_files,
    restore_server,
    run_job,
    simulate,
    status,
)
from cli.backupctl.context import Aws, Cli, domain_logs_to_stderr

app = typer.Typer(
    name="backupctl",
    help="schoolbackup for the admin: status, run a job, retention plan, restore, rehearsal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def options(  # noqa: PLR0917 - Typer passes the global options positionally
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option(help="AWS profile (as for the AWS CLI).", envvar="AWS_PROFILE")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS region, e.g. eu-central-2.", envvar="AWS_REGION")
    ] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Send every AWS call here (a moto server, for a rehearsal).")
    ] = None,
    stack: Annotated[str, typer.Option(help="Name of the deployed stack.")] = "SchoolBackup",
    config: Annotated[
        Path | None, typer.Option(help="The cdk.json with the configuration (default: ./cdk.json).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show the jobs' own log lines (stderr).")
    ] = False,
) -> None:
    domain_logs_to_stderr(verbose)
    ctx.obj = Cli(Aws(profile=profile, region=region, endpoint_url=endpoint_url, stack=stack), config)


status.register(app)
run_job.register(app)
prune.register(app)
restore = typer.Typer(
    help="Bring a backup back: files, the database dump, the database, the server.", no_args_is_help=True
)
restore_files.register(restore)
restore_db.register(restore)
restore_server.register(restore)
app.add_typer(restore, name="restore")
drill.register(app)
iam_review.register(app)
simulate.register(app)


def main() -> None:
    app()
