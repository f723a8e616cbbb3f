"""Prune: apply the retention policy to our AMIs (with their EBS snapshots) and RDS manual snapshots.

Only artifacts tagged ``ManagedBy=schoolbackup`` are ever looked at, let alone deleted; names do not
matter. Every listing is paginated at the largest page size and there is no describe call per item:

1. EBS snapshots tagged as ours (listed *before* the AMIs: an AMI exists before its snapshots, so a
   snapshot seen here belongs to an AMI that the next listing will show).
2. AMIs tagged as ours (including disabled and deprecated ones: they still hold snapshots).
3. RDS manual snapshots; their ``TagList`` comes with the listing.

Each backup's state comes from the one table (lambdas.common.aws.states): an AMI is usable only when
its EBS snapshots are completed, and a state the table does not know is pending here (never deleted).
Then :func:`lambdas.common.retention.apply_policy` decides; the deletions run RDS first (they use the
manual-snapshot quota), then AMIs, then orphaned EBS snapshots, oldest first within each, until the
Lambda's remaining time falls below a safety margin. What is left is reported and done by the next run.

With offsite copies (``settings.offsite`` copying ``rds`` and/or ``ami``), :func:`prune_everywhere` runs
the same prune, with the same safety rules, in the offsite region afterwards: on that region's clients,
by ``offsite.policy``, for the copied kinds only. The copies keep the originals' names and tags, so
nothing here knows which region it is in. A failure in one region (a deletion, or the listing itself)
never stops the other; the run raises after both.

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

from lambdas.common.aws.clients import offsite_clients_of
from lambdas.common.aws.db_snapshots import managed_db_snapshots
from lambdas.common.aws.errors import error_code, error_text
from lambdas.common.aws.images import managed_images, managed_snapshots, snapshot_ids, snapshot_states
from lambdas.common.aws.quota import SnapshotQuota, read_snapshot_quota
from lambdas.common.aws.states import Reading, ami_state, rds_snapshot_state
from lambdas.common.contracts import (
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    KIND_AMI,
    KIND_RDS,
    PRUNED_KINDS,
    SOURCE_KEY,
    State,
    parse_time,
    tag_dict,
)
from lambdas.common.observability import logger
from lambdas.common.retention import Backup, Decision, RetentionPolicy, apply_policy
from lambdas.common.settings import Offsite, PruneSettings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, SnapshotTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBSnapshotTypeDef

    from lambdas.common.aws.clients import RegionClients

RESOURCE_IMAGE: Final = "image"
RESOURCE_EBS_SNAPSHOT: Final = "ebs-snapshot"
RESOURCE_DB_SNAPSHOT: Final = "db-snapshot"

# Stop starting deletions when less than this is left: one call can take seconds under throttling
# (adaptive retries), and the result, metrics and logs still have to be written.
SAFETY_MARGIN_MS: Final = 30_000
# With offsite copies the home run stops this much earlier, so that the offsite region still gets its
# listing and the start of its deletions before the safety margin (its own deletions then stop at the
# margin like the home ones; whatever is left in either region is done by the next day's run).
OFFSITE_RESERVE_MS: Final = 60_000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# The AMI a snapshot is made for, from its description: "Created by CreateImage(i-...) for ami-... " or,
# for a copy (CopyImage), "Copied for DestinationAmi ami-... from SourceAmi ami-... for SourceSnapshot ...".
_AMI_IN_DESCRIPTION = re.compile(r"\bfor (?:DestinationAmi )?(ami-[0-9a-f]+)")

_GONE: Final = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"})
_RDS_GONE: Final = frozenset({"DBSnapshotNotFound", "DBSnapshotNotFoundFault"})
_DENIED: Final = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})
_IN_USE: Final = "InvalidSnapshot.InUse"


class PruneError(RuntimeError):
    """Some deletions failed; everything else was still done."""


@dataclass(frozen=True)
class Artifact:
    """A backup under the retention policy: an AMI or an RDS manual snapshot."""

    backup: Backup
    resource: str
    name: str
    raw_state: str
    reading: Reading
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
    backup_state: State | None = None  # as the policy saw it; None for orphans and what is left alone

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
    # The state of every EBS snapshot a listed AMI needs (ours from the listing, others looked up).
    snapshot_states: dict[str, str] = field(default_factory=dict)


@dataclass
class PruneResult:
    dry_run: bool
    plan: list[PlanItem]
    deleted: Counter[str] = field(default_factory=Counter)
    ebs_snapshots_deleted: int = 0
    remaining: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)
    in_use: list[dict[str, str]] = field(default_factory=list)
    skipped_snapshots: list[dict[str, str]] = field(default_factory=list)
    rds_quota: SnapshotQuota | None = None
    region: str = ""  # where this ran (the client's region)
    kinds: tuple[str, ...] = PRUNED_KINDS  # what was listed and pruned there

    def kept(self) -> Counter[str]:
        return Counter(item.kind for item in self.plan if not item.delete)

    def planned_deletions(self) -> Counter[str]:
        return Counter(item.kind for item in self.plan if item.delete)

    def failures_by_kind(self) -> Counter[str]:
        return Counter(f["kind"] for f in self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "dry_run": self.dry_run,
            "plan": [item.as_dict() for item in self.plan],
            "counts": {
                "planned_deletions": {k: self.planned_deletions()[k] for k in self.kinds},
                "deleted": {k: self.deleted[k] for k in self.kinds},
                "kept": {k: self.kept()[k] for k in self.kinds},
                "ebs_snapshots_deleted": self.ebs_snapshots_deleted,
            },
            "remaining": sum(self.remaining.values()),
            "failures": list(self.failures),
            "in_use": list(self.in_use),
            "skipped_snapshots": list(self.skipped_snapshots),
            "rds_quota": self.rds_quota.as_dict() if self.rds_quota else None,
        }

    def raise_if_failed(self) -> None:
        """After publishing: a failed deletion (other than a snapshot still in use) fails the run."""
        if self.failures:
            raise PruneError(
                f"{len(self.failures)} deletion(s) failed: "
                + "; ".join(f"{f['id']} ({f['error']})" for f in self.failures)
            )


def list_inventory(ec2: EC2Client, rds: RDSClient, kinds: Iterable[str] = PRUNED_KINDS) -> Inventory:
    """Everything tagged as ours (of ``kinds``). EBS snapshots are listed *before* the AMIs: an AMI exists
    before its snapshots, so a snapshot seen here belongs to an AMI that the next listing will show."""
    kinds = tuple(kinds)
    snapshots: dict[str, SnapshotTypeDef] = {}
    images: list[ImageTypeDef] = []
    states: dict[str, str] = {}
    if KIND_AMI in kinds:
        snapshots = managed_snapshots(ec2)
        images = managed_images(ec2, hidden_too=True)
        states = {sid: snap.get("State", "unknown") for sid, snap in snapshots.items()}
        others = {s for image in images for s in snapshot_ids(image)} - set(states)
        if others:  # untagged snapshots of our AMIs (rare): their state decides whether the AMI is usable
            states.update(snapshot_states(ec2, others))
    db_snapshots = managed_db_snapshots(rds) if KIND_RDS in kinds else []
    return Inventory(snapshots, images, db_snapshots, states)


def _left_alone(
    tags: Mapping[str, str], job: str, *, id_: str, kind: str, resource: str, name: str, state: str
) -> PlanItem | None:
    """A plan item that keeps one of ours that is not a backup under the policy, or None for a backup."""
    found, source = tags.get(JOB_KEY), tags.get(SOURCE_KEY)
    if found is not None and found != job:
        reason = f"{JOB_KEY}={found}: not a backup under the retention policy, left alone"
    elif not source:
        reason = f"no {SOURCE_KEY} tag, left alone"
    else:
        return None
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


def collect_artifacts(inventory: Inventory) -> tuple[list[Artifact], list[PlanItem]]:
    """The backups under the policy, and plan items for ours that are left alone (with the reason)."""
    artifacts: list[Artifact] = []
    left_alone: list[PlanItem] = []
    for image in inventory.images:
        tags = tag_dict(image.get("Tags"))
        image_id, name, raw = image["ImageId"], image.get("Name", ""), image.get("State", "")
        source = tags.get(SOURCE_KEY)
        referenced = snapshot_ids(image)
        reading = ami_state(raw, referenced, inventory.snapshot_states)
        alone = _left_alone(
            tags, JOB_AMI, id_=image_id, kind=KIND_AMI, resource=RESOURCE_IMAGE, name=name, state=raw
        )
        left_alone += [alone] if alone else []
        if alone or reading.gone:
            continue
        created = parse_time(image["CreationDate"]) if image.get("CreationDate") else None
        state = reading.for_prune() if created is not None else State.PENDING
        ours = tuple(s for s in referenced if s in inventory.snapshots)
        untagged = tuple(s for s in referenced if s not in inventory.snapshots)
        backup = Backup(image_id, str(source), KIND_AMI, created, state)
        artifacts.append(Artifact(backup, RESOURCE_IMAGE, name, raw, reading, ours, untagged))
    for snap in inventory.db_snapshots:
        tags = tag_dict(snap.get("TagList"))
        snap_id, raw = snap["DBSnapshotIdentifier"], snap.get("Status", "")
        source = tags.get(SOURCE_KEY)
        reading = rds_snapshot_state(raw)
        alone = _left_alone(
            tags, JOB_RDS, id_=snap_id, kind=KIND_RDS, resource=RESOURCE_DB_SNAPSHOT, name=snap_id, state=raw
        )
        left_alone += [alone] if alone else []
        if alone or reading.gone:
            continue
        created = snap.get("SnapshotCreateTime")
        # RDS fills the creation time in only once the snapshot is under way
        state = reading.for_prune() if created is not None else State.PENDING
        backup = Backup(snap_id, str(source), KIND_RDS, created, state)
        artifacts.append(Artifact(backup, RESOURCE_DB_SNAPSHOT, snap_id, raw, reading))
    return artifacts, left_alone


def orphan_items(inventory: Inventory) -> list[PlanItem]:
    """Our AMI snapshots that no listed AMI references: their AMI is gone."""
    image_ids = {i["ImageId"] for i in inventory.images}
    referenced = {s for i in inventory.images for s in snapshot_ids(i)}
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
        reason=decision.reason if artifact.reading.known else artifact.reading.prune_detail(),
        snapshot_ids=artifact.snapshot_ids,
        untagged_snapshot_ids=artifact.untagged_snapshot_ids,
        backup_state=b.state,
    )


def deletion_order(plan: Iterable[PlanItem]) -> list[PlanItem]:
    """RDS snapshots first (they hold quota), then AMIs, then orphaned snapshots; oldest first in each."""
    rank = {RESOURCE_DB_SNAPSHOT: 0, RESOURCE_IMAGE: 1, RESOURCE_EBS_SNAPSHOT: 2}
    to_delete = [item for item in plan if item.delete]
    return sorted(to_delete, key=lambda i: (rank[i.resource], i.created is None, i.created or _EPOCH, i.id))


class Deleter:
    """Carries out the deletions of a plan, recording each result; one failure never stops the rest."""

    def __init__(self, ec2: EC2Client, rds: RDSClient, result: PruneResult) -> None:
        self.ec2, self.rds, self.result = ec2, rds, result

    def fail(self, item: PlanItem, resource_id: str, error: Exception | str) -> None:
        """Record a failed deletion; ``error`` is the AWS error or a sentence saying what to do."""
        entry = {
            "id": resource_id,
            "kind": item.kind,
            "error": error if isinstance(error, str) else error_text(error),
        }
        self.result.failures.append(entry)
        logger.error("prune: deletion failed", extra={**entry, "reason": item.reason})

    def _tried(self, item: PlanItem, delete: Callable[[], object], gone: frozenset[str]) -> bool:
        """Run ``delete``; True when it worked or the thing was gone already, else the failure is noted."""
        try:
            delete()
        except ClientError as error:
            if error_code(error) not in gone:
                self.fail(item, item.id, error)
                return False
        except BotoCoreError as error:
            self.fail(item, item.id, error)
            return False
        return True

    def delete_db_snapshot(self, item: PlanItem) -> None:
        if not self._tried(
            item, lambda: self.rds.delete_db_snapshot(DBSnapshotIdentifier=item.id), _RDS_GONE
        ):
            return
        self.result.deleted[item.kind] += 1
        logger.info("prune: deleted RDS snapshot", extra=_log_fields(item))

    def delete_ebs_snapshot(self, item: PlanItem, snapshot_id: str, untagged: bool = False) -> bool:
        try:
            self.ec2.delete_snapshot(SnapshotId=snapshot_id)
        except ClientError as error:
            code = error_code(error)
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
                entry = {"id": snapshot_id, "kind": item.kind, "error": error_text(error)}
                self.result.in_use.append(entry)
                logger.warning("prune: snapshot still in use, the next run retries it", extra=entry)
                return False
            if code not in _GONE:
                self.fail(item, snapshot_id, error)
                return False
        except BotoCoreError as error:
            self.fail(item, snapshot_id, error)
            return False
        self.result.ebs_snapshots_deleted += 1
        return True

    def delete_image(self, item: PlanItem, still_referenced: set[str]) -> None:
        if not self._tried(item, lambda: self.ec2.deregister_image(ImageId=item.id), _GONE):
            return
        self.result.deleted[item.kind] += 1
        logger.info("prune: deregistered AMI", extra=_log_fields(item))
        # The AMI is ours (tagged ManagedBy=schoolbackup), so are the snapshots CreateImage made for it, even
        # when tagging them never happened: DESIGN.md deregisters an AMI "together with all of its EBS
        # snapshots". (ami_backup tags them on create and re-checks every run, so this is the rare case; in
        # AWS the role's tag condition may then deny the delete, which is reported below with what to do.)
        for snapshot_id in (*item.snapshot_ids, *item.untagged_snapshot_ids):
            if snapshot_id in still_referenced:
                self.result.skipped_snapshots.append(
                    {"id": snapshot_id, "image": item.id, "reason": "also used by an AMI that is kept"}
                )
                continue
            untagged = snapshot_id in item.untagged_snapshot_ids
            if self.delete_ebs_snapshot(item, snapshot_id, untagged=untagged):
                logger.info("prune: deleted AMI snapshot", extra={"id": snapshot_id, "image": item.id})

    def delete_orphan(self, item: PlanItem) -> None:
        if self.delete_ebs_snapshot(item, item.id):
            self.result.deleted[item.kind] += 1
            logger.info("prune: deleted orphaned snapshot", extra=_log_fields(item))


def _log_fields(item: PlanItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "source": item.source,
        "backup_name": item.name,
        "reason": item.reason,
    }


def plan(
    ec2: EC2Client,
    rds: RDSClient,
    policy: RetentionPolicy,
    now: datetime,
    kinds: Iterable[str] = PRUNED_KINDS,
) -> tuple[Inventory, list[PlanItem]]:
    """What prune would do now, deleting nothing (prune itself, its dry run and the weekly report)."""
    inventory = list_inventory(ec2, rds, kinds)
    return inventory, make_plan(inventory, policy, now)


def offsite_clients(settings: PruneSettings) -> RegionClients | None:
    """The offsite region's clients when prune has work there (the copy job copies rds or ami), else None."""
    if settings.offsite is None or not offsite_kinds(settings.offsite):
        return None
    return offsite_clients_of(settings.offsite, "schoolbackup-prune")


