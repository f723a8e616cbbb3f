"""``backupctl prune --dry-run``: prune's own plan (the one state table, the configured policy), nothing deleted.

With offsite copies of rds or ami, also the plan prune follows in the offsite region: its own policy
(``offsite.retention``), the copied kinds only, on that region's clients (as the prune job does it);
with a target account (``offsite.account``) that account's, read through its ``-read`` role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import UsageError
from cli.backupctl.output import JsonFlag, Output
from infra.job_settings import offsite_settings
from lambdas.common.jobs.prune import PlanItem, offsite_kinds, plan
from lambdas.common.retention import RetentionPolicy


def _policy(policy: RetentionPolicy) -> dict[str, int]:
    return {
        "keep_daily": policy.keep_daily,
        "keep_weekly": policy.keep_weekly,
        "keep_monthly": policy.keep_monthly,
        "max_age_days": policy.max_age_days,
        "min_keep": policy.min_keep,
    }


def _counts(items: list[PlanItem]) -> dict[str, int]:
    deletes = sum(1 for i in items if i.delete)
    return {"delete": deletes, "keep": len(items) - deletes}


def _title_values(policy: RetentionPolicy) -> dict[str, int]:
    return {
        "daily": policy.keep_daily,
        "weekly": policy.keep_weekly,
        "monthly": policy.keep_monthly,
        "max_age": policy.max_age_days,
        "min_keep": policy.min_keep,
    }


def _show(cli: Cli, out: Output, title: str, items: list[PlanItem], now: datetime) -> None:
    """One region's plan as a table (times in the configured timezone), and its counts."""
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
    out.table(title, cli.say("cli.common.prune_columns", zone=cli.config.timezone).split("|"), rows)
    out.line(cli.say("cli.common.prune_summary", **_counts(items)))


@dataclass(frozen=True)
class OffsitePlan:
    region: str
    account: str | None  # the target account of the copies; None: this one
    kinds: tuple[str, ...]
    policy: RetentionPolicy
    items: list[PlanItem]

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "account": self.account,
            "kinds": list(self.kinds),
            "policy": _policy(self.policy),
            **_counts(self.items),
            "items": [i.as_dict() for i in self.items],
        }


def _offsite_plan(cli: Cli, now: datetime) -> OffsitePlan | None:
    """Prune's plan in the offsite region as the prune job makes it (prune_everywhere): on that region's
    clients, by the offsite policy, for the kinds the copy job copies; None without offsite copies of rds
    or ami (the dumps there expire by the copy bucket's lifecycle)."""
    if not cli.config.offsite.enabled:
        return None
    offsite = offsite_settings(cli.config, cli.aws.account)
    kinds = offsite_kinds(offsite)
    clients = cli.offsite_clients("prune-dry-run") if kinds else None
    if offsite is None or clients is None:
        return None
    _, items = plan(clients.ec2, clients.rds, offsite.policy, now, kinds)
    return OffsitePlan(clients.region, offsite.account, kinds, offsite.policy, items)


def register(app: typer.Typer) -> None:
    @app.command("prune")
    @speaks_aws
    def prune_command(
        ctx: typer.Context,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; delete nothing.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """The retention plan for every AMI and RDS snapshot (and their offsite copies): keep or delete,
        and why. Deletes nothing."""
        cli: Cli = ctx.obj
        if not dry_run:
            raise UsageError(cli.say("cli.common.prune_dry_run_only"))
        policy = cli.config.retention
        now = datetime.now(UTC)
        _, items = plan(cli.aws.ec2(), cli.aws.rds(), policy, now)
        there = _offsite_plan(cli, now)
        out = Output(as_json)
        if as_json:
            out.json(
                {
                    "generated_at": now,
                    "policy": _policy(policy),
                    **_counts(items),
                    "items": [i.as_dict() for i in items],
                    "offsite": None if there is None else there.as_dict(),
                }
            )
            return
        _show(cli, out, cli.say("cli.common.prune_title", **_title_values(policy)), items, now)
        if there is not None:
            where = (
                there.region
                if there.account is None
                else cli.say("cli.offsite.column_account", region=there.region, account=there.account)
            )
            title = cli.say("cli.common.prune_offsite_title", region=where, **_title_values(there.policy))
            _show(cli, out, title, there.items, now)
