"""The weekly health mail: live checks, metric history, the restore-test record, alarms, quota; sent once.

The report describes the state at its scheduled time and is sent once per scheduled time: after the
mail is out, a small record ``reports/weekly/<YYYYMMDDTHHMMZ>.json`` says so, and a repeated run for
the same time finds it and sends nothing. By SES (HTML and text) when a sender is configured, else as
plain text through the alarm topic; an SES sender that cannot send falls back to the topic, with a note.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from lambdas.common import contracts
from lambdas.common.aws.errors import error_text
from lambdas.common.aws.mail import SesNotReady, publish_to_topic, send_by_ses
from lambdas.common.aws.quota import read_snapshot_quota
from lambdas.common.aws.records import newest_record, read_record, write_record_once
from lambdas.common.aws.subscriptions import mail_subscriptions
from lambdas.common.contracts import (
    DRILL_PREFIX,
    IAM_REVIEW_PREFIX,
    RESTORE_TEST_PREFIX,
    State,
    drill_record_key,
    iam_review_record_key,
    parse_report_stamp,
    parse_time,
    report_stamp,
)
from lambdas.common.jobs.prune import PlanItem
from lambdas.common.jobs.prune import plan as retention_plan
from lambdas.common.jobs.verify import Check, VerifyResult, run_checks
from lambdas.common.messages import say
from lambdas.common.observability import logger
from lambdas.common.rendering import render_html, render_text, subject
from lambdas.common.settings import ReportSettings
from lambdas.common.week import (
    BAD,
    GOOD,
    NONE,
    STRIP_DAYS,
    VERIFY_SILENT_DAYS,
    AlarmEvent,
    DrillStatus,
    HealthReport,
    IamFindingLine,
    IamReviewStatus,
    KindStatus,
    Quota,
    RestoreTestStatus,
    SourceStatus,
    alarm_reason,
    merge_alarm_events,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

    from lambdas.common.aws.clients import RegionClients

WEEK: Final = timedelta(days=7)


def retention_counts(items: list[PlanItem]) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (source, kind), from prune's own plan: (usable backups there now, how many of them it keeps)."""
    usable: Counter[tuple[str, str]] = Counter()
    kept: Counter[tuple[str, str]] = Counter()
    for item in items:
        if item.source is None or item.backup_state is not State.USABLE:
            continue
        usable[(item.source, item.kind)] += 1
        kept[(item.source, item.kind)] += not item.delete
    return {key: (usable[key], kept[key]) for key in usable}


def verify_history(
    cloudwatch: CloudWatchClient, checks: list[Check], now: datetime
) -> dict[tuple[str, str], dict[str, float]]:
    """Per (source, kind): {"YYYY-MM-DD": minimum of VerificationPassed that day} for the last 30 days."""
    start = (now - timedelta(days=STRIP_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    queries: list[MetricDataQueryTypeDef] = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": contracts.NAMESPACE,
                    "MetricName": contracts.VERIFY_PASSED,
                    "Dimensions": [
                        {"Name": contracts.SOURCE, "Value": c.source},
                        {"Name": contracts.KIND, "Value": c.kind},
                    ],
                },
                "Period": 86400,
                "Stat": "Minimum",
            },
            "ReturnData": True,
        }
        for i, c in enumerate(checks)
    ]
    found: dict[tuple[str, str], dict[str, float]] = {(c.source, c.kind): {} for c in checks}
    for offset in range(0, len(queries), 500):
        batch = queries[offset : offset + 500]
        for page in cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=batch, StartTime=start, EndTime=now
        ):
            for series in page.get("MetricDataResults", []):
                check = checks[int(series["Id"][1:])]
                days = found[(check.source, check.kind)]
                for stamp, value in zip(series.get("Timestamps", []), series.get("Values", []), strict=False):
                    day = f"{stamp.astimezone(UTC):%Y-%m-%d}"
                    days[day] = min(value, days.get(day, value))
    return found


def daily_strip(days: dict[str, float], now: datetime) -> tuple[str, ...]:
    """One of GOOD/BAD/NONE per day of the last 30, oldest first."""
    out = []
    for offset in range(STRIP_DAYS - 1, -1, -1):
        value = days.get(f"{now - timedelta(days=offset):%Y-%m-%d}")
        out.append(NONE if value is None else GOOD if value >= 1 else BAD)
    return tuple(out)