def offsite_kinds(offsite: Offsite | None) -> tuple[str, ...]:
    """The kinds prune handles in the offsite region: those the copy job copies there (dumps expire by
    the copy bucket's lifecycle)."""
    return tuple(k for k in PRUNED_KINDS if offsite is not None and offsite.copies(k))


def prune(
    ec2: EC2Client,
    rds: RDSClient,
    settings: PruneSettings,
    now: datetime,
    *,
    remaining_ms: Callable[[], int],
    safety_margin_ms: int = SAFETY_MARGIN_MS,
) -> PruneResult:
    """List, decide, delete (unless dry run) at home; never raises for a single failed deletion."""
    return prune_region(
        ec2,
        rds,
        settings.policy,
        now,
        dry_run=settings.dry_run,
        remaining_ms=remaining_ms,
        safety_margin_ms=safety_margin_ms,
    )


def prune_region(
    ec2: EC2Client,
    rds: RDSClient,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool,
    remaining_ms: Callable[[], int],
    safety_margin_ms: int = SAFETY_MARGIN_MS,
    kinds: tuple[str, ...] = PRUNED_KINDS,
) -> PruneResult:
    """List, decide, delete (unless dry run) in the clients' region, for ``kinds``."""
    inventory, items = plan(ec2, rds, policy, now, kinds)
    region = ec2.meta.region_name or ""
    result = PruneResult(dry_run=dry_run, plan=items, region=region, kinds=kinds)
    to_delete = deletion_order(items)
    if dry_run:
        for item in to_delete:
            logger.info("prune: would delete (dry run)", extra=_log_fields(item))
    else:
        _delete(
            ec2,
            rds,
            inventory=inventory,
            to_delete=to_delete,
            result=result,
            remaining_ms=remaining_ms,
            safety_margin_ms=safety_margin_ms,
        )
    if KIND_RDS in kinds:
        result.rds_quota = read_snapshot_quota(rds)
    logger.info("prune: done", extra={k: v for k, v in result.as_dict().items() if k != "plan"})
    return result


