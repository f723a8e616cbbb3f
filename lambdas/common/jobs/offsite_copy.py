"""Offsite copies of the RDS snapshots and AMIs: the newest usable original of each source, copied into
the offsite region (another region of this account), re-encrypted with the offsite key.

What is copied: per source (``BackupSource``), the newest original at home that the state table calls
usable, made by schoolbackup (``ManagedBy=schoolbackup``, ``BackupJob=rds-daily`` / ``ami-weekly``, a
name ``sb-<source>-<YYYYMMDD>-<HHMM>``) and not itself a copy (no ``CopiedFrom``). Pending, failed and
foreign things are never copied. ``daily``: the newest usable original is copied when it is not there
yet; ``weekly``: only when the newest copy of that source offsite is more than six days older than the
run (or there is none).

A copy keeps the original's name and its schoolbackup tags plus ``CopiedFrom=<ARN of the original>``, so
prune, verify and restore read the offsite region like the home one. The name makes the job idempotent:
a copy of that name offsite (in any state) means there is nothing to do, also when a concurrent run wins
the race (DBSnapshotAlreadyExists, InvalidAMIName.Duplicate). The job never deletes anything: a copy
outlives its original (prune applies the offsite retention there).

Encryption: every copy is encrypted with the offsite key (its alias, valid in the offsite region). RDS
encrypts an unencrypted original when KmsKeyId is given (CopyDBSnapshot); an encrypted original,
also one under the default key ``aws/rds``, is re-encrypted with it (a same-account cross-region copy of
an ``aws/rds`` snapshot works). EC2 re-encrypts the AMI's snapshots with ``Encrypted=True`` and the key.

Into another account (``offsite.account``): a snapshot under ``aws/rds`` or ``aws/ebs`` cannot be shared,
and the account a snapshot is shared with cannot copy it into another region. So a copy takes three
steps, each made by the run that finds its predecessor usable (a run never waits):
1. a *staging copy* in the offsite region of THIS account, under the staging key (a customer key there
   that the target account may use through RDS and EC2), tagged like a copy plus ``OffsiteStage=staging``;
2. once it is usable: shared with the target account (RDS ``restore`` attribute; the AMI's launch
   permission and its snapshots' createVolumePermission), and copied there, as the target account's
   ``-copy`` role, in the same region under the target's offsite key: that is the offsite copy;
3. once the copy is usable, the staging copy is deleted (as is a staging copy that failed, or that a
   newer original has overtaken before it was copied).
A copy into another account so arrives a day after a copy in the same account would; its age targets
(``offsite.targets``) should allow for it.

Tags of an AMI copy: CopyImage asks for them on the image and its snapshots (TagSpecifications); where
they did not arrive (moto ignores them), the copy and its known snapshots are tagged afterwards, and every
run tags the still untagged snapshots of earlier copies (as ami_backup does at home). Into another
account only the tags of CopyImage are allowed (a later tag could mark any image as a copy or a staging
copy, which the deletions trust): there earlier copies are not re-tagged, and a new copy whose tags did
not arrive fails its source with AWS's refusal.

One source's failure never stops the others; failures are collected and the handler raises after
publishing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.aws.clients import (
    RegionClients,
    ec2_client,
    offsite_region_clients,
    rds_client,
    region_clients,
    s3_client,
)
from lambdas.common.aws.db_snapshots import db_snapshot_named, managed_db_snapshots
from lambdas.common.aws.errors import error_code, error_text
from lambdas.common.aws.images import managed_images, snapshot_ids, snapshot_states, snapshots_by_id
from lambdas.common.aws.quota import SnapshotQuota, read_snapshot_quota
from lambdas.common.aws.states import AMI_STATES, Reading, ami_state, rds_snapshot_state
from lambdas.common.contracts import (
    COPIED_FROM_KEY,
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    KIND_AMI,
    KIND_RDS,
    SOURCE_KEY,
    STAGE_KEY,
    STAGE_STAGING,
    TAG_KEYS,
    State,
    aws_tags,
    is_managed,
    parse_backup_name,
    tag_dict,
)
from lambdas.common.jobs.ami_backup import DUPLICATE_NAME, retag_managed_images
from lambdas.common.jobs.backup_result import BackupJobFailed, BackupResult
from lambdas.common.messages import say
from lambdas.common.observability import logger
from lambdas.common.settings import OffsiteCopySettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, TagSpecificationTypeDef
    from mypy_boto3_rds import RDSClient

# "weekly": a new copy when the newest one is older than this (a week minus a margin, so that the copy
# after a Sunday AMI is not skipped because the run starts a little earlier than last week's original).
WEEKLY_AFTER: Final = timedelta(days=6)
JOB_OF: Final = {KIND_RDS: JOB_RDS, KIND_AMI: JOB_AMI}
LANGUAGE: Final = "en"  # of the reasons in the result (logs, the error); the catalogue has them in German too


@dataclass(frozen=True)
class Backup:
    """An original at home or a copy offsite, as the job needs it."""

    name: str
    source: str
    when: datetime  # from the name (UTC)
    arn: str
    reading: Reading
    tags: dict[str, str]
    image_id: str | None = None  # AMIs


@dataclass
class CopyResult:
    """Per copied kind (rds, ami) what was created, already there or failed; what was not due (weekly)."""

    region: str
    results: dict[str, BackupResult] = field(default_factory=dict)
    not_due: dict[str, list[str]] = field(default_factory=dict)  # kind -> names of originals not copied yet
    account: str | None = None  # the target account (copies into another account)
    # into another account, kind -> step -> names: staging copies started, waited for, deleted
    staging: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            **({"account": self.account} if self.account else {}),
            **{
                kind: {
                    **r.as_dict(),
                    "not_due": self.not_due.get(kind, []),
                    **({"staging": self.staging[kind]} if kind in self.staging else {}),
                }
                for kind, r in self.results.items()
            },
        }

    def raise_if_failed(self) -> None:
        problems = []
        for result in self.results.values():
            try:
                result.raise_if_failed()
            except BackupJobFailed as err:
                problems.append(str(err))
        if problems:
            raise BackupJobFailed(f"offsite copies to {self.region}: " + " | ".join(problems))


def _backup(
    name: str, tags: dict[str, str], arn: str, reading: Reading, image_id: str | None
) -> Backup | None:
    parsed = parse_backup_name(name)
    if parsed is None or tags.get(SOURCE_KEY) != parsed[0]:
        return None
    return Backup(name, parsed[0], parsed[1], arn, reading, tags, image_id)


def _newest_usable(backups: Iterable[Backup]) -> dict[str, Backup]:
    newest: dict[str, Backup] = {}
    for b in backups:
        if b.reading.state is State.USABLE and (b.source not in newest or b.when > newest[b.source].when):
            newest[b.source] = b
    return newest


def _is_original(tags: dict[str, str], job: str) -> bool:
    return is_managed(tags) and tags.get(JOB_KEY) == job and COPIED_FROM_KEY not in tags


def _is_copy(tags: dict[str, str], job: str) -> bool:
    return is_managed(tags) and tags.get(JOB_KEY) == job and COPIED_FROM_KEY in tags


def _copy_tags(original: Backup) -> dict[str, str]:
    return {**{k: original.tags[k] for k in TAG_KEYS if k in original.tags}, COPIED_FROM_KEY: original.arn}


def _stage_tags(original: Backup) -> dict[str, str]:
    return {**_copy_tags(original), STAGE_KEY: STAGE_STAGING}


def _is_stage(tags: dict[str, str], job: str) -> bool:
    return _is_copy(tags, job) and tags.get(STAGE_KEY) == STAGE_STAGING


def _due(original: Backup, copies: Iterable[Backup], frequency: str, when: datetime) -> bool:
    """daily: always (the name decides); weekly: the newest copy of the source (not failed) is older than
    WEEKLY_AFTER, or there is none."""
    if frequency != "weekly":
        return True
    kept = [c.when for c in copies if c.source == original.source and c.reading.state is not State.FAILED]
    return not kept or when - max(kept) > WEEKLY_AFTER


# --- RDS ------------------------------------------------------------------------------------------------


def _db_snapshots(rds: RDSClient, keep: Callable[[dict[str, str]], bool]) -> list[Backup]:
    found = []
    for snap in managed_db_snapshots(rds):
        tags = tag_dict(snap.get("TagList"))
        if keep(tags):
            status = snap.get("Status", "unknown")
            backup = _backup(
                snap["DBSnapshotIdentifier"], tags, snap["DBSnapshotArn"], rds_snapshot_state(status), None
            )
            if backup is not None:
                found.append(backup)
    return found


@dataclass
class _Run:
    """One kind's run: the clients, where, how often, and its result."""

    home_region: str
    region: str
    key_alias: str
    frequency: str
    when: datetime
    result: BackupResult
    not_due: list[str]
    account: str | None = None  # the target account (copies into another account)
    staging_key_alias: str = ""
    staging: dict[str, list[str]] = field(
        default_factory=lambda: {"started": [], "waiting": [], "deleted": []}
    )


