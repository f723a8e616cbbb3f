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
from lambdas.common.messages import say

DEFAULT_DAYS = 120
DEFAULT_INJECTION = "missed-dump"  # on day 10, or the last day of a shorter rehearsal
MAX_DAYS = 3 * 365
_KINDS = ("dump", "rds", "ami")
_INJECT = re.compile(r"^(?P<what>[a-z-]+)(@(?P<day>[0-9]{1,4}))?$")


def parse_injections(raw: list[str], days: int, language: str = "en") -> list[Injection]:
    out: list[Injection] = []
    for item in raw:
        if item == "none":
            continue
        match = _INJECT.match(item)
        if not match or match["what"] not in INJECTIONS:
            raise UsageError(
                say("cli.simulate.bad_inject", language, item=repr(item), names=", ".join(INJECTIONS))
            )
        day = int(match["day"] or min(10, days))
        if not 1 <= day <= days:
            raise UsageError(say("cli.simulate.day_outside", language, item=repr(item), day=day, days=days))
        out.append(Injection(day, match["what"]))
    return out


# What an alarm says when it is about that injected failure (its name or its reason), in either
# language: compared without case and with hyphens as spaces ("RDS snapshot", German "RDS-Snapshot").
CAUGHT_BY_WORDS: dict[str, tuple[str, ...]] = {
    "missed-dump": ("dump",),
    "corrupt-dump": ("dump",),
    "failed-rds-snapshot": ("RDS snapshot", "rds-backup-age"),
    "prune-stopped": ("prune",),
}


def _plain(text: str) -> str:
    return text.casefold().replace("-", " ")


def _caught(
    injection: Injection, rehearsal: Rehearsal, alarms: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The first alarm on or after the injected day that is about it."""
    day = (rehearsal.start + timedelta(days=injection.day - 1)).isoformat()
    words = [_plain(w) for w in CAUGHT_BY_WORDS[injection.what]]
    about = [
        a for a in alarms if a["day"] >= day and any(w in _plain(f"{a['name']} {a['reason']}") for w in words)
    ]
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


def _day(iso: str, language: str) -> str:
    """A day of the rehearsal for people: 2026-03-30 in English, 30.03.2026 in German."""
    return f"{date.fromisoformat(iso):%d.%m.%Y}" if language == "de" else iso


_WHY = re.compile(r"^(?P<rule>daily|weekly|monthly) (?P<bucket>\S+)$")
_MIN_KEEP = re.compile(r"^min_keep \(newest (?P<n>[0-9]+) usable\)$")
_WHY_FIXED = {
    "failed: newest failure kept as evidence": "cli.simulate.why.evidence",
    "pending: never deleted": "cli.simulate.why.pending",
}


def _bucket(rule: str, bucket: str, language: str) -> str:
    """The retention rule's bucket (UTC day 2026-03-30, ISO week 2026-W14, month 2026-03) for people."""
    if language != "de":
        return bucket
    if rule == "daily" and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", bucket):
        return _day(bucket, language)
    if rule == "weekly" and (week := re.fullmatch(r"([0-9]{4})-W([0-9]{2})", bucket)):
        return f"{week[2]}/{week[1]}"
    if rule == "monthly" and (month := re.fullmatch(r"([0-9]{4})-([0-9]{2})", bucket)):
        return f"{month[2]}.{month[1]}"
    return bucket


def why_kept(reason: str, language: str) -> str:
    """The retention policy's reason (lambdas.common.retention writes it in English, parts joined by
    ``; ``) in ``language``; a part it does not know stays as it is."""
    parts = []
    for part in reason.split("; "):
        if rule := _WHY.match(part):
            bucket = _bucket(rule["rule"], rule["bucket"], language)
            parts.append(say(f"cli.simulate.why.{rule['rule']}", language, bucket=bucket))
        elif keep := _MIN_KEEP.match(part):
            parts.append(say("cli.simulate.why.min_keep", language, n=keep["n"]))
        elif part in _WHY_FIXED:
            parts.append(say(_WHY_FIXED[part], language))
        else:
            parts.append(part)
    return "; ".join(parts)


def _show(rehearsal: Rehearsal, data: dict[str, Any], out: Output, language: str) -> None:
    def day(iso: str) -> str:
        return _day(iso, language)

    for week in rehearsal.week_lines:
        failed = ", ".join(f"{day(d)} {job}" for d, job in week["failed"]) or say(
            "cli.simulate.none_failed", language
        )
        out.line(say("cli.simulate.week", language, week=week["week"], ok=week["ok"], failed=failed))
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
        kind = say(f"cli.simulate.kind.{item.kind}", language) if item.kind in _KINDS else item.kind
        rows.append([item.source or "-", kind, item.name, made, why_kept(item.reason, language)])
    out.table(say("cli.simulate.kept", language), say("cli.simulate.kept_columns", language).split("|"), rows)
    for source, kinds in data["inventory"].items():
        dumps, rds, ami = (len(kinds[kind]) for kind in _KINDS)
        out.line(say("cli.simulate.inventory", language, source=source, dumps=dumps, rds=rds, ami=ami))
    out.line(say("cli.simulate.alarms" if data["alarms"] else "cli.simulate.no_alarm", language))
    for alarm in data["alarms"]:
        out.line(f"  {day(alarm['day'])}  {alarm['name']}: {alarm['reason']}")
    out.line(say("cli.simulate.mails", language, n=len(data["mails"])))
    for mail in data["mails"]:
        out.line(f"  {day(mail['day'])}  {mail['subject']}")
    for injected in data["injected"]:
        caught = injected["caught_by"]
        what = say(f"cli.simulate.inject.{injected['what']}", language)
        if caught:
            line = say(
                "cli.simulate.caught",
                language,
                day=day(injected["day"]),
                what=what,
                name=caught["name"],
                caught_day=day(caught["day"]),
            )
        else:
            line = say("cli.simulate.not_caught", language, day=day(injected["day"]), what=what)
        out.line(line)


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
        language = cli.language
        try:
            first = date.fromisoformat(start) if start else datetime.now(UTC).date() - timedelta(days=days)
        except ValueError:
            raise UsageError(say("cli.simulate.bad_start", language, start=repr(start))) from None
        injections = parse_injections(inject if inject is not None else [DEFAULT_INJECTION], days, language)
        out = Output(as_json)
        with Progress(
            TextColumn(say("cli.simulate.progress", language)),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(say("cli.simulate.progress_days", language)),
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
            _show(rehearsal, data, out, language)
        if any(i["caught_by"] is None for i in data["injected"]):
            raise typer.Exit(PROBLEM)