def last_restore_test(s3: S3Client, bucket: str, now: datetime) -> RestoreTestStatus | None:
    """The newest record under reports/restore-tests/ from before ``now`` (names sort by time)."""
    found = newest_record(s3, bucket, RESTORE_TEST_PREFIX, f"{RESTORE_TEST_PREFIX}/{report_stamp(now)}.json")
    if found is None:
        return None
    key, record = found
    return RestoreTestStatus(
        when=parse_time(str(record["started_at"])),
        passed=bool(record.get("passed")),
        duration_seconds=float(record.get("duration_seconds", 0.0)),
        dump=record.get("dump"),
        problems=tuple(record.get("problems", [])),
        record=key,
    )


def last_iam_review(s3: S3Client, bucket: str, now: datetime) -> IamReviewStatus | None:
    """The newest record under reports/iam/ up to the month of ``now`` (names sort by month)."""
    found = newest_record(s3, bucket, IAM_REVIEW_PREFIX, iam_review_record_key(now))
    if found is None:
        return None
    key, record = found
    findings = [f for f in record.get("findings", []) if isinstance(f, dict)]
    new = {(str(n.get("kind")), str(n.get("principal"))) for n in record.get("new_high", [])}

    def line(f: dict[str, Any]) -> IamFindingLine:
        return IamFindingLine(str(f.get("kind")), str(f.get("principal")), str(f.get("detail", "")))

    high = [f for f in findings if f.get("severity") == "high"]
    return IamReviewStatus(
        month=str(record.get("month", key.rsplit("/", 1)[-1].removesuffix(".json"))),
        record=key,
        counts={k: int(v) for k, v in dict(record.get("counts", {})).items()},
        high=tuple(line(f) for f in high),
        new_high=tuple(line(f) for f in high if (f.get("kind"), f.get("principal")) in new),
    )


def last_drill(s3: S3Client, bucket: str, now: datetime) -> DrillStatus | None:
    """The newest record under reports/drills/ from before ``now`` (names sort by time). A record the
    report cannot read is a failed drill that names it: one bad file must not stop the weekly mail."""
    found = newest_record(s3, bucket, DRILL_PREFIX, drill_record_key(now))
    if found is None:
        return None
    key, record = found
    try:
        rto = record.get("rto_minutes")
        return DrillStatus(
            when=parse_time(str(record["started_at"])),
            passed=record.get("result") == "passed",
            rto_minutes=float(rto) if isinstance(rto, int | float) else None,
            rto_target_minutes=int(record["rto_target_minutes"]),
            record=key,
            failed_phases=tuple(
                (str(p["name"]), str(p.get("detail", "")))
                for p in record.get("phases", [])
                if not p.get("ok")
            ),
            leftovers=tuple(str(x) for x in record.get("leftovers", [])),
            error=str(record.get("error", "")),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        logger.warning("drill record unreadable", extra={"key": key, "error": repr(err)})
        stamp = key.rsplit("/", 1)[-1].removesuffix(".json")
        try:
            when = parse_report_stamp(stamp)
        except ValueError:
            when = now
        return DrillStatus(
            when=when,
            passed=False,
            rto_minutes=None,
            rto_target_minutes=0,
            record=key,
            error=f"{key} is not a drill record this report can read ({err!r})",
        )


def alarms_this_week(
    cloudwatch: CloudWatchClient, prefix: str, now: datetime, language: str = "en"
) -> list[AlarmEvent]:
    """Transitions into ALARM in the last 7 days of alarms whose name starts with ``prefix``, each with
    its reason in plain words (from the alarm's state change, not CloudWatch's template)."""
    events: list[AlarmEvent] = []
    pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
        HistoryItemType="StateUpdate", StartDate=now - WEEK, EndDate=now, ScanBy="TimestampDescending"
    )
    for page in pages:
        for item in page.get("AlarmHistoryItems", []):
            name = item.get("AlarmName", "")
            if not name.startswith(prefix):
                continue
            try:
                data = json.loads(item.get("HistoryData", "{}"))
            except ValueError:
                continue
            new_state = data.get("newState", {})
            if new_state.get("stateValue") != "ALARM":
                continue
            reason = alarm_reason(name, prefix, new_state, language)
            events.append(AlarmEvent(name, item["Timestamp"], reason))
    return sorted(events, key=lambda e: e.when)


def now_in_alarm(
    cloudwatch: CloudWatchClient, prefix: str, now: datetime, language: str
) -> tuple[AlarmEvent, ...]:
    """The stack's alarms in ALARM now, as events of the time they went off (backupctl status)."""
    events = [
        AlarmEvent(
            name,
            state["since"] if isinstance(state["since"], datetime) else now,
            alarm_reason(name, prefix, state, language),
            still_in_alarm=True,
        )
        for name, state in alarms_in_alarm(cloudwatch, prefix).items()
    ]
    return tuple(sorted(events, key=lambda e: e.when))