def _copy_rds(home: RDSClient, off: RDSClient, run: _Run, target: RDSClient | None = None) -> None:
    """Same account: copy into ``off``. Into another account (``target``): through staging copies in
    ``off`` (this account's offsite region) into ``target``."""
    dest = target or off
    quota = run.result.quota = read_snapshot_quota(dest)
    originals = _newest_usable(_db_snapshots(home, lambda t: _is_original(t, JOB_RDS)))
    copies = _db_snapshots(dest, lambda t: _is_copy(t, JOB_RDS) and not _is_stage(t, JOB_RDS))
    stages = {b.name: b for b in _db_snapshots(off, lambda t: _is_stage(t, JOB_RDS))} if target else {}
    stage = _RdsStage(off, stages, run)
    for source, original in sorted(originals.items()):
        try:
            quota = _copy_db_snapshot(dest, original, copies, quota, run, stage=stage)
        except (ClientError, BotoCoreError) as err:
            run.result.add_failed(source, error_text(err))
    if target is not None:
        _clean_stages(
            stages,
            copies,
            originals,
            run,
            lambda stage: off.delete_db_snapshot(DBSnapshotIdentifier=stage.name),
        )


@dataclass
class _RdsStage:
    """The staging copies of RDS snapshots (copies into another account): this account's offsite region."""

    rds: RDSClient
    stages: dict[str, Backup]
    run: _Run

    def ready(self, original: Backup) -> Backup | None:
        """The usable staging copy of ``original``, after sharing it with the target account; None
        while there is none yet (then started), it is being made, or it failed (then deleted)."""
        run, name = self.run, original.name
        stage = self.stages.get(name)
        if stage is None:
            try:
                self.rds.copy_db_snapshot(
                    SourceDBSnapshotIdentifier=original.arn,
                    TargetDBSnapshotIdentifier=name,
                    SourceRegion=run.home_region,
                    KmsKeyId=run.staging_key_alias,
                    CopyTags=False,
                    Tags=aws_tags(_stage_tags(original)),
                )
            except ClientError as err:
                if error_code(err) != "DBSnapshotAlreadyExists":  # else a concurrent run started it
                    raise
            _staged(run, "started", name)
            return None
        if stage.reading.state is State.FAILED:
            self.rds.delete_db_snapshot(DBSnapshotIdentifier=name)
            run.result.add_failed(original.source, _stage_failed(stage, run))
            return None
        if stage.reading.state is not State.USABLE:
            _staged(run, "waiting", name)
            return None
        assert run.account is not None
        self.rds.modify_db_snapshot_attribute(
            DBSnapshotIdentifier=name, AttributeName="restore", ValuesToAdd=[run.account]
        )
        return stage


