"""Gathering the weekly health report: live checks, metric history, restore-test records, alarms, quota."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from lambdas.common import metric_names
from lambdas.common.naming import parse_time
from lambdas.common.rds_quota import read_snapshot_quota
from lambdas.common.retention import Backup, RetentionPolicy, State, apply_policy
from lambdas.common.settings import SettingsError, env_list, env_str
from lambdas.report.render import (
    BAD,
    GOOD,
    NONE,
    STRIP_DAYS,
    AlarmEvent,
    HealthReport,
    KindStatus,
    Quota,
    RestoreTestStatus,
    SourceStatus,
)
from lambdas.restore_test.restore import RECORD_PREFIX
from lambdas.verify.checks import Check
from lambdas.verify.handler import VerifySettings, run_checks

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client

WEEK: Final = timedelta(days=7)
LANGUAGES: Final = ("en", "de")


@dataclass(frozen=True)
class ReportSettings:
    verify: VerifySettings
    retention: RetentionPolicy
    language: str
    ses_sender: str | None
    recipients: tuple[str, ...]
    topic_arn: str
    alarm_prefix: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReportSettings:
        env = os.environ if environ is None else environ
        language = env.get("LANGUAGE", "").strip() or "en"
        if language not in LANGUAGES:
            raise SettingsError(f"environment variable LANGUAGE={language!r} must be en or de")
        sender = env.get("SES_SENDER", "").strip() or None
        recipients = env_list("NOTIFICATION_EMAILS", environ)
        if sender and not recipients:
            raise SettingsError("environment variable NOTIFICATION_EMAILS is empty but SES_SENDER is set")
        verify = VerifySettings.from_env(environ)
        return cls(
            verify=verify,
            retention=verify.retention,
            language=language,
            ses_sender=sender,
            recipients=recipients,
            topic_arn=env_str("ALARM_TOPIC_ARN", environ),
            alarm_prefix=env_str("ALARM_PREFIX", environ),
        )


def _policy_count(check: Check, policy: RetentionPolicy, now: datetime) -> tuple[int, int]:
    """(usable backups kept now, how many of them the retention policy keeps)."""
    backups = [Backup(b.id, check.source, check.kind, b.created, State(b.state)) for b in check.backups]
    keeps = sum(1 for d in apply_policy(backups, policy, now) if d.keep and d.backup.state is State.AVAILABLE)
    return sum(1 for b in backups if b.state is State.AVAILABLE), keeps


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
                    "Namespace": metric_names.NAMESPACE,
                    "MetricName": metric_names.VERIFY_PASSED,
                    "Dimensions": [
                        {"Name": metric_names.SOURCE, "Value": c.source},
                        {"Name": metric_names.KIND, "Value": c.kind},
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


def strip_of(days: dict[str, float], now: datetime) -> tuple[str, ...]:
    out = []
    for offset in range(STRIP_DAYS - 1, -1, -1):
        value = days.get(f"{now - timedelta(days=offset):%Y-%m-%d}")
        out.append(NONE if value is None else GOOD if value >= 1 else BAD)
    return tuple(out)


def last_restore_test(s3: S3Client, bucket: str, now: datetime) -> RestoreTestStatus | None:
    """The newest record under reports/restore-tests/ (this year or last)."""
    keys: list[str] = []
    for year in (now.year, now.year - 1):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{RECORD_PREFIX}/{year}/")
        keys += [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".json")]
        if keys:
            break
    if not keys:
        return None
    key = max(keys)
    record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return RestoreTestStatus(
        when=parse_time(str(record["started_at"])),
        passed=bool(record.get("passed")),
        duration_seconds=float(record.get("duration_seconds", 0.0)),
        dump=record.get("dump"),
        problems=tuple(record.get("problems", [])),
    )


def alarms_this_week(cloudwatch: CloudWatchClient, prefix: str, now: datetime) -> list[AlarmEvent]:
    """Transitions into ALARM in the last 7 days of alarms whose name starts with ``prefix``."""
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
            events.append(AlarmEvent(name, item["Timestamp"], str(new_state.get("stateReason", ""))))
    return sorted(events, key=lambda e: e.when)


def gather(
    *,
    ec2: EC2Client,
    rds: RDSClient,
    s3: S3Client,
    cloudwatch: CloudWatchClient,
    settings: ReportSettings,
    now: datetime,
) -> HealthReport:
    result = run_checks(ec2, rds, s3, settings.verify, now)
    history = verify_history(cloudwatch, result.checks, now)
    sources: dict[str, list[KindStatus]] = {}
    databases: set[str] = set()
    for check in result.checks:
        kept = policy = None
        if check.kind != metric_names.KIND_DUMP:  # dumps expire by the bucket lifecycle, not by prune
            kept, policy = _policy_count(check, settings.retention, now)
        days = history.get((check.source, check.kind), {})
        last_day = max(days) if days else None
        good = check.newest_good
        sources.setdefault(check.source, []).append(
            KindStatus(
                kind=check.kind,
                ok=check.ok,
                target_hours=check.target_hours,
                newest_good=good.id if good else None,
                newest_good_time=good.created if good else None,
                age_hours=check.age_hours,
                problems=tuple(check.problems),
                kept=kept,
                policy_keeps=policy,
                strip=strip_of(days, now),
                last_verified=datetime.fromisoformat(last_day).replace(tzinfo=UTC) if last_day else None,
                last_verify_ok=(days[last_day] >= 1) if last_day else None,
            )
        )
        if check.kind == metric_names.KIND_RDS:
            databases.add(check.source)
    quota = read_snapshot_quota(rds)
    notes = tuple(p for p in result.problems if not any(p in c.problems for c in result.checks)) + tuple(
        n for c in result.checks for n in c.notes
    )
    return HealthReport(
        generated_at=now,
        language=settings.language,
        sources=tuple(
            SourceStatus(source, source in databases, tuple(kinds))
            for source, kinds in sorted(sources.items())
        ),
        restore_test=last_restore_test(s3, settings.verify.bucket, now),
        alarms=tuple(alarms_this_week(cloudwatch, settings.alarm_prefix, now)),
        quota=Quota(quota.used, quota.limit) if quota else None,
        notes=notes,
    )