def alarms_in_alarm(cloudwatch: CloudWatchClient, prefix: str) -> dict[str, dict[str, Any]]:
    """The stack's alarms in ALARM now, by name: their state, for the week's events and backupctl."""
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, StateValue="ALARM")
    found: dict[str, dict[str, Any]] = {}
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            found[alarm["AlarmName"]] = {
                "stateReason": alarm.get("StateReason", ""),
                "stateReasonData": alarm.get("StateReasonData", ""),
                "since": alarm.get("StateUpdatedTimestamp"),
            }
    return found


def week_alarms(
    cloudwatch: CloudWatchClient, prefix: str, now: datetime, language: str
) -> tuple[AlarmEvent, ...]:
    """One entry per alarm that went off this week or is in ALARM now, with whether it still is."""
    now_in_alarm = alarms_in_alarm(cloudwatch, prefix)
    events = alarms_this_week(cloudwatch, prefix, now, language)
    seen = {e.name for e in events}
    for name, state in now_in_alarm.items():  # in ALARM since before the week: still a problem
        if name not in seen:
            since = state["since"] if isinstance(state["since"], datetime) else now
            events.append(AlarmEvent(name, since, alarm_reason(name, prefix, state, language)))
    return merge_alarm_events(events, set(now_in_alarm))


def _silent_days(history: dict[tuple[str, str], dict[str, float]], now: datetime) -> int:
    """Days since the daily check last reported, when that is VERIFY_SILENT_DAYS or more; else 0."""
    days = {day for series in history.values() for day in series}
    if not history:
        return 0  # nothing is checked: the selection problem says so
    recent = {f"{now - timedelta(days=d):%Y-%m-%d}" for d in range(VERIFY_SILENT_DAYS)}
    if days & recent:
        return 0
    if not days:
        return STRIP_DAYS
    newest = datetime.fromisoformat(max(days)).replace(tzinfo=UTC)
    return max(VERIFY_SILENT_DAYS, (now - newest).days)


def kind_status(
    check: Check,
    *,
    strip: tuple[str, ...],
    last_verified: datetime | None,
    last_verify_ok: bool | None,
    kept: int | None = None,
    policy_keeps: int | None = None,
) -> KindStatus:
    """One row of the week: verify's check of a (source, kind), with its history and what prune keeps."""
    good = check.newest_good
    return KindStatus(
        kind=check.kind,
        ok=check.ok,
        target_hours=check.target_hours,
        newest_good=good.id if good else None,
        newest_good_time=good.created if good else None,
        age_hours=check.age_hours,
        issues=tuple(check.issues),
        kept=kept,
        policy_keeps=policy_keeps,
        strip=strip,
        last_verified=last_verified,
        last_verify_ok=last_verify_ok,
    )


def build_health_report(
    *,
    ec2: EC2Client,
    rds: RDSClient,
    s3: S3Client,
    cloudwatch: CloudWatchClient,
    sns: SNSClient,
    settings: ReportSettings,
    now: datetime,
    result: VerifyResult | None = None,
    alarms: tuple[AlarmEvent, ...] | None = None,
    unconfirmed: tuple[str, ...] | None = None,
    offsite: RegionClients | None = None,
) -> HealthReport:
    """The report as data: verify's checks, 30 days of their history, prune's plan, records, alarms,
    and whether every alarm address still gets the alarms. ``result`` (verify's checks) and ``alarms``
    may come from the caller (backupctl status shows the alarms in ALARM now, not the week's), and so may
    ``unconfirmed`` (status has read the subscriptions already). ``offsite``: the offsite region's clients
    (with offsite copies), whose checks' problems the mail lists."""
    if result is None:
        result = run_checks(ec2, rds, s3, settings.verify, now, offsite=offsite)
    history = verify_history(cloudwatch, result.checks, now)
    _, items = retention_plan(ec2, rds, settings.retention, now)
    counts = retention_counts(items)
    sources: dict[str, list[KindStatus]] = {}
    databases: set[str] = set()
    for check in result.checks:
        kept = policy = None
        if check.kind in contracts.PRUNED_KINDS:  # dumps expire by the bucket lifecycle, not by prune
            kept, policy = counts.get((check.source, check.kind), (0, 0))
        days = history.get((check.source, check.kind), {})
        last_day = max(days) if days else None
        sources.setdefault(check.source, []).append(
            kind_status(
                check,
                strip=daily_strip(days, now),
                last_verified=datetime.fromisoformat(last_day).replace(tzinfo=UTC) if last_day else None,
                last_verify_ok=(days[last_day] >= 1) if last_day else None,
                kept=kept,
                policy_keeps=policy,
            )
        )
        if check.kind == contracts.KIND_RDS:
            databases.add(check.source)
    quota = read_snapshot_quota(rds)
    return HealthReport(
        generated_at=now,
        language=settings.language,
        sources=tuple(
            SourceStatus(source, source in databases, tuple(kinds), result.names.get(source, ""))
            for source, kinds in sorted(sources.items())
        ),
        restore_test=last_restore_test(s3, settings.verify.bucket, now),
        alarms=week_alarms(cloudwatch, settings.alarm_prefix, now, settings.language)
        if alarms is None
        else alarms,
        quota=Quota(quota.used, quota.limit) if quota else None,
        notes=tuple(n for c in result.checks for n in c.notes),
        unconfirmed=_unconfirmed(sns, settings) if unconfirmed is None else unconfirmed,
        timezone=settings.verify.timezone,
        selection_problems=tuple(result.general),
        offsite_problems=tuple(result.offsite_problems),
        offsite_region=settings.verify.offsite.region if settings.verify.offsite else "",
        selection_tag=result.selection_tag,
        verify_silent_days=_silent_days(history, now),
        stack=contracts.stack_of_alarm_prefix(settings.alarm_prefix),
        region=cloudwatch.meta.region_name or "",
        topic_arn=settings.topic_arn,
        alarm_prefix=settings.alarm_prefix,
        iam_review=last_iam_review(s3, settings.verify.bucket, now),
        drill=last_drill(s3, settings.verify.bucket, now),
        drill_enabled=settings.drill_enabled,
    )


