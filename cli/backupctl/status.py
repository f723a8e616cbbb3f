"""``backupctl status``: are we safe? One look at every source, check, alarm, subscription and schedule.

Per source (named by its ``Name`` tag), the newest backup of each kind with its state (the one state
table) and its age against the target, computed by verify's own checks; with offsite copies the same for
the newest copy of each copied kind in the offsite region (verify's offsite checks: their problems count
as in the weekly mail; copies in a target account, ``offsite.account``, are read through its ``-read``
role, and a role that cannot be assumed is a problem saying why); the last verification (its metric),
restore test (its record), drill and IAM review; alarms in ALARM; whether every address of the alarm
topic has confirmed its subscription (an unconfirmed address gets no alarm); the next run of every
schedule in the configured timezone. Exit 1 when anything needs the admin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from cli.backupctl.context import Cli, OffsiteUnreadable, speaks_aws
from cli.backupctl.errors import PROBLEM
from cli.backupctl.output import JsonFlag, Output, age_text
from infra.cron import parse_cron
from infra.job_settings import offsite_settings
from lambdas.common import contracts
from lambdas.common.aws.clients import RegionClients
from lambdas.common.aws.subscriptions import mail_subscriptions, topic_by_name
from lambdas.common.jobs.report import build_health_report, now_in_alarm
from lambdas.common.jobs.verify import Check, VerifyResult, run_checks
from lambdas.common.messages import say
from lambdas.common.rendering import drill_summary, findings_text, headline, iam_summary
from lambdas.common.settings import ReportSettings, VerifySettings
from lambdas.common.week import HealthReport

LAST_VERIFY_WINDOW = timedelta(days=3)


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
    # where the offsite copies are and whether they could be read (None: no offsite copies)
    offsite: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)  # the problems, grouped, with next steps
    report: HealthReport | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "ok": not self.problems,
            "problems": self.problems,
            "findings": self.findings,
            "sources": self.sources,
            "offsite": self.offsite,
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


def _entry(check: Check) -> dict[str, Any]:
    """One backup kind of one source in ``status --json``: its newest backup, its age against the target."""
    return {
        "kind": check.kind,
        "ok": check.ok,
        "state": str(check.newest.state) if check.newest else None,
        "newest": _backup(check.newest),
        "newest_good": _backup(check.newest_good),
        "age_hours": None if check.age_hours is None else round(check.age_hours, 1),
        "target_hours": check.target_hours,
        "problems": list(check.problems),
    }


def _offsite_entry(check: Check | None, account: str | None) -> dict[str, Any] | None:
    """The offsite copy of a kind (verify's offsite check, with its region, and the account of the copies
    when it is another one); None: not copied, off, or not readable."""
    if check is None:
        return None
    return {**_entry(check), "region": check.region, **({"account": account} if account else {})}


def _source_rows(result: VerifyResult, status: Status) -> None:
    by_source: dict[str, list[Check]] = {}
    for check in result.checks:
        by_source.setdefault(check.source, []).append(check)
    copies = {(c.source, c.kind): c for c in result.offsite_checks}
    account = status.offsite["account"] if status.offsite else None
    for source, checks in sorted(by_source.items()):
        status.sources.append(
            {
                "id": source,
                "name": result.names.get(source, ""),
                "kind": "database" if any(c.kind == contracts.KIND_RDS for c in checks) else "server",
                "backups": [
                    {**_entry(c), "offsite": _offsite_entry(copies.get((c.source, c.kind)), account)}
                    for c in checks
                ],
            }
        )


def _verification(cli: Cli, now: datetime, status: Status) -> int:
    """The last run of verify, from its VerificationFailures metric; the days it has been silent (0: not)."""
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
        return LAST_VERIFY_WINDOW.days
    last = points[-1]
    status.verification = {
        "last_run": last["Timestamp"].astimezone(UTC),
        "failures": int(last.get("Maximum", 0)),
    }
    return 0


def _restore_test(report: HealthReport, status: Status) -> None:
    found = report.restore_test
    if found is None:
        status.restore_test = {"last_run": None}
        return
    status.restore_test = {
        "last_run": found.when,
        "passed": found.passed,
        "duration_seconds": found.duration_seconds,
        "dump": found.dump,
        "problems": list(found.problems),
    }


def _drill(report: HealthReport, deployed: bool) -> dict[str, Any]:
    """The newest restore drill (the weekly mail's): when, result, achieved RTO against the target."""
    drill = report.drill
    if drill is None:
        return {"last": None, "deployed": deployed}
    return {
        "last": drill.record,
        "deployed": deployed,
        "started_at": drill.when,
        "result": "passed" if drill.passed else "failed",
        "rto_minutes": drill.rto_minutes,
        "rto_target_minutes": drill.rto_target_minutes,
        "rto_met": drill.rto_met,
        "leftovers": list(drill.leftovers),
        "ok": drill.ok,
    }


def _iam_review(report: HealthReport) -> dict[str, Any]:
    """The newest monthly IAM review (the weekly mail's): its month, counts and high findings."""
    review = report.iam_review
    if review is None:
        return {"last": None, "deployed": True}
    return {
        "last": review.record,
        "deployed": True,
        "month": review.month,
        "counts": dict(review.counts),
        "high": [asdict(f) for f in review.high],
        "new_high": [asdict(f) for f in review.new_high],
    }


def _subscriptions(cli: Cli, status: Status) -> str:
    """The alarm topic's ARN ("" when it does not exist) and each address's subscription."""
    name = contracts.alarm_topic_name(cli.aws.stack)
    sns = cli.aws.sns()
    arn = topic_by_name(sns, name)
    if arn is None:
        status.problems.append(say("status.no_topic", cli.config.language, name=name, stack=cli.aws.stack))
        return ""
    for sub in mail_subscriptions(sns, arn, cli.config.notification_emails):
        status.subscriptions.append(
            {"address": sub.address, "confirmed": sub.confirmed, "subscribed": sub.subscribed}
        )
    return arn


def _schedules(cli: Cli, now: datetime, status: Status) -> None:
    zone = cli.config.zone
    for job, expression in sorted(cli.config.schedules.items()):
        if job == "dump" and not cli.config.dump.enabled:
            continue
        deployed = (
            job in contracts.SCHEDULED_JOBS
            or (job in contracts.DRILL_SCHEDULES and cli.config.restore_drill.enabled)
            # the copy job: with offsite copies of rds or ami (dumps are copied by S3 replication)
            or (job in contracts.OFFSITE_SCHEDULES and job not in cli.config.switched_off())
        )
        [next_run] = parse_cron(expression).next_runs(now, 1, zone)
        status.schedules.append(
            {
                "job": job,
                "expression": expression,
                "deployed": deployed,
                "next_run": next_run.astimezone(UTC) if deployed else None,
            }
        )


def _offsite_clients(cli: Cli, status: Status) -> RegionClients | None:
    """The offsite region's clients, and ``status.offsite``: the region, the account of the copies (None:
    this one), whether they could be read, and why not when backupctl knows it. A target account whose role cannot be assumed leaves the
    copies unchecked (verify's problem says so, as in the weekly mail) with the reason among the problems;
    the home backups are shown all the same."""
    offsite = cli.config.offsite
    if not offsite.enabled:
        return None
    status.offsite = {
        "region": offsite.region,
        "account": offsite.account if offsite.cross_account else None,
        "readable": True,
        "problem": None,
    }
    try:
        return cli.offsite_clients("status")
    except OffsiteUnreadable as err:
        status.offsite.update(readable=False, problem=str(err))
        status.problems.append(str(err))
        return None


def _copies_unread(cli: Cli, result: VerifyResult) -> bool:
    """Verify checked no copy although a copied kind has a backup at home: it could not read them."""
    return not result.offsite_checks and any(cli.config.offsite.copies(c.kind) for c in result.checks)


def gather(cli: Cli, now: datetime) -> Status:
    """Everything ``status`` shows; its problems are the weekly mail's (lambdas.common.week), with the
    alarms in ALARM now instead of the week's. With offsite copies, verify's checks of the copies run on
    the offsite region's clients (cli.aws stays the home region)."""
    aws, config = cli.aws, cli.config
    status = Status(generated_at=now)
    offsite = offsite_settings(config, aws.account) if config.offsite.enabled else None
    settings = ReportSettings(
        verify=VerifySettings(
            bucket=aws.bucket,
            selection=config.selection,
            retention=config.retention,
            dump_enabled=config.dump.enabled,
            targets=config.targets,
            timezone=config.timezone,
            language=config.language,
            offsite=offsite,
        ),
        topic_arn=_subscriptions(cli, status),
        alarm_prefix=aws.alarm_prefix,
        recipients=config.notification_emails,
        drill_enabled=config.restore_drill.enabled,
    )
    ec2, rds, s3, cloudwatch, sns = aws.ec2(), aws.rds(), aws.s3(), aws.cloudwatch(), aws.sns()
    clients = _offsite_clients(cli, status)
    result = run_checks(ec2, rds, s3, settings.verify, now, offsite=clients)
    if clients is not None and status.offsite is not None and _copies_unread(cli, result):
        status.offsite["readable"] = False  # verify's own problem says why (the region refused a read)
    _source_rows(result, status)
    silent = _verification(cli, now, status)
    alarms = now_in_alarm(cloudwatch, aws.alarm_prefix, now, config.language)
    report = build_health_report(
        ec2=ec2,
        rds=rds,
        s3=s3,
        cloudwatch=cloudwatch,
        sns=sns,
        settings=settings,
        now=now,
        result=result,
        alarms=alarms,
        unconfirmed=tuple(sub["address"] for sub in status.subscriptions if not sub["confirmed"]),
    )
    report = replace(report, verify_silent_days=silent, stack=aws.stack, region=aws.region_name)
    status.report = report
    status.findings = [asdict(f) for f in report.problems()]
    status.problems = [*status.problems, *report.todo()]
    status.alarms = [{"name": a.name, "since": a.when, "reason": a.reason} for a in alarms]
    _restore_test(report, status)
    status.drill = _drill(report, config.restore_drill.enabled)
    status.iam_review = _iam_review(report)
    _schedules(cli, now, status)
    return status


def _local(cli: Cli, when: datetime | None) -> str:
    if when is None:
        return "-"
    local = when.astimezone(cli.config.zone)
    weekday = say("status.weekdays", cli.config.language).split("|")[local.weekday()]
    return f"{weekday} {local:%d.%m.%Y %H:%M}"


def _age(entry: dict[str, Any], lang: str) -> str:
    return f"{age_text(entry['age_hours'], lang)} / {age_text(float(entry['target_hours']), lang)}"


def _offsite_cell(cli: Cli, status: Status, backup: dict[str, Any]) -> str:
    """The offsite copy of a kind in the table: its state and age / target ("-": the kind is not copied;
    "could not be read": it is, but the copies in the target account were not reached)."""
    lang, entry = cli.config.language, backup["offsite"]
    if entry is None:
        unread = status.offsite is not None and not status.offsite["readable"]
        return (
            cli.say("cli.offsite.unreadable") if unread and cli.config.offsite.copies(backup["kind"]) else "-"
        )
    state = say(f"status.state.{entry['state']}", lang) if entry["state"] else say("status.none", lang)
    verdict = "" if entry["ok"] else f", {say('mail.problem', lang)}"
    return f"{state}, {_age(entry, lang)}{verdict}"


def _offsite_where(cli: Cli) -> str:
    """The offsite column's place: the region, and the account of the copies when it is another one."""
    off = cli.config.offsite
    if not off.cross_account:
        return off.region
    return cli.say("cli.offsite.column_account", region=off.region, account=off.account)


def show(cli: Cli, status: Status, out: Output) -> None:
    lang, zone = cli.config.language, cli.config.timezone
    offsite = cli.config.offsite.enabled
    rows = []
    for source in status.sources:
        label = f"{source['name']} ({source['id']})" if source["name"] else source["id"]
        for b in source["backups"]:
            newest = b["newest"]
            rows.append(
                [
                    label,
                    say(f"kind.{b['kind']}", lang),
                    newest["id"] if newest else say("status.none", lang),
                    say(f"status.state.{b['state']}", lang) if b["state"] else "-",
                    _age(b, lang),
                    say("mail.ok" if b["ok"] else "mail.problem", lang),
                    *([_offsite_cell(cli, status, b)] if offsite else []),
                ]
            )
            label = ""
    out.table(
        say("status.backups", lang, stack=cli.aws.stack, region=cli.aws.region_name),
        [
            *say("status.columns", lang).split("|"),
            *([say("status.offsite_column", lang, region=_offsite_where(cli))] if offsite else []),
        ],
        rows,
    )
    v = status.verification
    last_verify = (
        say("status.verify_none", lang)
        if v.get("last_run") is None
        else say("status.verify_run", lang, when=_local(cli, v["last_run"]), n=v["failures"])
    )
    out.line(say("status.last_verify", lang, value=last_verify))
    r = status.restore_test
    last_restore = (
        say("status.restore_none", lang)
        if r.get("last_run") is None
        else say(
            "status.restore_run",
            lang,
            when=_local(cli, r["last_run"]),
            result=say("mail.passed" if r["passed"] else "mail.failed", lang),
            seconds=f"{r['duration_seconds']:.0f}",
        )
    )
    out.line(say("status.last_restore", lang, value=last_restore))
    if status.report is not None:
        out.line(say("status.last_drill", lang, value=drill_summary(status.report)))
        out.line(say("status.last_iam", lang, value=iam_summary(status.report.iam_review, lang)))
    names = ", ".join(a["name"] for a in status.alarms) or say("status.none", lang)
    out.line(say("status.in_alarm", lang, names=names))
    for sub in status.subscriptions:
        state = (
            "status.confirmed"
            if sub["confirmed"]
            else "status.not_confirmed"
            if sub["subscribed"]
            else "status.not_subscribed"
        )
        out.line(say("status.mail_to", lang, address=sub["address"], state=say(state, lang)))
    out.table(
        say("status.next_runs", lang, zone=zone),
        say("status.next_columns", lang).split("|"),
        [
            [s["job"], _local(cli, s["next_run"]) if s["deployed"] else say("status.not_deployed", lang)]
            for s in status.schedules
        ],
    )
    if not status.problems:
        out.line(say("status.all_good", lang), style="bold green")
        return
    found = status.report.problems() if status.report is not None else ()
    out.line(headline(status.report) if status.report is not None and found else "", style="bold red")
    extra = status.problems[: len(status.problems) - len(found)]  # the stack's own (no alarm topic)
    for problem in extra:
        out.line(f" - {problem}")
    for line in findings_text(found, lang):
        out.line(line)


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