def _staged(run: _Run, step: str, name: str) -> None:
    run.staging[step].append(name)
    logger.info(f"staging copy {step}", extra={"backup": name, "region": run.region})


def _stage_failed(stage: Backup, run: _Run) -> str:
    return say(
        "offsite.staging_failed", LANGUAGE, name=stage.name, state=stage.reading.detail, region=run.region
    )


def _clean_stages(
    stages: dict[str, Backup],
    copies: list[Backup],
    originals: dict[str, Backup],
    run: _Run,
    delete: Callable[[Backup], object],
) -> None:
    """Delete the staging copies no longer needed: whose copy in the target account is usable, or that
    a newer original has overtaken (and are not being made). One failure never stops the others."""
    usable = {c.name for c in copies if c.reading.state is State.USABLE}
    newest = {o.name for o in originals.values()}
    for stage in stages.values():
        done = stage.name in usable
        overtaken = stage.name not in newest and stage.reading.state is not State.PENDING
        if not (done or overtaken) or stage.name in run.staging["deleted"]:
            continue
        try:
            delete(stage)
        except (ClientError, BotoCoreError) as err:
            logger.warning(
                "could not delete a staging copy", extra={"backup": stage.name, "error": error_text(err)}
            )
            continue
        _staged(run, "deleted", stage.name)