@dataclass
class PruneRun:
    """Prune at home and, with offsite copies, in the offsite region."""

    home: PruneResult
    offsite: PruneResult | None = None

    @property
    def results(self) -> list[PruneResult]:
        return [self.home] + ([self.offsite] if self.offsite is not None else [])

    def as_dict(self) -> dict[str, Any]:
        """The home result as before, plus ``offsite``: the same for the offsite region (or None)."""
        return {**self.home.as_dict(), "offsite": self.offsite.as_dict() if self.offsite else None}

    def raise_if_failed(self) -> None:
        """After publishing both: a failed deletion in either region fails the run, naming the region."""
        failed = [(r.region, f) for r in self.results for f in r.failures]
        if failed:
            raise PruneError(
                f"{len(failed)} deletion(s) failed: "
                + "; ".join(
                    f"{f['id']} in {region or 'the home region'} ({f['error']})" for region, f in failed
                )
            )


def _listing_failed(
    error: ClientError | BotoCoreError, *, region: str, dry_run: bool, kinds: tuple[str, ...]
) -> PruneResult:
    """A region whose listing failed: nothing was decided or deleted there; one failure per kind."""
    text = error_text(error)
    logger.error("prune: could not list the backups", extra={"region": region, "error": text})
    failures = [{"id": f"the {kind} backups in {region}", "kind": kind, "error": text} for kind in kinds]
    return PruneResult(dry_run=dry_run, plan=[], failures=failures, region=region, kinds=kinds)


