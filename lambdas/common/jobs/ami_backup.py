"""AMIs of every selected EC2 instance (replaces weekly_image.sh), NoReboot by default.

Selection: see lambdas.common.aws.selection (tagged or listed, not terminated); running and stopped
instances are imaged, any other state is a failure. Names derive from the scheduled time, so a
retried or doubled run finds its AMI instead of making a second one.

Tagging the EBS snapshots: prune deletes an AMI together with its snapshots and touches only what
carries ``ManagedBy=schoolbackup``, so the snapshots must be tagged, not just the image. Two layers:

1. ``CreateImage`` asks for the tags on the image *and* on its snapshots (``TagSpecifications``);
   real EC2 applies them atomically, even while the image is still pending.
2. Afterwards the image's block device mappings are read and every snapshot is tagged again
   (``CreateTags`` is idempotent). This covers environments whose ``CreateImage`` cannot tag
   snapshots (moto 5.2 raises NotImplementedError for it; the call is then repeated with image
   tags only). A snapshot id that is not known yet (image pending) is waited for briefly; if it is
   still unknown, every later run re-checks all schoolbackup AMIs and tags their untagged snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.aws.errors import error_code, error_text
from lambdas.common.aws.images import managed_images, mappings_without_snapshot, snapshot_ids, snapshots_by_id
from lambdas.common.aws.selection import MISSING_EC2, selected_servers
from lambdas.common.contracts import (
    JOB_AMI,
    SOURCE_KEY,
    AwsTag,
    aws_tags,
    backup_name,
    backup_tags,
    is_managed,
    tag_dict,
)
from lambdas.common.jobs.backup_result import BackupResult
from lambdas.common.observability import logger
from lambdas.common.settings import AmiBackupSettings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, InstanceTypeDef, TagSpecificationTypeDef

IMAGEABLE_STATES: Final = ("running", "stopped")
DUPLICATE_NAME: Final = "InvalidAMIName.Duplicate"
# How long to wait for a pending image to report its snapshot ids before leaving them to the next run.
SNAPSHOT_ID_ATTEMPTS: Final = 6
SNAPSHOT_ID_DELAY_SECONDS: Final = 5.0


def _tags(source: str) -> list[AwsTag]:
    return aws_tags(backup_tags(JOB_AMI, source))


def _image_by_name(ec2: EC2Client, name: str) -> ImageTypeDef | None:
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0] if images else None


def tag_snapshots(ec2: EC2Client, image: ImageTypeDef, source: str) -> int:
    """Tag the image's known EBS snapshots; returns how many mappings have no snapshot id yet."""
    ids = snapshot_ids(image)
    if ids:
        ec2.create_tags(Resources=ids, Tags=_tags(source))
    return mappings_without_snapshot(image)


def _create_image(ec2: EC2Client, instance_id: str, name: str, no_reboot: bool) -> str:
    tags = _tags(instance_id)
    image_spec: TagSpecificationTypeDef = {"ResourceType": "image", "Tags": tags}
    snapshot_spec: TagSpecificationTypeDef = {"ResourceType": "snapshot", "Tags": tags}
    description = f"schoolbackup {JOB_AMI} of {instance_id}"
    try:
        response = ec2.create_image(
            InstanceId=instance_id,
            Name=name,
            Description=description,
            NoReboot=no_reboot,
            TagSpecifications=[image_spec, snapshot_spec],
        )
    except NotImplementedError:
        # moto cannot tag snapshots at CreateImage (real EC2 can); the snapshots are tagged afterwards.
        logger.info("CreateImage cannot tag snapshots here; tagging them afterwards", extra={"image": name})
        response = ec2.create_image(
            InstanceId=instance_id,
            Name=name,
            Description=description,
            NoReboot=no_reboot,
            TagSpecifications=[image_spec],
        )
    return response["ImageId"]


@dataclass(frozen=True)
class SnapshotWait:
    """How long to wait for a pending image to name its snapshots before leaving them to the next run."""

    attempts: int = SNAPSHOT_ID_ATTEMPTS
    delay_seconds: float = SNAPSHOT_ID_DELAY_SECONDS
    sleep: Callable[[float], None] = time.sleep

    def image(self, ec2: EC2Client, image_id: str) -> ImageTypeDef | None:
        image: ImageTypeDef | None = None
        for attempt in range(max(self.attempts, 1)):
            images = ec2.describe_images(ImageIds=[image_id])["Images"]
            image = images[0] if images else None
            if image is not None and mappings_without_snapshot(image) == 0:
                return image
            if attempt + 1 < self.attempts:
                self.sleep(self.delay_seconds)
        return image