def _copy_db_snapshot(
    dest: RDSClient,
    original: Backup,
    copies: list[Backup],
    quota: SnapshotQuota | None,
    run: _Run,
    *,
    stage: _RdsStage,
) -> SnapshotQuota | None:
    name, source = original.name, original.source
    existing = db_snapshot_named(dest, name)
    if existing is not None:
        status = existing.get("Status", "")
        if rds_snapshot_state(status).state is State.FAILED:  # an earlier copy failed: say so, every run
            run.result.add_failed(source, _copy_failed(name, status, run.region))
        else:
            run.result.add_already_existed(name, source=source, region=run.region, status=status)
        return quota
    if not _due(original, copies, run.frequency, run.when):
        run.not_due.append(name)
        logger.info("offsite copy not due yet (weekly)", extra={"backup": name, "region": run.region})
        return quota
    staged = stage.ready(original) if run.account is not None else None
    if run.account is not None and staged is None:
        return quota
    if quota is not None and quota.reached:
        run.result.add_failed(
            source,
            say(
                "offsite.quota_full",
                LANGUAGE,
                region=run.region,
                used=quota.used,
                limit=quota.limit,
                name=name,
            ),
        )
        return quota
    if not _start_db_copy(dest, original, staged, run):
        return quota
    run.result.add_created(name, source=source, region=run.region, copied_from=original.arn)
    return None if quota is None else SnapshotQuota(used=quota.used + 1, limit=quota.limit)


def _start_db_copy(dest: RDSClient, original: Backup, staged: Backup | None, run: _Run) -> bool:
    """CopyDBSnapshot of the original (same account) or of the shared staging copy; False when RDS
    refused it (said in the result) or a concurrent run made it first."""
    name, source = original.name, original.source
    try:
        if staged is None:
            # SourceRegion makes boto3 presign the request in the home region (PreSignedUrl). KmsKeyId
            # is required for an encrypted original copied to another region, and encrypts an
            # unencrypted one.
            dest.copy_db_snapshot(
                SourceDBSnapshotIdentifier=original.arn,
                TargetDBSnapshotIdentifier=name,
                SourceRegion=run.home_region,
                KmsKeyId=run.key_alias,
                CopyTags=False,
                Tags=aws_tags(_copy_tags(original)),
            )
        else:  # the shared staging copy, in the same region: its ARN, no presigning
            dest.copy_db_snapshot(
                SourceDBSnapshotIdentifier=staged.arn,
                TargetDBSnapshotIdentifier=name,
                KmsKeyId=run.key_alias,
                CopyTags=False,
                Tags=aws_tags(_copy_tags(original)),
            )
    except ClientError as err:
        code = error_code(err)
        if code == "DBSnapshotAlreadyExists":  # a concurrent run won the race
            run.result.add_already_existed(name, source=source, region=run.region)
            return False
        if code == "SnapshotQuotaExceeded":
            run.result.add_failed(
                source, say("offsite.quota_refused", LANGUAGE, region=run.region, name=name)
            )
            return False
        raise
    return True


