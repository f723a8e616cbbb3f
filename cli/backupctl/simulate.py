"""``backupctl simulate``: the whole system rehearsed locally, day by day, with the configuration of cdk.json.

Try a retention or schedule change here before deploying it: the final inventory shows what the policy
keeps and why, and every alarm and mail that would have gone out.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import PROBLEM, UsageError
from cli.backupctl.output import JsonFlag, Output
from cli.backupctl.rehearsal import INJECTIONS, Injection, Rehearsal

DEFAULT_DAYS = 120
DEFAULT_INJECTION = "missed-dump@10"
MAX_DAYS = 3 * 365
_INJECT = re.compile(r"^(?P<what>[a-z-]+)(@(?P<day>[0-9]{1,4}))?$")


def parse_injections(raw: list[str], days: int) -> list[Injection]:
    out: list[Injection] = []
    for item in raw:
        if item == "none":
            continue
        match = _INJECT.match(item)
        if not match or match["what"] not in INJECTIONS:
            raise UsageError(
                f"--inject {item!r}: use one of {', '.join(INJECTIONS)} (or none), optionally with @DAY, e.g. missed-dump@10"
            )
        day = int(match["day"] or min(10, days))
        if not 1 <= day <= days:
            raise UsageError(f"--inject {item!r}: day {day} is outside the {days} simulated days")
        out.append(Injection(day, match["what"]))
    return out


# What an alarm says when it is about that injected failure (its name or its reason).
CAUGHT_BY_WORDS: dict[str, tuple[str, ...]] = {
    "missed-dump": ("dump",),
    "corrupt-dump": ("dump",),
    "failed-rds-snapshot": ("RDS snapshot", "rds-backup-age"),
    "prune-stopped": ("prune",),
}


def _caught(
    injection: Injection, rehearsal: Rehearsal, alarms: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The first alarm on or after the injected day that is about it."""
    day = (rehearsal.start + timedelta(days=injection.day - 1)).isoformat()
    words = CAUGHT_BY_WORDS[injection.what]
    about = [a for a in alarms if a["day"] >= day and any(w in f"{a['name']} {a['reason']}" for w in words)]
    return about[0] if about else None


def result_json(rehearsal: Rehearsal, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    config = rehearsal.config
    policy = config.retention
    return {
        "days": rehearsal.days,
        "start": rehearsal.start.isoformat(),
        "config": {
            "timezone": config.timezone,
            "retention": {
                "keep_daily": policy.keep_daily,
                "keep_weekly": policy.keep_weekly,
                "keep_monthly": policy.keep_monthly,
                "max_age_days": policy.max_age_days,
                "min_keep": policy.min_keep,
            },
            "schedules": dict(config.schedules),
            "targets": {
                "dump_max_age_hours": config.targets.dump_max_age_hours,
                "rds_max_age_hours": config.targets.rds_max_age_hours,
                "ami_max_age_hours": config.targets.ami_max_age_hours,
            },
            "dump_expiry_days": config.bucket.expiry_days,
        },
        "inventory": rehearsal.inventory,
        "injected": [
            {
                "day": (rehearsal.start + timedelta(days=i.day - 1)).isoformat(),
                "what": i.what,
                "caught_by": _caught(i, rehearsal, alarms),
            }
            for i in rehearsal.injections
        ],
        "alarms": alarms,
        "mails": [{"day": m["day"], "subject": m["subject"]} for m in rehearsal.mails],
        "runs": rehearsal.runs,
    }


def _show(rehearsal: Rehearsal, data: dict[str, Any], out: Output) -> None:
    for week in rehearsal.week_lines:
        failed = ", ".join(week["failed"]) or "none failed"
        out.line(f"week {week['week']:>2}: {week['ok']} runs ok; {failed}")
    zone = rehearsal.config.zone
    rows = []
    for item in sorted(
        rehearsal.plan,
        key=lambda i: (i.source or "", i.kind, i.created or datetime.min.replace(tzinfo=UTC)),
        reverse=True,
    ):
        if item.delete:
            continue
        made = "-" if item.created is None else f"{item.created.astimezone(zone):%d.%m.%Y}"
        rows.append([item.source or "-", item.kind, item.name, made, item.reason])
    out.table("Kept at the end (and by which rule)", ["source", "kind", "backup", "made", "why"], rows)
    for source, kinds in data["inventory"].items():
        out.line(
            f"{source}: {len(kinds['dump'])} dumps (the bucket lifecycle expires them), {len(kinds['rds'])} RDS snapshots, {len(kinds['ami'])} AMIs"
        )
    out.line("Alarms that would have gone out:" if data["alarms"] else "No alarm went out.")
    for alarm in data["alarms"]:
        out.line(f"  {alarm['day']}  {alarm['name']}: {alarm['reason']}")
    out.line(f"Weekly mails: {len(data['mails'])}")
    for mail in data["mails"]:
        out.line(f"  {mail['day']}  {mail['subject']}")
    for injected in data["injected"]:
        caught = injected["caught_by"]
        out.line(
            f"Injected on {injected['day']}: {INJECTIONS[injected['what']]} -> "
            + (f"caught by {caught['name']} on {caught['day']}" if caught else "NOT CAUGHT by any alarm")
        )


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    @speaks_aws
    def simulate_command(
        ctx: typer.Context,
        days: Annotated[
            int, typer.Option(help="How many days to rehearse.", min=1, max=MAX_DAYS)
        ] = DEFAULT_DAYS,
        start: Annotated[
            str | None, typer.Option(help="First day, YYYY-MM-DD (default: DAYS days before today).")
        ] = None,
        inject: Annotated[
            list[str] | None,
            typer.Option(
                help=f"A failure to inject, WHAT[@DAY]: {', '.join(INJECTIONS)}, or none. Repeatable."
            ),
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Rehearse every job at its scheduled times for DAYS days, locally (moto), with the real handlers."""
        cli: Cli = ctx.obj
        config = cli.config
        try:
            first = date.fromisoformat(start) if start else datetime.now(UTC).date() - timedelta(days=days)
        except ValueError:
            raise UsageError(f"--start {start!r} is not a date like 2026-08-01") from None
        injections = parse_injections(inject if inject is not None else [DEFAULT_INJECTION], days)
        out = Output(as_json)
        with Progress(
            TextColumn("rehearsing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            console=out.errors,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task("days", total=days)
            rehearsal = Rehearsal(
                config,
                first,
                days,
                injections,
                stack=cli.aws.stack,
                progress=lambda day, _: progress.update(task, completed=day - 1),
            )
            alarms = rehearsal.run()
        transitions = [{k: t[k] for k in ("day", "name", "reason")} for t in alarms.transitions]
        data = result_json(rehearsal, transitions)
        if as_json:
            out.json(data)
        else:
            _show(rehearsal, data, out)
        if any(i["caught_by"] is None for i in data["injected"]):
            raise typer.Exit(PROBLEM)
