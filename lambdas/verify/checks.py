"""Is there a good, fresh backup of every selected source? (used by verify and by the weekly report)

Sources are the EC2 and RDS instances selected by the selection tag (or listed by id). Kinds:
``dump`` and ``ami`` for EC2 instances (a dump's source is the server's instance id), ``rds`` for RDS
instances. For each (source, kind) the newest backup is found and checked:

- rds: a manual snapshot tagged ManagedBy=schoolbackup and BackupSource=<db>, status ``available``;
- ami: an image with the same tags, state ``available`` and every EBS snapshot ``completed``
  (one DescribeSnapshots for all images);
- dump: ``manifest.json`` present, valid, status ok, and every listed object present with the listed
  size (one ListObjectsV2 per source and day, no HEAD per object).

A check fails with a sentence naming source, kind and what is wrong: no backup at all, the newest
backup failed, or the newest *good* backup older than the target.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from lambdas.common.manifest import Manifest, ManifestError, days_back, list_dump_day, read_manifest
from lambdas.common.metric_names import KIND_AMI, KIND_DUMP, KIND_RDS
from lambdas.common.naming import (
    JOB_AMI,
    JOB_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    SOURCE_KEY,
    parse_backup_name,
    parse_time,
)
from lambdas.common.retention import RetentionPolicy
from lambdas.common.settings import SelectionTag, tag_dict

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, ImageTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBSnapshotTypeDef
    from mypy_boto3_s3 import S3Client

AVAILABLE: Final = "available"
PENDING: Final = "pending"
FAILED: Final = "failed"

KIND_LABEL: Final = {KIND_DUMP: "dump", KIND_RDS: "RDS snapshot", KIND_AMI: "AMI"}
_RDS_PENDING: Final = ("creating", "pending")
PRUNE_GRACE_DAYS: Final = 1
_EC2_LIVE_STATES: Final = ["pending", "running", "stopping", "stopped"]


def _fmt(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class Found:
    """One backup as the check sees it; ``detail`` says why it is not usable.

    ``note`` is for a usable backup with something the admin should know (not an alarm).
    """

    id: str
    created: datetime
    state: str  # available | pending | failed
    detail: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": f"{self.created.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            "state": self.state,
            **({"detail": self.detail} if self.detail else {}),
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class Check:
    source: str
    kind: str
    target_hours: int
    now: datetime
    backups: list[Found] = field(default_factory=list)  # newest first
    problems: list[str] = field(default_factory=list)
    searched: str = ""  # for "no backup found": where we looked

    @property
    def newest(self) -> Found | None:
        return self.backups[0] if self.backups else None

    @property
    def newest_good(self) -> Found | None:
        return next((b for b in self.backups if b.state == AVAILABLE), None)

    @property
    def notes(self) -> list[str]:
        """What the admin should know about the newest good backup; never an alarm."""
        good = self.newest_good
        if good is None or not good.note:
            return []
        return [f"{KIND_LABEL[self.kind]} of {self.source}: the newest good backup {good.id} {good.note}"]

    @property
    def age_hours(self) -> float | None:
        good = self.newest_good
        if good is None:
            return None
        return max(0.0, (self.now - good.created).total_seconds() / 3600)

    @property
    def ok(self) -> bool:
        return not self.problems

    def evaluate(self) -> Check:
        """Fill ``problems`` from ``backups``; call once the backups are known."""
        self.backups.sort(key=lambda b: (b.created, b.id), reverse=True)
        what = f"{KIND_LABEL[self.kind]} of {self.source}"
        newest, good, age = self.newest, self.newest_good, self.age_hours
        if newest is None:
            self.problems.append(f"{what}: no backup found{self.searched}.")
            return self
        if newest.state == FAILED:
            self.problems.append(
                f"{what}: the newest backup {newest.id} ({_fmt(newest.created)}) {newest.detail}."
            )
        if good is None:
            self.problems.append(f"{what}: none of the {len(self.backups)} backups found is usable.")
        elif age is not None and age > self.target_hours:
            self.problems.append(
                f"{what}: the newest good backup {good.id} is {age:.0f} hours old "
                f"({_fmt(good.created)}); the target is at most {self.target_hours} hours."
            )
        return self

    def check_pruned(self, policy: RetentionPolicy) -> Check:
        """Prune's dead-man check: usable backups past MAX_AGE_DAYS beyond the newest MIN_KEEP should be gone.

        Prune runs daily before verify, so one day of grace; dumps expire by the bucket lifecycle instead.
        """
        if self.kind == KIND_DUMP:
            return self
        usable = [b for b in self.backups if b.state == AVAILABLE]  # newest first (evaluate sorted them)
        limit = self.now - timedelta(days=policy.max_age_days + PRUNE_GRACE_DAYS)
        overdue = [b for b in usable[policy.min_keep :] if b.created < limit]
        if overdue:
            oldest = overdue[-1]
            self.problems.append(
                f"{KIND_LABEL[self.kind]} of {self.source}: {len(overdue)} backup(s) older than "
                f"{policy.max_age_days} days are still there (oldest {oldest.id}, {_fmt(oldest.created)}); "
                "the prune job should have removed them. Is it running? Look at its log."
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        age = self.age_hours
        return {
            "source": self.source,
            "kind": self.kind,
            "ok": self.ok,
            "target_hours": self.target_hours,
            "age_hours": None if age is None else round(age, 2),
            "newest": self.newest.as_dict() if self.newest else None,
            "newest_good": self.newest_good.as_dict() if self.newest_good else None,
            "count": len(self.backups),
            "problems": list(self.problems),
            "notes": self.notes,
        }


# --- sources ----------------------------------------------------------------------------------------


def selected_ec2(ec2: EC2Client, selection: SelectionTag, listed: Iterable[str] = ()) -> list[str]:
    """Instance ids (not terminated) carrying the selection tag, plus those listed by id."""
    state: FilterTypeDef = {"Name": "instance-state-name", "Values": _EC2_LIVE_STATES}
    queries: list[list[FilterTypeDef]] = [
        [{"Name": f"tag:{selection.key}", "Values": [selection.value]}, state]
    ]
    ids = list(listed)
    if ids:
        queries.append([{"Name": "instance-id", "Values": ids}, state])
    found: set[str] = set(ids)
    for filters in queries:
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                found.update(i["InstanceId"] for i in reservation.get("Instances", []))
    return sorted(found)


def selected_rds(rds: RDSClient, selection: SelectionTag, listed: Iterable[str] = ()) -> list[str]:
    """DB instance ids carrying the selection tag, plus those listed by id."""
    found: set[str] = set(listed)
    for page in rds.get_paginator("describe_db_instances").paginate():
        for instance in page.get("DBInstances", []):
            if selection.matches(tag_dict(instance.get("TagList"))):
                found.add(instance["DBInstanceIdentifier"])
    return sorted(found)


# --- rds ----------------------------------------------------------------------------------------------


def _snapshot_time(snap: DBSnapshotTypeDef) -> datetime | None:
    created = snap.get("SnapshotCreateTime")
    if created is not None:
        return created.astimezone(UTC)
    parsed = parse_backup_name(snap.get("DBSnapshotIdentifier", ""))
    return parsed[1] if parsed else None


def rds_backups(rds: RDSClient) -> dict[str, list[Found]]:
    """Every schoolbackup manual snapshot, by BackupSource."""
    by_source: dict[str, list[Found]] = defaultdict(list)
    for page in rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual"):
        for snap in page.get("DBSnapshots", []):
            tags = tag_dict(snap.get("TagList"))
            source = tags.get(SOURCE_KEY)
            created = _snapshot_time(snap)
            if tags.get(MANAGED_BY_KEY) != MANAGED_BY_VALUE or not source or created is None:
                continue
            status = snap.get("Status", "unknown")
            if status == AVAILABLE:
                found = Found(snap["DBSnapshotIdentifier"], created, AVAILABLE)
            elif status in _RDS_PENDING:
                found = Found(snap["DBSnapshotIdentifier"], created, PENDING, f"is still {status}")
            else:
                found = Found(snap["DBSnapshotIdentifier"], created, FAILED, f"has status {status!r}")
            by_source[source].append(found)
    return by_source


def check_rds(rds: RDSClient, sources: Iterable[str], target_hours: int, now: datetime) -> list[Check]:
    found = rds_backups(rds)
    return [
        Check(source, KIND_RDS, target_hours, now, backups=list(found.get(source, []))).evaluate()
        for source in sources
    ]


# --- ami ----------------------------------------------------------------------------------------------


def _image_snapshots(image: ImageTypeDef) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if "Ebs" in m and m["Ebs"].get("SnapshotId")
    ]


def _snapshot_states(ec2: EC2Client, snapshot_ids: list[str]) -> dict[str, str]:
    """State of each snapshot in ONE call (paginated only beyond 1000); a filter, not SnapshotIds, so a
    deleted snapshot is simply absent instead of failing the whole call."""
    states: dict[str, str] = {}
    if not snapshot_ids:
        return states
    pages = ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": snapshot_ids}]
    )
    for snap_page in pages:
        states.update({s["SnapshotId"]: s.get("State", "unknown") for s in snap_page.get("Snapshots", [])})
    return states


def _image_found(image: ImageTypeDef, created: datetime, states: dict[str, str]) -> Found:  # noqa: PLR0911 - one return per verdict
    name = image.get("Name", image["ImageId"])
    state = image.get("State", "unknown")
    if state == PENDING:
        return Found(name, created, PENDING, "is still pending")
    if state != AVAILABLE:
        return Found(name, created, FAILED, f"has state {state!r}")
    snapshots = _image_snapshots(image)
    missing = [s for s in snapshots if s not in states]
    unfinished = {s: states[s] for s in snapshots if s in states and states[s] != "completed"}
    if not snapshots:
        return Found(name, created, FAILED, "has no EBS snapshot")
    if missing:
        return Found(name, created, FAILED, f"is missing its EBS snapshot(s) {', '.join(missing)}")
    if any(s == "error" for s in unfinished.values()):
        return Found(name, created, FAILED, "has failed EBS snapshot(s) " + ", ".join(sorted(unfinished)))
    if unfinished:
        return Found(
            name, created, PENDING, "has EBS snapshot(s) still " + ", ".join(sorted(set(unfinished.values())))
        )
    return Found(name, created, AVAILABLE)


def ami_backups(ec2: EC2Client) -> dict[str, list[Found]]:
    """Every schoolbackup AMI by BackupSource; an available AMI is good only if all its snapshots are."""
    images: list[ImageTypeDef] = []
    filters: list[FilterTypeDef] = [
        {"Name": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]},
        {"Name": f"tag:{JOB_KEY}", "Values": [JOB_AMI]},
    ]
    for page in ec2.get_paginator("describe_images").paginate(Owners=["self"], Filters=filters):
        images.extend(page.get("Images", []))
    wanted = sorted({s for i in images if i.get("State") == AVAILABLE for s in _image_snapshots(i)})
    states = _snapshot_states(ec2, wanted)
    by_source: dict[str, list[Found]] = defaultdict(list)
    for image in images:
        source = tag_dict(image.get("Tags")).get(SOURCE_KEY)
        raw_created = image.get("CreationDate")
        if source and raw_created:
            created = parse_time(raw_created)
            by_source[source].append(_image_found(image, created, states))
    return by_source


def check_amis(ec2: EC2Client, sources: Iterable[str], target_hours: int, now: datetime) -> list[Check]:
    found = ami_backups(ec2)
    return [
        Check(source, KIND_AMI, target_hours, now, backups=list(found.get(source, []))).evaluate()
        for source in sources
    ]


# --- dump ---------------------------------------------------------------------------------------------


def dump_lookback_days(target_hours: int) -> int:
    """Days to search for the newest good dump: the target plus two days, at least three."""
    return max(3, math.ceil(target_hours / 24) + 2)


def dump_backups(s3: S3Client, bucket: str, source: str, now: datetime, days: int) -> list[Found]:
    """Dumps of ``source`` in the last ``days`` UTC days, newest first, down to the newest good one."""
    found: list[Found] = []
    for day in days_back(now, days):
        for folder in list_dump_day(s3, bucket, source, day):
            name = folder.prefix.rstrip("/").rsplit("/", 1)[-1]
            if not folder.has_manifest:
                found.append(
                    Found(
                        name,
                        folder.when,
                        FAILED,
                        "has no manifest.json (a dump without one is a failed dump)",
                    )
                )
                continue
            try:
                manifest = read_manifest(s3, bucket, folder)
            except ManifestError as err:
                found.append(Found(name, folder.when, FAILED, f"has an invalid manifest: {err}"))
                continue
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "Error")
                found.append(Found(name, folder.when, FAILED, f"manifest could not be read ({code})"))
                continue
            if not manifest.ok:
                found.append(Found(name, manifest.finished_at, FAILED, f"reports status {manifest.status!r}"))
                continue
            wrong: list[str] = []
            for obj in manifest.objects:
                size = folder.sizes.get(obj.key)
                short = obj.key.rsplit("/", 1)[-1]
                if size is None:
                    wrong.append(f"{short} is missing")
                elif size != obj.bytes:
                    wrong.append(f"{short} has {size} bytes, the manifest says {obj.bytes}")
            if wrong:
                found.append(Found(name, manifest.finished_at, FAILED, "is damaged: " + "; ".join(wrong)))
                continue
            found.append(Found(name, manifest.finished_at, AVAILABLE, note=_inconsistent_note(manifest)))
            return found
    return found


def _inconsistent_note(manifest: Manifest) -> str:
    tables = manifest.inconsistent_tables
    if not tables:
        return ""
    shown = ", ".join(tables[:10]) + (f" and {len(tables) - 10} more" if len(tables) > 10 else "")
    return (
        f"holds {len(tables)} table(s) that are not transactional ({shown}): they were dumped a moment "
        "apart from the rest, so rows that belong together may not match. Convert them to InnoDB "
        "(ALTER TABLE ... ENGINE=InnoDB) or set dump.mysql_consistency: lock-tables."
    )


def check_dumps(
    s3: S3Client, bucket: str, sources: Iterable[str], target_hours: int, now: datetime
) -> list[Check]:
    days = dump_lookback_days(target_hours)
    checks: list[Check] = []
    for source in sources:
        check = Check(
            source, KIND_DUMP, target_hours, now, backups=dump_backups(s3, bucket, source, now, days)
        )
        check.searched = f" in the last {days} days (s3://{bucket}/dumps/{source}/)"
        checks.append(check.evaluate())
    return checks