def _copy_failed(name: str, state: str, region: str) -> str:
    return say("offsite.copy_failed", LANGUAGE, name=name, state=state, region=region)


# --- AMIs -----------------------------------------------------------------------------------------------


def image_arn(partition: str, region: str, image_id: str) -> str:
    """``arn:<partition>:ec2:<region>::image/<id>`` (images have no account in their ARN)."""
    return f"arn:{partition}:ec2:{region}::image/{image_id}"


def _images(
    ec2: EC2Client, keep: Callable[[dict[str, str]], bool], partition: str, region: str, *, hidden_too: bool
) -> list[Backup]:
    images = [i for i in managed_images(ec2, JOB_AMI, hidden_too=hidden_too) if keep(tag_dict(i.get("Tags")))]
    states = snapshot_states(ec2, [s for i in images for s in snapshot_ids(i)])
    found = []
    for image in images:
        reading = ami_state(image.get("State", "unknown"), snapshot_ids(image), states)
        arn = image_arn(partition, region, image["ImageId"])
        backup = _backup(image.get("Name", ""), tag_dict(image.get("Tags")), arn, reading, image["ImageId"])
        if backup is not None:
            found.append(backup)
    return found


def _image_named(ec2: EC2Client, name: str) -> ImageTypeDef | None:
    images = ec2.describe_images(
        Owners=["self"],
        Filters=[{"Name": "name", "Values": [name]}],
        IncludeDisabled=True,
        IncludeDeprecated=True,
    )["Images"]
    return images[0] if images else None


def _copy_amis(
    home: EC2Client, off: EC2Client, run: _Run, partition: str, target: EC2Client | None = None
) -> None:
    """Same account: copy into ``off``. Into another account (``target``): through staging copies in
    ``off`` (this account's offsite region) into ``target``."""
    dest = target or off
    originals = _newest_usable(
        _images(home, lambda t: _is_original(t, JOB_AMI), partition, run.home_region, hidden_too=False)
    )
    copies = _images(
        dest,
        lambda t: _is_copy(t, JOB_AMI) and not _is_stage(t, JOB_AMI),
        partition,
        run.region,
        hidden_too=True,
    )
    stages: dict[str, Backup] = {}
    if target is not None:
        found = _images(off, lambda t: _is_stage(t, JOB_AMI), partition, run.region, hidden_too=True)
        stages = {b.name: b for b in found}
    stage = _AmiStage(off, stages, run)
    for source, original in sorted(originals.items()):
        try:
            _copy_image(dest, original, copies, run, stage)
        except (ClientError, BotoCoreError) as err:
            run.result.add_failed(source, error_text(err))
    if target is not None:  # into another account copies are tagged only as they are made (CopyImage)
        _clean_stages(stages, copies, originals, run, stage.delete)
        return
    try:
        retag_managed_images(dest)
    except (ClientError, BotoCoreError) as err:
        # The new copies are made; an earlier copy's snapshots stay as they were until the next run.
        logger.warning("could not re-check the snapshots of earlier copies", extra={"error": error_text(err)})


