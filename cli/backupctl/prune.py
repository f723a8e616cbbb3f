"""``backupctl prune --dry-run``: prune's own plan (the one state table, the configured policy), nothing deleted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import UsageError
from cli.backupctl.output import JsonFlag, Output
from lambdas.common.jobs.prune import plan


def register(app: typer.Typer) -> None:
    @app.command("prune")
    @speaks_aws
    def prune_command(
        ctx: typer.Context,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; delete nothing.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """The retention plan for every AMI and RDS snapshot: keep or delete, and why. Deletes nothing."""
        cli: Cli = ctx.obj
        if not dry_run:
            raise UsageError(cli.say("cli.common.prune_dry_run_only"))
        policy = cli.config.retention
        now = datetime.now(UTC)
        _, items = plan(cli.aws.ec2(), cli.aws.rds(), policy, now)
        out = Output(as_json)
        deletes = [i for i in items if i.delete]
        if as_json:
            out.json(
                {
                    "generated_at": now,
                    "policy": {
                        "keep_daily": policy.keep_daily,
                        "keep_weekly": policy.keep_weekly,
                        "keep_monthly": policy.keep_monthly,
                        "max_age_days": policy.max_age_days,
                        "min_keep": policy.min_keep,
                    },
                    "delete": len(deletes),
                    "keep": len(items) - len(deletes),
                    "items": [i.as_dict() for i in items],
                }
            )
            return
        zone = cli.config.zone
        delete, keep = cli.say("cli.common.prune_delete"), cli.say("cli.common.prune_keep")
        rows = [
            [
                i.source or "-",
                i.kind,
                i.name,
                "-" if i.created is None else f"{i.created.astimezone(zone):%d.%m.%Y %H:%M}",
                str(i.backup_state or i.state),
                delete if i.delete else keep,
                i.reason,
            ]
            for i in sorted(items, key=lambda i: (i.source or "", i.kind, i.created or now), reverse=True)
        ]
        out.table(
            cli.say(
                "cli.common.prune_title",
                daily=policy.keep_daily,
                weekly=policy.keep_weekly,
                monthly=policy.keep_monthly,
                max_age=policy.max_age_days,
                min_keep=policy.min_keep,
            ),
            cli.say("cli.common.prune_columns", zone=cli.config.timezone).split("|"),
            rows,
        )
        out.line(cli.say("cli.common.prune_summary", delete=len(deletes), keep=len(items) - len(deletes)))