def retag_managed_images(ec2: EC2Client) -> int:
    """Tag the untagged snapshots of every schoolbackup AMI (those still pending at an earlier run)."""
    by_snapshot: dict[str, str] = {}
    for image in managed_images(ec2, JOB_AMI):
        source = tag_dict(image.get("Tags")).get(SOURCE_KEY)
        if source:
            by_snapshot.update(dict.fromkeys(snapshot_ids(image), source))
    fixed = 0
    for snapshot_id, snapshot in snapshots_by_id(ec2, by_snapshot).items():
        if not is_managed(tag_dict(snapshot.get("Tags"))):
            ec2.create_tags(Resources=[snapshot_id], Tags=_tags(by_snapshot[snapshot_id]))
            fixed += 1
    if fixed:
        logger.info("tagged snapshots of earlier AMIs", extra={"snapshots": fixed})
    return fixed


def create_images(
    ec2: EC2Client,
    settings: AmiBackupSettings,
    when: datetime,
    wait: SnapshotWait | None = None,
) -> BackupResult:
    """One AMI per selected instance for ``when``; failures are collected, not raised."""
    result = BackupResult(job=JOB_AMI)
    selected = selected_servers(ec2, settings.selection, settings.instance_ids)
    for missing in selected.missing:
        result.add_failed(missing, MISSING_EC2)
    for instance_id, state in selected.gone.items():
        name = backup_name(instance_id, when)
        result.add_failed(
            instance_id, f"instance is {state!r}, not running or stopped; no AMI {name} was made"
        )
    for instance_id, instance in sorted(selected.instances.items()):
        try:
            _image_one(
                ec2,
                instance,
                name=backup_name(instance_id, when),
                no_reboot=settings.no_reboot,
                result=result,
                wait=wait or SnapshotWait(),
            )
        except (ClientError, BotoCoreError) as err:
            result.add_failed(instance_id, error_text(err))
    try:
        retag_managed_images(ec2)
    except (ClientError, BotoCoreError) as err:
        # New AMIs are made and tagged; an earlier AMI's snapshots stay as they were until the next run.
        logger.warning("could not re-check the snapshots of earlier AMIs", extra={"error": error_text(err)})
    logger.info("ami backups done", extra={"result": result.as_dict()})
    return result


def _image_one(
    ec2: EC2Client,
    instance: InstanceTypeDef,
    *,
    name: str,
    no_reboot: bool,
    result: BackupResult,
    wait: SnapshotWait,
) -> None:
    instance_id = instance["InstanceId"]
    existing = _image_by_name(ec2, name)
    if existing is not None:
        tag_snapshots(ec2, existing, instance_id)
        result.add_already_existed(name, source=instance_id, image=existing["ImageId"])
        return
    state = instance.get("State", {}).get("Name", "unknown")
    if state not in IMAGEABLE_STATES:
        result.add_failed(
            instance_id, f"instance is {state!r}, not running or stopped; no AMI {name} was made"
        )
        return
    try:
        image_id = _create_image(ec2, instance_id, name, no_reboot)
    except ClientError as err:
        if error_code(err) != DUPLICATE_NAME:
            raise
        # A concurrent run for the same time won the race; its AMI is this run's backup.
        raced = _image_by_name(ec2, name)
        if raced is not None:
            tag_snapshots(ec2, raced, instance_id)
        result.add_already_existed(name, source=instance_id, image=raced["ImageId"] if raced else None)
        return
    image = wait.image(ec2, image_id)
    pending = tag_snapshots(ec2, image, instance_id) if image is not None else -1
    if pending:
        logger.warning(
            "AMI snapshots not known yet; their tags come from CreateImage and the next run re-checks",
            extra={"image": image_id, "mappings_without_snapshot": pending},
        )
    result.add_created(name, source=instance_id, image=image_id, no_reboot=no_reboot)