@dataclass
class _AmiStage:
    """The staging copies of AMIs (copies into another account): this account's offsite region."""

    ec2: EC2Client
    stages: dict[str, Backup]
    run: _Run

    def ready(self, original: Backup) -> Backup | None:
        """The usable staging copy of ``original``, after sharing it (and its snapshots) with the target
        account; None while there is none yet (then started), it is being made, or it failed (then
        deleted)."""
        run, name = self.run, original.name
        stage = self.stages.get(name)
        if stage is None:
            image_id = _start_image_copy(
                self.ec2,
                original,
                source_region=run.home_region,
                key_alias=run.staging_key_alias,
                tags=_stage_tags(original),
                description=f"schoolbackup staging copy of {original.image_id} ({original.source}), to be shared",
            )
            if image_id is not None:
                _tag_copy(self.ec2, image_id, aws_tags(_stage_tags(original)))
            _staged(run, "started", name)
            return None
        if stage.reading.state is State.FAILED:
            self.delete(stage)
            run.result.add_failed(original.source, _stage_failed(stage, run))
            return None
        if stage.reading.state is not State.USABLE:
            _staged(run, "waiting", name)
            return None
        assert run.account is not None and stage.image_id is not None
        self.ec2.modify_image_attribute(
            ImageId=stage.image_id, LaunchPermission={"Add": [{"UserId": run.account}]}
        )
        for snapshot_id in self._snapshots(stage):
            self.ec2.modify_snapshot_attribute(
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
                OperationType="add",
                UserIds=[run.account],
            )
        return stage

    def _snapshots(self, stage: Backup) -> list[str]:
        assert stage.image_id is not None
        images = self.ec2.describe_images(ImageIds=[stage.image_id], IncludeDisabled=True)["Images"]
        return snapshot_ids(images[0]) if images else []

    def delete(self, stage: Backup) -> None:
        """Deregister the staging image, then delete its snapshots (EC2 keeps them otherwise)."""
        assert stage.image_id is not None
        snapshots = self._snapshots(stage)
        self.ec2.deregister_image(ImageId=stage.image_id)
        for snapshot_id in snapshots:
            self.ec2.delete_snapshot(SnapshotId=snapshot_id)


def _start_image_copy(
    ec2: EC2Client,
    original: Backup,
    *,
    source_region: str,
    key_alias: str,
    tags: dict[str, str],
    description: str,
    source_image_id: str | None = None,
) -> str | None:
    """CopyImage of ``source_image_id`` (default: the original) in ``source_region`` into ``ec2``'s
    region under ``original``'s name; None when a concurrent run made it first."""
    specs: list[TagSpecificationTypeDef] = [
        {"ResourceType": "image", "Tags": aws_tags(tags)},
        {"ResourceType": "snapshot", "Tags": aws_tags(tags)},
    ]
    image_id = source_image_id or original.image_id
    assert image_id is not None
    try:
        return ec2.copy_image(
            SourceImageId=image_id,
            SourceRegion=source_region,
            Name=original.name,
            Description=description,
            Encrypted=True,
            KmsKeyId=key_alias,
            CopyImageTags=False,
            TagSpecifications=specs,
        )["ImageId"]
    except ClientError as err:
        if error_code(err) != DUPLICATE_NAME:
            raise
        return None


def _copy_image(dest: EC2Client, original: Backup, copies: list[Backup], run: _Run, stage: _AmiStage) -> None:
    name, source = original.name, original.source
    existing = _image_named(dest, name)
    if existing is not None:
        state = existing.get("State", "")
        if AMI_STATES.get(state) is State.FAILED:  # an earlier copy failed: say so, every run
            run.result.add_failed(source, _copy_failed(name, state, run.region))
        else:
            run.result.add_already_existed(name, source=source, region=run.region, image=existing["ImageId"])
        return
    if not _due(original, copies, run.frequency, run.when):
        run.not_due.append(name)
        logger.info("offsite copy not due yet (weekly)", extra={"backup": name, "region": run.region})
        return
    staged = stage.ready(original) if run.account is not None else None
    if run.account is not None and staged is None:
        return
    tags = _copy_tags(original)
    image_id = _start_image_copy(
        dest,
        original,
        source_region=run.home_region if staged is None else run.region,  # staging: in this region
        key_alias=run.key_alias,
        tags=tags,
        description=f"schoolbackup offsite copy of {original.image_id} ({source})",
        source_image_id=None if staged is None else staged.image_id,
    )
    if image_id is None:
        raced = _image_named(dest, name)  # a concurrent run won the race
        run.result.add_already_existed(
            name, source=source, region=run.region, image=raced["ImageId"] if raced else None
        )
        return
    _tag_copy(dest, image_id, aws_tags(tags))
    run.result.add_created(name, source=source, region=run.region, image=image_id, copied_from=original.arn)


