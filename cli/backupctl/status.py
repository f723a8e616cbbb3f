"""``backupctl status``: are we safe? One look at every source, check, alarm, subscription and schedule.

Per source (named by its ``Name`` tag), the newest backup of each kind with its state (the one state
table) and its age against the target, computed by verify's own checks; the last verification (its
metric), restore test (its record), drill and IAM review; alarms in ALARM; whether every address of the
alarm topic has confirmed its subscription (an unconfirmed address gets no alarm); the next run of every
schedule in the configured timezone. Exit 1 when anything needs the admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import PROBLEM
from cli.backupctl.output import JsonFlag, Output, age_text
from infra.cron import parse_cron
from lambdas.common import contracts
from lambdas.common.aws.subscriptions import mail_subscriptions, topic_by_name
from lambdas.common.contracts import REPORT_PREFIX
from lambdas.common.jobs.report import last_restore_test
from lambdas.common.jobs.verify import Check, run_checks
from lambdas.common.settings import VerifySettings

LAST_VERIFY_WINDOW = timedelta(days=3)
RESTORE_TEST_WINDOW = timedelta(days=8)
KIND_LABEL = {"dump": "files + DB dump", "rds": "RDS snapshot", "ami": "AMI"}


@dataclass
class Status:
    generated_at: datetime
    sources: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    restore_test: dict[str, Any] = field(default_factory=dict)
    drill: dict[str, Any] = field(default_factory=dict)
    iam_review: dict[str, Any] = field(default_factory=dict)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "ok": not self.problems,
            "problems": self.problems,
            "sources": self.sources,
            "verification": self.verification,
            "restore_test": self.restore_test,
            "drill": self.drill,
            "iam_review": self.iam_review,
            "alarms": self.alarms,
            "subscriptions": self.subscriptions,
            "schedules": self.schedules,
        }


def _backup(seen: Any) -> dict[str, Any] | None:
    return None if seen is None else seen.as_dict()


def _source_rows(cli: Cli, now: datetime, status: Status) -> None:
    aws, config = cli.aws, cli.config
    ec2, rds = aws.ec2(), aws.rds()
    settings = VerifySettings(
        bucket=aws.bucket,
        selection=config.selection,
        retention=config.retention,
        dump_enabled=config.dump.enabled,
        targets=config.targets,
    )
    result = run_checks(ec2, rds, aws.s3(), settings, now)
    by_source: dict[str, list[Check]] = {}
    for check in result.checks:
        by_source.setdefault(check.source, []).append(check)
    for source, checks in sorted(by_source.items()):
        status.sources.append(
            {
                "id": source,
                "name": result.names.get(source, ""),
                "kind": "database" if any(c.kind == contracts.KIND_RDS for c in checks) else "server",
                "backups": [
                    {
                        "kind": c.kind,
                        "ok": c.ok,
                        "state": str(c.newest.state) if c.newest else None,
                        "newest": _backup(c.newest),
                        "newest_good": _backup(c.newest_good),
                        "age_hours": None if c.age_hours is None else round(c.age_hours, 1),
                        "target_hours": c.target_hours,
                        "problems": list(c.problems),
                    }
                    for c in checks
                ],
            }
        )
    status.problems += result.problems


def _verification(cli: Cli, now: datetime, status: Status) -> None:
    """The last run of verify, from its VerificationFailures metric."""
    answer = cli.aws.cloudwatch().get_metric_statistics(
        Namespace=contracts.NAMESPACE,
        MetricName=contracts.VERIFY_FAILURES,
        StartTime=now - LAST_VERIFY_WINDOW,
        EndTime=now,
        Period=300,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        status.verification = {"last_run": None, "failures": None}
        status.problems.append(
            f"The daily verification has not reported in the last {LAST_VERIFY_WINDOW.days} days: "
            "is the verify job running? (`backupctl run verify`)"
        )
        return
    last = points[-1]
    failures = int(last.get("Maximum", 0))
    status.verification = {"last_run": last["Timestamp"].astimezone(UTC), "failures": failures}


def _restore_test(cli: Cli, now: datetime, status: Status) -> None:
    found = last_restore_test(cli.aws.s3(), cli.aws.bucket, now)
    if found is None:
        status.restore_test = {"last_run": None}
        status.problems.append("No restore test has run yet (`backupctl run restore_test`).")
        return
    status.restore_test = {
        "last_run": found.when,
        "passed": found.passed,
        "duration_seconds": found.duration_seconds,
        "dump": found.dump,
        "problems": list(found.problems),
    }
    if not found.passed:
        status.problems.append(
            f"The last restore test ({found.when:%Y-%m-%d}) failed: " + " ".join(found.problems)
        )
    elif now - found.when > RESTORE_TEST_WINDOW:
        status.problems.append(f"The last restore test ran on {found.when:%Y-%m-%d}, more than a week ago.")


def _newest_record(cli: Cli, folder: str) -> dict[str, Any]:
    pages = (
        cli.aws.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=cli.aws.bucket, Prefix=f"{REPORT_PREFIX}/{folder}/")
    )
    keys = sorted(o["Key"] for p in pages for o in p.get("Contents", []) if o["Key"].endswith(".json"))
    return {"last": keys[-1] if keys else None, "deployed": False}


def _alarms(cli: Cli, status: Status) -> None:
    pages = (
        cli.aws.cloudwatch()
        .get_paginator("describe_alarms")
        .paginate(AlarmNamePrefix=cli.aws.alarm_prefix, StateValue="ALARM")
    )
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            status.alarms.append({"name": alarm["AlarmName"], "reason": alarm.get("StateReason", "")})
            status.problems.append(f"Alarm {alarm['AlarmName']} is in ALARM: {alarm.get('StateReason', '')}")


def _subscriptions(cli: Cli, status: Status) -> None:
    name = contracts.alarm_topic_name(cli.aws.stack)
    sns = cli.aws.sns()
    arn = topic_by_name(sns, name)
    if arn is None:
        status.problems.append(
            f"The alarm topic {name} does not exist: is the stack {cli.aws.stack} deployed here?"
        )
        return
    for sub in mail_subscriptions(sns, arn, cli.config.notification_emails):
        status.subscriptions.append(
            {"address": sub.address, "confirmed": sub.confirmed, "subscribed": sub.subscribed}
        )
        if not sub.subscribed:
            status.problems.append(
                f"{sub.address} is not subscribed to the alarm topic: alarms do not reach it."
            )
        elif not sub.confirmed:
            status.problems.append(
                f"{sub.address} has not confirmed the alarm subscription: alarms do not reach it until the "
                "link in the AWS Notification mail is clicked."
            )


def _schedules(cli: Cli, now: datetime, status: Status) -> None:
    zone = cli.config.zone
    for job, expression in sorted(cli.config.schedules.items()):
        if job == "dump" and not cli.config.dump.enabled:
            continue
        deployed = job in contracts.SCHEDULED_JOBS
        [next_run] = parse_cron(expression).next_runs(now, 1, zone)
        status.schedules.append(
            {
                "job": job,
                "expression": expression,
                "deployed": deployed,
                "next_run": next_run.astimezone(UTC) if deployed else None,
            }
        )


def gather(cli: Cli, now: datetime) -> Status:
    status = Status(generated_at=now)
    _source_rows(cli, now, status)
    _verification(cli, now, status)
    _restore_test(cli, now, status)
    status.drill = _newest_record(cli, "drills")
    status.iam_review = _newest_record(cli, "iam")
    _alarms(cli, status)
    _subscriptions(cli, status)
    _schedules(cli, now, status)
    return status


def _local(cli: Cli, when: datetime | None) -> str:
    return "-" if when is None else f"{when.astimezone(cli.config.zone):%a %d.%m.%Y %H:%M}"


def show(cli: Cli, status: Status, out: Output) -> None:
    zone = cli.config.timezone
    rows = []
    for source in status.sources:
        label = f"{source['name']} ({source['id']})" if source["name"] else source["id"]
        for b in source["backups"]:
            newest = b["newest"]
            rows.append(
                [
                    label,
                    KIND_LABEL.get(b["kind"], b["kind"]),
                    newest["id"] if newest else "none",
                    b["state"] or "-",
                    f"{age_text(b['age_hours'])} / {age_text(float(b['target_hours']))}",
                    "ok" if b["ok"] else "PROBLEM",
                ]
            )
            label = ""
    out.table(
        f"Backups ({cli.aws.stack}, {cli.aws.region_name})",
        ["source", "kind", "newest", "state", "age / target", ""],
        rows,
    )
    v = status.verification
    out.line(
        "Last verification: "
        + (
            "none in the last 3 days"
            if v.get("last_run") is None
            else f"{_local(cli, v['last_run'])} ({v['failures']} failure(s))"
        )
    )
    r = status.restore_test
    out.line(
        "Last restore test: "
        + (
            "none yet"
            if r.get("last_run") is None
            else f"{_local(cli, r['last_run'])}: {'passed' if r['passed'] else 'FAILED'} in {r['duration_seconds']:.0f} s"
        )
    )
    out.line(
        "Last restore drill: not deployed yet"
        if status.drill["last"] is None
        else f"Last restore drill: {status.drill['last']}"
    )
    out.line(
        "Last IAM review: not deployed yet"
        if status.iam_review["last"] is None
        else f"Last IAM review: {status.iam_review['last']}"
    )
    out.line("Alarms in ALARM: " + (", ".join(a["name"] for a in status.alarms) or "none"))
    for sub in status.subscriptions:
        out.line(f"Alarm mail to {sub['address']}: " + ("confirmed" if sub["confirmed"] else "NOT CONFIRMED"))
    out.table(
        f"Next runs ({zone})",
        ["job", "next run"],
        [
            [s["job"], _local(cli, s["next_run"]) if s["deployed"] else "not deployed yet"]
            for s in status.schedules
        ],
    )
    if status.problems:
        out.line(f"{len(status.problems)} thing(s) need you:", style="bold red")
        for problem in status.problems:
            out.line(f" - {problem}")
    else:
        out.line("All good: every backup is fresh and usable, and alarms reach everyone.", style="bold green")


def register(app: typer.Typer) -> None:
    @app.command("status")
    @speaks_aws
    def status_command(
        ctx: typer.Context,
        as_json: JsonFlag = False,
    ) -> None:
        """Are we safe? Newest backups, last checks, alarms, subscriptions, next runs. Exit 1 if not."""
        cli: Cli = ctx.obj
        status = gather(cli, datetime.now(UTC))
        out = Output(as_json)
        if as_json:
            out.json(status.as_dict())
        else:
            show(cli, status, out)
        if status.problems:
            raise typer.Exit(PROBLEM)
