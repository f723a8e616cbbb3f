"""Prune: apply the retention policy to our AMIs (with their EBS snapshots) and RDS manual snapshots.

Only artifacts tagged ``ManagedBy=schoolbackup`` are ever looked at, let alone deleted; names do not
matter. Every listing is paginated at the largest page size and there is no describe call per item:

1. EBS snapshots tagged as ours (listed *before* the AMIs: an AMI exists before its snapshots, so a
   snapshot seen here belongs to an AMI that the next listing will show).
2. AMIs tagged as ours (including disabled and deprecated ones: they still hold snapshots).
3. RDS manual snapshots; their ``TagList`` comes with the listing.

Then :func:`lambdas.common.retention.apply_policy` decides; the deletions run RDS first (they use the
manual-snapshot quota), then AMIs, then orphaned EBS snapshots, oldest first within each, until the
Lambda's remaining time falls below a safety margin. What is left is reported and done by the next run.

An AMI is deregistered, then each EBS snapshot in its block device mappings that carries our tag and
that no other listed AMI uses is deleted. ``InvalidSnapshot.InUse`` is reported, not a failure: the
snapshot keeps its tags, so the next run finds it as an orphan (tagged ``BackupJob=ami-weekly``,
referenced by no listed AMI, and its description's ``for ami-...`` names no listed AMI) and tries again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import metric_names
from lambdas.common.naming import JOB_AMI, JOB_KEY, JOB_RDS, SOURCE_KEY, is_managed, parse_time
from lambdas.common.observability import logger
from lambdas.common.rds_quota import SnapshotQuota
from lambdas.common.retention import Backup, Decision, RetentionPolicy, State, apply_policy
from lambdas.common.settings import env_bool, retention_from_env, tag_dict

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, ImageTypeDef, SnapshotTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBSnapshotTypeDef

KIND_AMI: Final = metric_names.KIND_AMI
KIND_RDS: Final = metric_names.KIND_RDS
KINDS: Final = (KIND_RDS, KIND_AMI)

RESOURCE_IMAGE: Final = "image"
RESOURCE_EBS_SNAPSHOT: Final = "ebs-snapshot"
RESOURCE_DB_SNAPSHOT: Final = "db-snapshot"

# Largest page sizes the APIs allow: fewest listing calls.
EC2_PAGE_SIZE: Final = 1000
RDS_PAGE_SIZE: Final = 100

# Stop starting deletions when less than this is left: one call can take seconds under throttling
# (adaptive retries), and the result, metrics and logs still have to be written.
SAFETY_MARGIN_MS: Final = 30_000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MANAGED_FILTER: Final[list[FilterTypeDef]] = [{"Name": "tag:ManagedBy", "Values": ["schoolbackup"]}]
_AMI_IN_DESCRIPTION = re.compile(r"\bfor (ami-[0-9a-f]+)")

# States as the APIs spell them. Anything not listed here counts as pending (never deleted): an
# unknown state is more likely a new transitional one than a failure, and keeping is the safe side.
_AMI_STATES: Final[Mapping[str, State | None]] = {
    "available": State.AVAILABLE,
    "pending": State.PENDING,
    "transient": State.PENDING,
    "failed": State.FAILED,
    "error": State.FAILED,
    "invalid": State.FAILED,
    "disabled": State.FAILED,  # cannot be launched; still holds its snapshots
    "deregistered": None,  # already gone
}
_RDS_STATES: Final[Mapping[str, State | None]] = {
    "available": State.AVAILABLE,
    "creating": State.PENDING,
    "copying": State.PENDING,
    "failed": State.FAILED,
    "incompatible-restore": State.FAILED,
    "incompatible-parameters": State.FAILED,
    "incompatible-network": State.FAILED,
    "incompatible-option-group": State.FAILED,
    "deleting": None,  # already going
}

_GONE: Final = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"})
_RDS_GONE: Final = frozenset({"DBSnapshotNotFound", "DBSnapshotNotFoundFault"})
_DENIED: Final = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})
_IN_USE: Final = "InvalidSnapshot.InUse"


class PruneError(RuntimeError):
    """Some deletions failed; everything else was still done."""


@dataclass(frozen=True)
class Settings:
    policy: RetentionPolicy
    dry_run: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        policy = retention_from_env(environ)
        return cls(policy=policy, dry_run=env_bool("DRY_RUN", False, environ))


@dataclass(frozen=True)
class Artifact:
    """A backup under the retention policy: an AMI or an RDS manual snapshot."""

    backup: Backup
    resource: str
    name: str
    raw_state: str
    snapshot_ids: tuple[str, ...] = ()  # an AMI's EBS snapshots that carry our tag
    untagged_snapshot_ids: tuple[str, ...] = ()  # ... and those without (they go with the AMI too)


@dataclass(frozen=True)
class PlanItem:
    id: str
    source: str | None
    kind: str
    resource: str
    name: str
    created: datetime | None
    state: str
    action: str
    reason: str
    snapshot_ids: tuple[str, ...] = ()
    untagged_snapshot_ids: tuple[str, ...] = ()

    @property
    def delete(self) -> bool:
        return self.action == "delete"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "resource": self.resource,
            "name": self.name,
            "created": None if self.created is None else self.created.isoformat(),
            "state": self.state,
            "action": self.action,
            "reason": self.reason,
        }
        if self.resource == RESOURCE_IMAGE:
            out["snapshots"] = list(self.snapshot_ids)
            if self.untagged_snapshot_ids:
                out["untagged_snapshots"] = list(self.untagged_snapshot_ids)
        return out


@dataclass
class Inventory:
    snapshots: dict[str, SnapshotTypeDef]  # EBS snapshots tagged as ours, by id
    images: list[ImageTypeDef]  # AMIs tagged as ours
    db_snapshots: list[DBSnapshotTypeDef]  # RDS manual snapshots tagged as ours
    pages: int = 0


@dataclass
class Outcome:
    dry_run: bool
    plan: list[PlanItem]
    deleted: Counter[str] = field(default_factory=Counter)
    ebs_snapshots_deleted: int = 0
    remaining: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)
    in_use: list[dict[str, str]] = field(default_factory=list)
    skipped_snapshots: list[dict[str, str]] = field(default_factory=list)
    rds_quota: SnapshotQuota | None = None

    def kept(self) -> Counter[str]:
        return Counter(item.kind for item in self.plan if not item.delete)

    def planned_deletions(self) -> Counter[str]:
        return Counter(item.kind for item in self.plan if item.delete)

    def failures_by_kind(self) -> Counter[str]:
        return Counter(f["kind"] for f in self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "plan": [item.as_dict() for item in self.plan],
            "counts": {
                "planned_deletions": {k: self.planned_deletions()[k] for k in KINDS},
                "deleted": {k: self.deleted[k] for k in KINDS},
                "kept": {k: self.kept()[k] for k in KINDS},
                "ebs_snapshots_deleted": self.ebs_snapshots_deleted,
            },
            "remaining": sum(self.remaining.values()),
            "failures": list(self.failures),
            "in_use": list(self.in_use),
            "skipped_snapshots": list(self.skipped_snapshots),
            "rds_quota": self.rds_quota.as_dict() if self.rds_quota else None,
        }


# --- listing -------------------------------------------------------------------------------------


def list_inventory(ec2: EC2Client, rds: RDSClient) -> Inventory:
    """Everything tagged as ours, in as few calls as the APIs allow (order matters, see module doc)."""
    pages = 0
    snapshots: dict[str, SnapshotTypeDef] = {}
    for snap_page in ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=_MANAGED_FILTER, PaginationConfig={"PageSize": EC2_PAGE_SIZE}
    ):
        pages += 1
        for snap in snap_page.get("Snapshots", []):
            if is_managed(tag_dict(snap.get("Tags"))):  # the filter did it; never trust one check
                snapshots[snap["SnapshotId"]] = snap
    images: list[ImageTypeDef] = []
    for image_page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"],
        Filters=_MANAGED_FILTER,
        IncludeDeprecated=True,
        IncludeDisabled=True,
        PaginationConfig={"PageSize": EC2_PAGE_SIZE},
    ):
        pages += 1
        images.extend(i for i in image_page.get("Images", []) if is_managed(tag_dict(i.get("Tags"))))
    db_snapshots: list[DBSnapshotTypeDef] = []
    for db_page in rds.get_paginator("describe_db_snapshots").paginate(
        SnapshotType="manual", PaginationConfig={"PageSize": RDS_PAGE_SIZE}
    ):
        pages += 1
        db_snapshots.extend(
            s for s in db_page.get("DBSnapshots", []) if is_managed(tag_dict(s.get("TagList")))
        )
    return Inventory(snapshots=snapshots, images=images, db_snapshots=db_snapshots, pages=pages)


def image_snapshot_ids(image: ImageTypeDef) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if "Ebs" in m and m["Ebs"].get("SnapshotId")
    ]


# --- planning --------------------------------------------------------------------------------------


def _left_alone(
    *, id_: str, source: str | None, kind: str, resource: str, name: str, state: str, reason: str
) -> PlanItem:
    return PlanItem(
        id=id_,
        source=source,
        kind=kind,
        resource=resource,
        name=name,
        created=None,
        state=state,
        action="keep",
        reason=reason,
    )


def _job_mismatch(tags: Mapping[str, str], job: str) -> str | None:
    found = tags.get(JOB_KEY)
    if found is not None and found != job:
        return f"{JOB_KEY}={found}: not a backup under the retention policy, left alone"
    return None


def collect_artifacts(inventory: Inventory) -> tuple[list[Artifact], list[PlanItem]]:
    """The backups under the policy, and plan items for ours that are left alone (with the reason)."""
    artifacts: list[Artifact] = []
    left_alone: list[PlanItem] = []
    for image in inventory.images:
        tags = tag_dict(image.get("Tags"))
        image_id, name, raw = image["ImageId"], image.get("Name", ""), image.get("State", "")
        source = tags.get(SOURCE_KEY)
        state = _AMI_STATES.get(raw, State.PENDING)
        why = _job_mismatch(tags, JOB_AMI) or (None if source else f"no {SOURCE_KEY} tag, left alone")
        if state is None or why is not None:
            if why is not None:
                left_alone.append(
                    _left_alone(
                        id_=image_id,
                        source=source,
                        kind=KIND_AMI,
                        resource=RESOURCE_IMAGE,
                        name=name,
                        state=raw,
                        reason=why,
                    )
                )
            continue
        created = parse_time(image["CreationDate"]) if image.get("CreationDate") else None
        if created is None:
            state = State.PENDING
        referenced = image_snapshot_ids(image)
        ours = tuple(s for s in referenced if s in inventory.snapshots)
        untagged = tuple(s for s in referenced if s not in inventory.snapshots)
        backup = Backup(image_id, str(source), KIND_AMI, created, state)
        artifacts.append(Artifact(backup, RESOURCE_IMAGE, name, raw, ours, untagged))
    for snap in inventory.db_snapshots:
        tags = tag_dict(snap.get("TagList"))
        snap_id, raw = snap["DBSnapshotIdentifier"], snap.get("Status", "")
        source = tags.get(SOURCE_KEY)
        state = _RDS_STATES.get(raw, State.PENDING)
        why = _job_mismatch(tags, JOB_RDS) or (None if source else f"no {SOURCE_KEY} tag, left alone")
        if state is None or why is not None:
            if why is not None:
                left_alone.append(
                    _left_alone(
                        id_=snap_id,
                        source=source,
                        kind=KIND_RDS,
                        resource=RESOURCE_DB_SNAPSHOT,
                        name=snap_id,
                        state=raw,
                        reason=why,
                    )
                )
            continue
        created = snap.get("SnapshotCreateTime")
        if created is None:  # RDS fills it in only once the snapshot is under way
            state = State.PENDING
        backup = Backup(snap_id, str(source), KIND_RDS, created, state)
        artifacts.append(Artifact(backup, RESOURCE_DB_SNAPSHOT, snap_id, raw))
    return artifacts, left_alone


def orphan_items(inventory: Inventory) -> list[PlanItem]:
    """Our AMI snapshots that no listed AMI references: their AMI is gone."""
    image_ids = {i["ImageId"] for i in inventory.images}
    referenced = {s for i in inventory.images for s in image_snapshot_ids(i)}
    items: list[PlanItem] = []
    for snap_id, snap in sorted(inventory.snapshots.items()):
        tags = tag_dict(snap.get("Tags"))
        if tags.get(JOB_KEY) != JOB_AMI or snap_id in referenced:
            continue
        match = _AMI_IN_DESCRIPTION.search(snap.get("Description", ""))
        if match and match[1] in image_ids:  # its AMI is still being created and lists no snapshots yet
            continue
        raw = snap.get("State", "")
        ami = f"its AMI {match[1]}" if match else "its AMI"
        if raw in ("completed", "error", "recoverable", "recovering"):
            action, reason = "delete", f"orphan: {ami} no longer exists"
        else:
            action, reason = (
                "keep",
                f"orphan, but {raw or 'in an unknown state'}: never deleted while pending",
            )
        created = snap.get("StartTime")
        items.append(
            PlanItem(
                id=snap_id,
                source=tags.get(SOURCE_KEY),
                kind=KIND_AMI,
                resource=RESOURCE_EBS_SNAPSHOT,
                name=snap.get("Description", ""),
                created=created,
                state=raw,
                action=action,
                reason=reason,
            )
        )
    return items


def make_plan(inventory: Inventory, policy: RetentionPolicy, now: datetime) -> list[PlanItem]:
    artifacts, left_alone = collect_artifacts(inventory)
    by_id = {(a.backup.kind, a.backup.id): a for a in artifacts}
    plan: list[PlanItem] = []
    for decision in apply_policy((a.backup for a in artifacts), policy, now):
        artifact = by_id[(decision.backup.kind, decision.backup.id)]
        plan.append(_plan_item(artifact, decision))
    return [*plan, *orphan_items(inventory), *left_alone]


def _plan_item(artifact: Artifact, decision: Decision) -> PlanItem:
    b = artifact.backup
    return PlanItem(
        id=b.id,
        source=b.source,
        kind=b.kind,
        resource=artifact.resource,
        name=artifact.name,
        created=b.created,
        state=artifact.raw_state,
        action=decision.action,
        reason=decision.reason,
        snapshot_ids=artifact.snapshot_ids,
        untagged_snapshot_ids=artifact.untagged_snapshot_ids,
    )


# --- execution -------------------------------------------------------------------------------------


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{_error_code(error)}: {error.response.get('Error', {}).get('Message', '')}"
    return f"{type(error).__name__}: {error}"


def deletion_order(plan: Iterable[PlanItem]) -> list[PlanItem]:
    """RDS snapshots first (they hold quota), then AMIs, then orphaned snapshots; oldest first in each."""
    rank = {RESOURCE_DB_SNAPSHOT: 0, RESOURCE_IMAGE: 1, RESOURCE_EBS_SNAPSHOT: 2}
    doomed = [item for item in plan if item.delete]
    return sorted(doomed, key=lambda i: (rank[i.resource], i.created is None, i.created or _EPOCH, i.id))


class _Pruner:
    def __init__(self, ec2: EC2Client, rds: RDSClient, outcome: Outcome) -> None:
        self.ec2, self.rds, self.outcome = ec2, rds, outcome

    def fail(self, item: PlanItem, resource_id: str, error: Exception | str) -> None:
        """Record a failed deletion; ``error`` is the AWS error or a sentence saying what to do."""
        entry = {
            "id": resource_id,
            "kind": item.kind,
            "error": error if isinstance(error, str) else _describe(error),
        }
        self.outcome.failures.append(entry)
        logger.error("prune: deletion failed", extra={**entry, "reason": item.reason})

    def delete_db_snapshot(self, item: PlanItem) -> None:
        try:
            self.rds.delete_db_snapshot(DBSnapshotIdentifier=item.id)
        except ClientError as error:
            if _error_code(error) not in _RDS_GONE:
                self.fail(item, item.id, error)
                return
        except BotoCoreError as error:
            self.fail(item, item.id, error)
            return
        self.outcome.deleted[item.kind] += 1
        logger.info("prune: deleted RDS snapshot", extra=_log_fields(item))

    def delete_ebs_snapshot(self, item: PlanItem, snapshot_id: str, untagged: bool = False) -> bool:
        try:
            self.ec2.delete_snapshot(SnapshotId=snapshot_id)
        except ClientError as error:
            code = _error_code(error)
            if untagged and code in _DENIED:
                self.fail(
                    item,
                    snapshot_id,
                    f"snapshot {snapshot_id} of the deregistered AMI {item.id} is not tagged "
                    f"ManagedBy=schoolbackup, so prune may not delete it; delete it by hand with "
                    f"`aws ec2 delete-snapshot --snapshot-id {snapshot_id}`",
                )
                return False
            if code == _IN_USE:
                entry = {"id": snapshot_id, "kind": item.kind, "error": _describe(error)}
                self.outcome.in_use.append(entry)
                logger.warning("prune: snapshot still in use, the next run retries it", extra=entry)
                return False
            if code not in _GONE:
                self.fail(item, snapshot_id, error)
                return False
        except BotoCoreError as error:
            self.fail(item, snapshot_id, error)
            return False
        self.outcome.ebs_snapshots_deleted += 1
        return True

    def delete_image(self, item: PlanItem, still_referenced: set[str]) -> None:
        try:
            self.ec2.deregister_image(ImageId=item.id)
        except ClientError as error:
            if _error_code(error) not in _GONE:
                self.fail(item, item.id, error)
                return
        except BotoCoreError as error:
            self.fail(item, item.id, error)
            return
        self.outcome.deleted[item.kind] += 1
        logger.info("prune: deregistered AMI", extra=_log_fields(item))
        # The AMI is ours (tagged ManagedBy=schoolbackup), so are the snapshots CreateImage made for it, even
        # when tagging them never happened: DESIGN.md deregisters an AMI "together with all of its EBS
        # snapshots". (ami_backup tags them on create and re-checks every run, so this is the rare case; in
        # AWS the role's tag condition may then deny the delete, which is reported below with what to do.)
        for snapshot_id in (*item.snapshot_ids, *item.untagged_snapshot_ids):
            if snapshot_id in still_referenced:
                self.outcome.skipped_snapshots.append(
                    {"id": snapshot_id, "image": item.id, "reason": "also used by an AMI that is kept"}
                )
                continue
            untagged = snapshot_id in item.untagged_snapshot_ids
            if self.delete_ebs_snapshot(item, snapshot_id, untagged=untagged):
                logger.info("prune: deleted AMI snapshot", extra={"id": snapshot_id, "image": item.id})

    def delete_orphan(self, item: PlanItem) -> None:
        if self.delete_ebs_snapshot(item, item.id):
            self.outcome.deleted[item.kind] += 1
            logger.info("prune: deleted orphaned snapshot", extra=_log_fields(item))


def _log_fields(item: PlanItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "source": item.source,
        "backup_name": item.name,
        "reason": item.reason,
    }


def prune(
    ec2: EC2Client,
    rds: RDSClient,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool,
    remaining_ms: Callable[[], int],
    safety_margin_ms: int = SAFETY_MARGIN_MS,
) -> Outcome:
    """List, decide, delete (unless ``dry_run``); never raises for a single failed deletion."""
    inventory = list_inventory(ec2, rds)
    plan = make_plan(inventory, policy, now)
    outcome = Outcome(dry_run=dry_run, plan=plan)
    doomed = deletion_order(plan)
    if dry_run:
        for item in doomed:
            logger.info("prune: would delete (dry run)", extra=_log_fields(item))
        return outcome

    # Snapshots that a surviving AMI (kept, or left alone) still uses are never deleted with another AMI.
    deleted_images = {i.id for i in doomed if i.resource == RESOURCE_IMAGE}
    still_referenced = {
        s for i in inventory.images if i["ImageId"] not in deleted_images for s in image_snapshot_ids(i)
    }
    pruner = _Pruner(ec2, rds, outcome)
    for index, item in enumerate(doomed):
        if remaining_ms() < safety_margin_ms:
            outcome.remaining.update(i.kind for i in doomed[index:])
            logger.warning(
                "prune: stopping before the Lambda timeout; the next run continues",
                extra={"remaining": len(doomed) - index, "remaining_ms": remaining_ms()},
            )
            break
        if item.resource == RESOURCE_DB_SNAPSHOT:
            pruner.delete_db_snapshot(item)
        elif item.resource == RESOURCE_IMAGE:
            pruner.delete_image(item, still_referenced)
        else:
            pruner.delete_orphan(item)
    return outcome