def prune_everywhere(
    ec2: EC2Client,
    rds: RDSClient,
    settings: PruneSettings,
    now: datetime,
    *,
    offsite: RegionClients | None,
    remaining_ms: Callable[[], int],
    safety_margin_ms: int = SAFETY_MARGIN_MS,
) -> PruneRun:
    """Prune at home, then in the offsite region by ``settings.offsite.policy`` (the copied kinds only).

    ``offsite`` are that region's clients; required when ``settings.offsite`` copies rds or ami.
    """
    kinds = offsite_kinds(settings.offsite)
    if kinds and (offsite is None or settings.offsite is None or offsite.region != settings.offsite.region):
        raise ValueError("prune_everywhere: settings.offsite is set, pass the clients of its region")
    home_margin = safety_margin_ms + (OFFSITE_RESERVE_MS if kinds else 0)
    try:
        home = prune(ec2, rds, settings, now, remaining_ms=remaining_ms, safety_margin_ms=home_margin)
    except (ClientError, BotoCoreError) as error:
        if not kinds:  # no other region to prune: the listing's error is the run's (as always)
            raise
        region = ec2.meta.region_name or ""
        home = _listing_failed(error, region=region, dry_run=settings.dry_run, kinds=PRUNED_KINDS)
    if not kinds or offsite is None or settings.offsite is None:
        return PruneRun(home)
    try:
        there = prune_region(
            offsite.ec2,
            offsite.rds,
            settings.offsite.policy,
            now,
            dry_run=settings.dry_run,
            remaining_ms=remaining_ms,
            safety_margin_ms=safety_margin_ms,
            kinds=kinds,
        )
    except (ClientError, BotoCoreError) as error:
        there = _listing_failed(error, region=offsite.region, dry_run=settings.dry_run, kinds=kinds)
    return PruneRun(home, there)


def _delete(
    ec2: EC2Client,
    rds: RDSClient,
    *,
    inventory: Inventory,
    to_delete: list[PlanItem],
    result: PruneResult,
    remaining_ms: Callable[[], int],
    safety_margin_ms: int,
) -> None:
    # Snapshots that a surviving AMI (kept, or left alone) still uses are never deleted with another AMI.
    deleted_images = {i.id for i in to_delete if i.resource == RESOURCE_IMAGE}
    still_referenced = {
        s for i in inventory.images if i["ImageId"] not in deleted_images for s in snapshot_ids(i)
    }
    deleter = Deleter(ec2, rds, result)
    for index, item in enumerate(to_delete):
        if remaining_ms() < safety_margin_ms:
            result.remaining.update(i.kind for i in to_delete[index:])
            logger.warning(
                "prune: stopping before the Lambda timeout; the next run continues",
                extra={"remaining": len(to_delete) - index, "remaining_ms": remaining_ms()},
            )
            return
        if item.resource == RESOURCE_DB_SNAPSHOT:
            deleter.delete_db_snapshot(item)
        elif item.resource == RESOURCE_IMAGE:
            deleter.delete_image(item, still_referenced)
        else:
            deleter.delete_orphan(item)