def _tag_copy(off: EC2Client, image_id: str, tags: list[Any]) -> None:
    """Tag the new copy and its known snapshots where CopyImage's TagSpecifications did not arrive."""
    images = off.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        return
    untagged = [] if is_managed(tag_dict(images[0].get("Tags"))) else [image_id]
    snapshots = snapshots_by_id(off, snapshot_ids(images[0]))
    untagged += [sid for sid, snap in snapshots.items() if not is_managed(tag_dict(snap.get("Tags")))]
    if untagged:
        off.create_tags(Resources=untagged, Tags=tags)
        logger.info("tagged the copy afterwards", extra={"image": image_id, "resources": untagged})


# --- the job --------------------------------------------------------------------------------------------


def home_and_offsite(
    settings: OffsiteCopySettings,
) -> tuple[RegionClients, RegionClients, RegionClients | None]:
    """The clients of the function's own region (home), of this account's offsite region, and (copies
    into another account) of the target account's offsite region as its ``-copy`` role."""
    ec2, rds = ec2_client(), rds_client()
    home = RegionClients(rds.meta.region_name, ec2, rds, s3_client())
    offsite = settings.offsite
    target = None
    if offsite.role_arn:
        target = offsite_region_clients(offsite.region, offsite.role_arn, "schoolbackup-offsite-copy")
    return home, region_clients(offsite.region), target


def copy_offsite(
    home: RegionClients,
    off: RegionClients,
    settings: OffsiteCopySettings,
    *,
    when: datetime,
    target: RegionClients | None = None,
) -> CopyResult:
    """Copy the newest usable original of each source and copied kind; failures are collected, not raised.

    ``off``: this account's offsite region. ``target``: with copies into another account
    (``settings.offsite.account``), the target account's offsite region (required then): the copies go
    there, through staging copies in ``off``.
    """
    offsite = settings.offsite
    if offsite.cross_account and target is None:
        raise ValueError(f"copies into account {offsite.account} need the clients of that account")
    result = CopyResult(region=offsite.region, account=offsite.account)
    for kind in (KIND_RDS, KIND_AMI):
        if not offsite.copies(kind):
            continue
        run = _Run(
            home_region=home.region,
            region=offsite.region,
            key_alias=offsite.key_alias,
            frequency=offsite.frequency(kind),
            when=when,
            result=BackupResult(job=JOB_OF[kind]),
            not_due=[],
            account=offsite.account,
            staging_key_alias=offsite.staging_key_alias,
        )
        result.results[kind], result.not_due[kind] = run.result, run.not_due
        if offsite.cross_account:
            result.staging[kind] = run.staging
        try:
            if kind == KIND_RDS:
                _copy_rds(home.rds, off.rds, run, target.rds if target else None)
            else:
                _copy_amis(home.ec2, off.ec2, run, home.ec2.meta.partition, target.ec2 if target else None)
        except (ClientError, BotoCoreError) as err:
            run.result.add_failed(
                "*", say("offsite.not_listed", LANGUAGE, region=offsite.region, error=error_text(err))
            )
    logger.info("offsite copies done", extra={"result": result.as_dict()})
    return result