def _unconfirmed(sns: SNSClient, settings: ReportSettings) -> tuple[str, ...]:
    if not settings.topic_arn:
        return ()
    try:
        subscriptions = mail_subscriptions(sns, settings.topic_arn, settings.recipients)
    except ClientError as err:  # the mail goes out anyway; the log says why this part is missing
        logger.warning("could not read the alarm subscriptions", extra={"error": error_text(err)})
        return ()
    return tuple(s.address for s in subscriptions if not s.confirmed)


@dataclass(frozen=True)
class Sent:
    channel: str  # ses | sns
    message_id: str
    report: HealthReport  # as sent (an SES refusal adds a note)


def send(report: HealthReport, settings: ReportSettings, ses: SESV2Client, sns: SNSClient) -> Sent:
    """By SES when a sender is configured; else, or when SES refuses the sender, through the topic."""
    if settings.ses_sender:
        try:
            message_id = send_by_ses(
                ses,
                settings.ses_sender,
                settings.recipients,
                subject=subject(report),
                text=render_text(report),
                html=render_html(report),
            )
            return Sent("ses", message_id, report)
        except SesNotReady as refused:
            logger.error("SES refused the report; sending it by SNS", extra={"code": refused.code})
            note = say("mail.ses_refused", report.language, sender=refused.sender, code=refused.code)
            report = replace(report, notes=(*report.notes, note))
    message_id = publish_to_topic(sns, settings.topic_arn, subject(report), render_text(report))
    return Sent("sns", message_id, report)


@dataclass(frozen=True)
class ReportResult:
    key: str
    record: dict[str, Any]
    sent: bool  # False: the mail of this scheduled time had been sent by an earlier run

    def as_dict(self) -> dict[str, Any]:
        return {**self.record, "repeated": not self.sent}


def send_weekly_report(
    *,
    ec2: EC2Client,
    rds: RDSClient,
    s3: S3Client,
    cloudwatch: CloudWatchClient,
    ses: SESV2Client,
    sns: SNSClient,
    settings: ReportSettings,
    now: datetime,
    offsite: RegionClients | None = None,
) -> ReportResult:
    """Build and send the report of scheduled time ``now``, unless that mail went out already."""
    bucket, key = settings.verify.bucket, contracts.weekly_report_record_key(now)
    earlier = read_record(s3, bucket, key)
    if earlier is not None:
        logger.info("the report of this scheduled time was sent already", extra={"record": key})
        return ReportResult(key, earlier, sent=False)
    report = build_health_report(
        ec2=ec2, rds=rds, s3=s3, cloudwatch=cloudwatch, sns=sns, settings=settings, now=now, offsite=offsite
    )
    sent = send(report, settings, ses, sns)
    record = {
        "scheduled_time": f"{now:%Y-%m-%dT%H:%M:%SZ}",
        "channel": sent.channel,
        "message_id": sent.message_id,
        "subject": subject(sent.report),
        "ok": sent.report.ok,
        "problems": sent.report.todo(),
        "causes": [f.cause for f in sent.report.problems()],
        "alarms": len(sent.report.alarms),
    }
    if not write_record_once(s3, bucket, key, record):
        logger.warning("a second run sent the report of this time as well", extra={"record": key})
    logger.info("health report sent", extra=record)
    return ReportResult(key, record, sent=True)
