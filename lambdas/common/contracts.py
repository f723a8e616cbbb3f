"""What infra, the Lambdas, the dump script's readers and backupctl must agree on (DESIGN.md, Contracts).

Tags, names, prefixes, report keys, metric names, id patterns and the state vocabulary. Standard
library only: infra and the CLI import this module without boto3 or Powertools.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypedDict

MANAGED_BY_KEY: Final = "ManagedBy"
MANAGED_BY_VALUE: Final = "schoolbackup"
JOB_KEY: Final = "BackupJob"
SOURCE_KEY: Final = "BackupSource"
TAG_KEYS: Final = (MANAGED_BY_KEY, JOB_KEY, SOURCE_KEY)
# An offsite copy carries its original's tags plus this one: the ARN of the backup it was copied from.
COPIED_FROM_KEY: Final = "CopiedFrom"
COPY_TAG_KEYS: Final = (*TAG_KEYS, COPIED_FROM_KEY)

JOB_RDS: Final = "rds-daily"
JOB_AMI: Final = "ami-weekly"
JOB_DUMP: Final = "dump-daily"
JOB_DRILL: Final = "drill"

DEFAULT_STACK_NAME: Final = "SchoolBackup"
# The jobs the stack schedules that `backupctl run` can start (the drill's are DRILL_SCHEDULES).
SCHEDULED_JOBS: Final = (
    "dump",
    "rds_snapshot",
    "ami_backup",
    "prune",
    "verify",
    "restore_test",
    "report",
    "iam_review",
)
# The restore drill's schedules (with restore_drill.enabled): the state machine, its daily cleanup.
DRILL_SCHEDULES: Final = ("restore_drill", "drill_cleanup")
# The offsite copy job's schedule (with offsite.enabled): copies the newest RDS snapshots and AMIs.
OFFSITE_SCHEDULES: Final = ("offsite_copy",)
# The second stack, in the offsite region: the copy bucket and the offsite key.
OFFSITE_STACK_SUFFIX: Final = "-Offsite"
OFFSITE_KEY_ALIAS: Final = "alias/schoolbackup-offsite"
OFFSITE_REPLICATION_RULE: Final = "offsite-dumps"  # the home bucket's replication rule (its metrics' RuleId)
# Copies into another account (offsite.account): three roles there, ``<offsite.role_name>-<use>``, that
# the home stack's jobs assume: ``copy`` (the copy job: copy shared staging copies, tag them), ``prune``
# (delete copies by the offsite retention), ``read`` (verify, backupctl status: describe and list only).
OFFSITE_ROLE_NAME: Final = "schoolbackup-offsite"  # default of offsite.role_name (a name prefix)
OFFSITE_ROLE_USES: Final = ("copy", "prune", "read")
# A snapshot under aws/rds or aws/ebs cannot be shared with another account, and a shared encrypted
# snapshot cannot be copied into another region by the account it is shared with: the copy job first
# copies the original into the offsite region of the HOME account under the staging key (a customer key
# there that the target account may use), shares that staging copy, the target account copies it (same
# region) under its offsite key, and the copy job deletes the staging copy once that copy is usable.
STAGING_STACK_SUFFIX: Final = "-OffsiteStaging"  # the home account's stack in the offsite region
STAGING_KEY_ALIAS: Final = "alias/schoolbackup-offsite-staging"
STAGE_KEY: Final = "OffsiteStage"  # tag of a staging copy (besides the original's tags and CopiedFrom)
STAGE_STAGING: Final = "staging"
NAME_PREFIX: Final = "sb-"
DUMP_PREFIX: Final = "dumps"
REPORT_PREFIX: Final = "reports"
RESTORE_TEST_PREFIX: Final = f"{REPORT_PREFIX}/restore-tests"
WEEKLY_REPORT_PREFIX: Final = f"{REPORT_PREFIX}/weekly"
IAM_REVIEW_PREFIX: Final = f"{REPORT_PREFIX}/iam"
DRILL_PREFIX: Final = f"{REPORT_PREFIX}/drills"
# The restore drill's phases, in order (DESIGN.md, reports/drills/): what its report always lists.
DRILL_PHASES: Final = (
    "launch",
    "instance-running",
    "db-available",
    "app-check",
    "db-check",
    "dump-check",
    "teardown",
)
# A drill execution that ended without its Teardown state: EventBridge's event for it (infra/drill.py).
DRILL_STOPPED_EVENT: Final = "Step Functions Execution Status Change"
DRILL_STOPPED_STATUSES: Final = ("ABORTED", "TIMED_OUT")
DRILL_SLOT_KEY: Final = "DrillSlot"  # tag on everything one drill creates: which drill made it

_NAME_RE = re.compile(r"^sb-(?P<source>.+)-(?P<date>\d{8})-(?P<time>\d{4})$")

# Identifiers as AWS spells them (the configuration and the Lambda settings check them the same way).
EC2_INSTANCE_ID: Final = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
RDS_INSTANCE_ID: Final = re.compile(r"^[a-zA-Z](?:-?[a-zA-Z0-9]){0,62}$")
TAG_PART: Final = re.compile(r"^[\w .:/=+\-@]{1,128}$")
AWS_REGION: Final = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")


def backup_tags(job: str, source: str) -> dict[str, str]:
    """The tags every artifact carries."""
    return {MANAGED_BY_KEY: MANAGED_BY_VALUE, JOB_KEY: job, SOURCE_KEY: source}


class AwsTag(TypedDict, total=False):
    """One tag as the EC2 and RDS APIs take it (the boto3 stubs' TagTypeDef has the same shape)."""

    Key: str
    Value: str


def aws_tags(tags: Mapping[str, str]) -> list[AwsTag]:
    """``{"k": "v"}`` as the ``[{"Key": "k", "Value": "v"}]`` list the EC2 and RDS APIs take."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_dict(tags: Any) -> dict[str, str]:
    """AWS ``[{"Key": k, "Value": v}]`` lists (also the boto3 stubs' TagTypeDef lists) as a plain dict."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or []}


def bucket_name(account: str, region: str) -> str:
    """The backup bucket: ``schoolbackup-<account>-<region>``."""
    return f"schoolbackup-{account}-{region}"


def offsite_bucket_name(account: str, region: str) -> str:
    """The offsite copy bucket in the offsite region: ``schoolbackup-offsite-<account>-<region>``."""
    return f"schoolbackup-offsite-{account}-{region}"


def offsite_stack_name(stack: str) -> str:
    """The offsite stack of a home stack: ``<stack>-Offsite``."""
    return f"{stack}{OFFSITE_STACK_SUFFIX}"


def staging_stack_name(stack: str) -> str:
    """The staging stack of a home stack (copies into another account): ``<stack>-OffsiteStaging``."""
    return f"{stack}{STAGING_STACK_SUFFIX}"


def offsite_role_name(prefix: str, use: str) -> str:
    """A role in the target account: ``<prefix>-copy``, ``<prefix>-prune`` or ``<prefix>-read``."""
    if use not in OFFSITE_ROLE_USES:
        raise ValueError(f"unknown offsite role use {use!r} (one of {', '.join(OFFSITE_ROLE_USES)})")
    return f"{prefix}-{use}"


def offsite_role_arn(partition: str, account: str, prefix: str, use: str) -> str:
    """``arn:<partition>:iam::<account>:role/<prefix>-<use>``."""
    return f"arn:{partition}:iam::{account}:role/{offsite_role_name(prefix, use)}"


def job_resource_name(stack: str, job: str) -> str:
    """``<stack>-<job>`` with dashes (``SchoolBackup-restore-test``): a job's function and its schedule."""
    return f"{stack}-{job.replace('_', '-')}"


def alarm_topic_name(stack: str) -> str:
    """The SNS topic every alarm (and the plain-text weekly mail) goes to: ``<stack>-alarms``."""
    return f"{stack}-alarms"


def dump_log_group_name(stack: str) -> str:
    """The CloudWatch log group that holds the dump commands' output."""
    return f"/schoolbackup/{stack}/dump"


def alarm_prefix(stack: str) -> str:
    """Every alarm of the stack is named ``<stack>-<what>``."""
    return f"{stack}-"


def stack_of_alarm_prefix(prefix: str) -> str:
    """The stack's name from its alarm prefix (:func:`alarm_prefix`)."""
    return prefix.removesuffix("-") or DEFAULT_STACK_NAME


def is_managed(tags: Mapping[str, str]) -> bool:
    return tags.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE


def backup_name(source: str, when: datetime) -> str:
    """``sb-<source>-<YYYYMMDD>-<HHMM>`` in UTC."""
    return f"{NAME_PREFIX}{source}-{when.astimezone(UTC):%Y%m%d-%H%M}"


def parse_backup_name(name: str) -> tuple[str, datetime] | None:
    """(source, time) from a name made by :func:`backup_name`, or None for foreign names."""
    match = _NAME_RE.match(name)
    if not match:
        return None
    when = datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M").replace(tzinfo=UTC)
    return match["source"], when


def dump_day_prefix(source: str, day: datetime, prefix: str = DUMP_PREFIX) -> str:
    """``dumps/<source>/<YYYY>/<MM>/<DD>/`` for the UTC day of ``day``: one listing finds its dumps."""
    return f"{prefix}/{source}/{day.astimezone(UTC):%Y/%m/%d}/"


def dump_folder(source: str, when: datetime, prefix: str = DUMP_PREFIX) -> str:
    """``dumps/<source>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMZ>/``: the folder of the dump scheduled at ``when``."""
    return f"{dump_day_prefix(source, when, prefix)}{report_stamp(when)}/"


def report_stamp(when: datetime) -> str:
    """``YYYYMMDDTHHMMZ``: how reports are named after their scheduled time."""
    return f"{when.astimezone(UTC):%Y%m%dT%H%MZ}"


def parse_report_stamp(stamp: str) -> datetime:
    """The time a ``YYYYMMDDTHHMMZ`` stamp names (report_stamp's inverse); ValueError for anything else."""
    return datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def restore_test_record_key(when: datetime) -> str:
    """``reports/restore-tests/<YYYYMMDDTHHMMZ>.json``, named after the run's scheduled time."""
    return f"{RESTORE_TEST_PREFIX}/{report_stamp(when)}.json"


def weekly_report_record_key(when: datetime) -> str:
    """``reports/weekly/<YYYYMMDDTHHMMZ>.json``: the weekly mail of that scheduled time went out."""
    return f"{WEEKLY_REPORT_PREFIX}/{report_stamp(when)}.json"


def drill_record_key(when: datetime) -> str:
    """``reports/drills/<YYYYMMDDTHHMMZ>.json``, named after the drill's scheduled (or start) time."""
    return f"{DRILL_PREFIX}/{report_stamp(when)}.json"


def drill_db_identifier(slot: str, index: int) -> str:
    """``sb-drill-<slot>-<n>``: the temporary DB instance of a drill (RDS ids are lower case)."""
    return f"{NAME_PREFIX}drill-{slot.lower()}-{index}"


def iam_review_record_key(when: datetime) -> str:
    """``reports/iam/<YYYY-MM>.json``: the monthly IAM review of the UTC month of ``when``."""
    return f"{IAM_REVIEW_PREFIX}/{when.astimezone(UTC):%Y-%m}.json"


def previous_month(when: datetime) -> datetime:
    """A moment in the UTC month before the one of ``when`` (its last day, same time)."""
    return when.astimezone(UTC).replace(day=1) - timedelta(days=1)


class EventError(ValueError):
    """The invoking event is malformed."""


def parse_time(raw: str) -> datetime:
    """An ISO-8601 time (``Z`` or offset) as an aware UTC datetime."""
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time {raw!r} has no timezone")
    return parsed.astimezone(UTC)


def scheduled_time(event: Mapping[str, Any] | None, now: datetime | None = None) -> datetime:
    """The event's ``scheduled_time`` (set by EventBridge Scheduler), else the current time.

    Names derive from this time, so a retried or doubled invocation creates nothing twice.
    """
    raw = (event or {}).get("scheduled_time")
    if raw in (None, ""):
        return (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    if not isinstance(raw, str):
        raise EventError(f"event field scheduled_time must be an ISO-8601 string, got {raw!r}")
    try:
        return parse_time(raw).replace(second=0, microsecond=0)
    except ValueError:
        raise EventError(
            f"event field scheduled_time={raw!r} is not an ISO-8601 time like 2026-11-27T02:30:00Z"
        ) from None


def event_dry_run(event: Mapping[str, Any] | None) -> bool:
    """Prune's ``{"dry_run": true}``: return the plan, delete nothing."""
    raw = (event or {}).get("dry_run", False)
    if not isinstance(raw, bool):
        raise EventError(f"event field dry_run must be true or false, got {raw!r}")
    return raw


class State(enum.StrEnum):
    """One vocabulary for every part (DESIGN.md, "Backup states"); aws/states.py maps AWS states to it."""

    USABLE = "usable"  # restorable now
    PENDING = "pending"  # still being made: never deleted, not yet counted as good
    FAILED = "failed"  # never counted as good; prune may remove it after the policy's age


NAMESPACE: Final = "schoolbackup"

# Dimension names.
JOB: Final = "Job"  # rds-daily | ami-weekly
SOURCE: Final = "Source"  # instance or DB id
KIND: Final = "Kind"  # one of KINDS
REGION: Final = "Region"  # offsite copies only: the offsite region (home backups carry no Region)

KIND_RDS: Final = "rds"
KIND_AMI: Final = "ami"
KIND_DUMP: Final = "dump"
KINDS: Final = (KIND_DUMP, KIND_RDS, KIND_AMI)
JOB_OF_KIND: Final = {
    KIND_DUMP: "dump",
    KIND_RDS: "rds_snapshot",
    KIND_AMI: "ami_backup",
}  # the job making it
PRUNED_KINDS: Final = (KIND_RDS, KIND_AMI)  # dumps expire by the bucket lifecycle instead
COPIED_KINDS: Final = (KIND_RDS, KIND_AMI)  # by the offsite copy job; dumps by S3 replication

# Backup jobs (dimension JOB).
BACKUPS_CREATED: Final = "BackupsCreated"
BACKUPS_ALREADY_EXISTED: Final = "BackupsAlreadyExisted"
BACKUPS_FAILED: Final = "BackupsFailed"

# RDS manual snapshot quota (no dimension).
RDS_SNAPSHOTS_USED: Final = "RdsManualSnapshotsUsed"
RDS_SNAPSHOTS_QUOTA: Final = "RdsManualSnapshotsQuota"
RDS_SNAPSHOTS_PERCENT: Final = "RdsManualSnapshotQuotaPercent"

# Prune (dimension KIND).
PRUNE_DELETED: Final = "PruneDeleted"
PRUNE_KEPT: Final = "PruneKept"
PRUNE_FAILURES: Final = "PruneFailures"
PRUNE_REMAINING: Final = "PruneRemaining"

# Verify: per SOURCE+KIND, and the worst source per KIND (what the age alarms watch).
BACKUP_AGE_HOURS: Final = "NewestGoodBackupAgeHours"
WORST_BACKUP_AGE_HOURS: Final = "WorstNewestGoodBackupAgeHours"
# What the worst-age metric shows for a kind when some source has no good backup at all (~14 months):
# far above any target, so the age alarm fires.
NO_GOOD_BACKUP_AGE_HOURS: Final = 10_000.0
VERIFY_PASSED: Final = "VerificationPassed"  # 1 or 0 per SOURCE+KIND
VERIFY_FAILURES: Final = "VerificationFailures"  # count over all sources, no dimension

# Restore test (no dimension).
RESTORE_TEST_PASSED: Final = "RestoreTestPassed"
RESTORE_TEST_SECONDS: Final = "RestoreTestDurationSeconds"

# Restore drill (no dimension): what its alarms watch.
DRILL_PASSED: Final = "DrillPassed"  # 1 or 0 per drill
DRILL_RTO_MINUTES: Final = "DrillRtoMinutes"  # achieved RTO of a drill that restored the school
DRILL_RTO_EXCEEDED: Final = "DrillRtoExceeded"  # 1 when the achieved RTO was over the target (or unknown)
DRILL_LEFTOVERS: Final = "DrillLeftovers"  # drill resources the daily cleanup found and removed

# IAM review: findings per SEVERITY, and the high findings not in the previous month's review (no dimension).
SEVERITY: Final = "Severity"
SEVERITIES: Final = ("high", "medium", "low")
IAM_FINDINGS: Final = "IamFindings"
IAM_NEW_HIGH_FINDINGS: Final = "IamNewHighFindings"

# What destroys or alters a backup of this stack, by what it acts on. The IAM review asks AWS which
# principal of the account may do any of these (iam:SimulatePrincipalPolicy); tests/iam proves before
# deployment that no role of the stack may, except prune's own deletions (PRUNE_DESTROYS). Sharing a
# snapshot (rds/ec2:Modify*SnapshotAttribute) exposes a backup but neither deletes nor changes it: left out.
BACKUP_IMAGE: Final = "image"  # an AMI of schoolbackup
BACKUP_EBS_SNAPSHOT: Final = "ebs-snapshot"  # an EBS snapshot behind such an AMI
BACKUP_DB_SNAPSHOT: Final = "db-snapshot"  # an sb-* RDS snapshot
BACKUP_OBJECT: Final = "object"  # an object in the backup bucket (a dump, a record)
BACKUP_BUCKET_CONFIG: Final = "bucket"  # the backup bucket's policy, lifecycle, versioning, Object Lock
BACKUP_KEY: Final = "key"  # the KMS key that every backup object is encrypted with
BACKUP_DESTROYING_ACTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    BACKUP_IMAGE: ("ec2:DeregisterImage",),
    BACKUP_EBS_SNAPSHOT: ("ec2:DeleteSnapshot",),
    BACKUP_DB_SNAPSHOT: ("rds:DeleteDBSnapshot",),
    BACKUP_OBJECT: (
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:BypassGovernanceRetention",
        "s3:PutObjectRetention",
    ),
    BACKUP_BUCKET_CONFIG: (
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketVersioning",
        "s3:PutBucketObjectLockConfiguration",
    ),
    BACKUP_KEY: ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"),
}
# What the prune function deletes by design (only what carries ManagedBy=schoolbackup): the retention policy.
PRUNE_DESTROYS: Final = ("ec2:DeregisterImage", "ec2:DeleteSnapshot", "rds:DeleteDBSnapshot")
