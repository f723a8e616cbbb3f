"""AMIs of every selected EC2 instance (replaces weekly_image.sh), NoReboot by default.

Selection: instances tagged with the selection tag, plus the ids listed in EC2_INSTANCE_IDS; running
and stopped instances are imaged, any other state is a failure. Names derive from the scheduled time,
so a retried or doubled run finds its AMI instead of making a second one.

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

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.backup_job import BackupResult
from lambdas.common.naming import (
    JOB_AMI,
    JOB_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    SOURCE_KEY,
    backup_name,
    backup_tags,
)
from lambdas.common.observability import logger
from lambdas.common.settings import SelectionTag, SettingsError, env_bool, env_list, tag_dict

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        ImageTypeDef,
        InstanceTypeDef,
        TagSpecificationTypeDef,
        TagTypeDef,
    )

IMAGEABLE_STATES: Final = ("running", "stopped")
DUPLICATE_NAME: Final = "InvalidAMIName.Duplicate"
# How long to wait for a pending image to report its snapshot ids before leaving them to the next run.
SNAPSHOT_ID_ATTEMPTS: Final = 6
SNAPSHOT_ID_DELAY_SECONDS: Final = 5.0

_EC2_ID = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")


@dataclass(frozen=True)
class AmiBackupSettings:
    selection: SelectionTag
    instance_ids: tuple[str, ...]
    no_reboot: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AmiBackupSettings:
        ids = env_list("EC2_INSTANCE_IDS", environ)
        bad = [i for i in ids if not _EC2_ID.match(i)]
        if bad:
            raise SettingsError(
                f"environment variable EC2_INSTANCE_IDS has invalid instance ids {bad}; "
                "expected comma-separated ids like i-0123456789abcdef0"
            )
        return cls(
            selection=SelectionTag.from_env(environ),
            instance_ids=ids,
            no_reboot=env_bool("NO_REBOOT", True, environ),
        )


def _tags(source: str) -> list[TagTypeDef]:
    return [{"Key": k, "Value": v} for k, v in backup_tags(JOB_AMI, source).items()]


def _error_text(err: ClientError | BotoCoreError) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', str(err))}"
    return str(err)


def _selected_instances(
    ec2: EC2Client, settings: AmiBackupSettings, result: BackupResult
) -> dict[str, InstanceTypeDef]:
    found: dict[str, InstanceTypeDef] = {}
    queries: list[list[FilterTypeDef]] = [
        [{"Name": f"tag:{settings.selection.key}", "Values": [settings.selection.value]}]
    ]
    if settings.instance_ids:
        queries.append([{"Name": "instance-id", "Values": list(settings.instance_ids)}])
    for filters in queries:
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    found[instance["InstanceId"]] = instance
    for missing in sorted(set(settings.instance_ids) - set(found)):
        result.add_failed(missing, "listed in EC2_INSTANCE_IDS but no such instance exists in this region")
    return found


def _image_by_name(ec2: EC2Client, name: str) -> ImageTypeDef | None:
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0] if images else None


def _snapshot_ids(image: ImageTypeDef) -> tuple[list[str], int]:
    """(known snapshot ids, number of EBS mappings still without one)."""
    ids: list[str] = []
    missing = 0
    for mapping in image.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs")
        if ebs is None:
            continue  # instance store / ephemeral: no snapshot
        if ebs.get("SnapshotId"):
            ids.append(ebs["SnapshotId"])
        else:
            missing += 1
    return ids, missing


def tag_snapshots(ec2: EC2Client, image: ImageTypeDef, source: str) -> int:
    """Tag the image's known EBS snapshots; returns how many mappings have no snapshot id yet."""
    ids, missing = _snapshot_ids(image)
    if ids:
        ec2.create_tags(Resources=ids, Tags=_tags(source))
    return missing


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


def _describe_until_snapshots_known(
    ec2: EC2Client, image_id: str, attempts: int, delay: float, sleep: Callable[[float], None]
) -> ImageTypeDef | None:
    image: ImageTypeDef | None = None
    for attempt in range(max(attempts, 1)):
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
        image = images[0] if images else None
        if image is not None and _snapshot_ids(image)[1] == 0:
            return image
        if attempt + 1 < attempts:
            sleep(delay)
    return image


def retag_managed_images(ec2: EC2Client) -> int:
    """Tag the untagged snapshots of every schoolbackup AMI (those still pending at an earlier run)."""
    images = ec2.describe_images(
        Owners=["self"],
        Filters=[
            {"Name": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]},
            {"Name": f"tag:{JOB_KEY}", "Values": [JOB_AMI]},
        ],
    )["Images"]
    by_snapshot: dict[str, str] = {}
    for image in images:
        source = tag_dict(image.get("Tags")).get(SOURCE_KEY)
        if source:
            for snapshot_id in _snapshot_ids(image)[0]:
                by_snapshot[snapshot_id] = source
    if not by_snapshot:
        return 0
    snapshots = ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=sorted(by_snapshot))["Snapshots"]
    fixed = 0
    for snapshot in snapshots:
        if tag_dict(snapshot.get("Tags")).get(MANAGED_BY_KEY) != MANAGED_BY_VALUE:
            source = by_snapshot[snapshot["SnapshotId"]]
            ec2.create_tags(Resources=[snapshot["SnapshotId"]], Tags=_tags(source))
            fixed += 1
    if fixed:
        logger.info("tagged snapshots of earlier AMIs", extra={"snapshots": fixed})
    return fixed


def create_images(
    ec2: EC2Client,
    settings: AmiBackupSettings,
    when: datetime,
    *,
    snapshot_id_attempts: int = SNAPSHOT_ID_ATTEMPTS,
    snapshot_id_delay: float = SNAPSHOT_ID_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> BackupResult:
    """One AMI per selected instance for ``when``; failures are collected, not raised."""
    result = BackupResult(job=JOB_AMI)
    instances = _selected_instances(ec2, settings, result)
    for instance_id, instance in sorted(instances.items()):
        name = backup_name(instance_id, when)
        try:
            existing = _image_by_name(ec2, name)
            if existing is not None:
                tag_snapshots(ec2, existing, instance_id)
                result.add_already_existed(name, source=instance_id, image=existing["ImageId"])
                continue
            state = instance.get("State", {}).get("Name", "unknown")
            if state not in IMAGEABLE_STATES:
                result.add_failed(
                    instance_id, f"instance is {state!r}, not running or stopped; no AMI {name} was made"
                )
                continue
            try:
                image_id = _create_image(ec2, instance_id, name, settings.no_reboot)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != DUPLICATE_NAME:
                    raise
                # A concurrent run for the same time won the race; its AMI is this run's backup.
                raced = _image_by_name(ec2, name)
                if raced is not None:
                    tag_snapshots(ec2, raced, instance_id)
                result.add_already_existed(
                    name, source=instance_id, image=raced["ImageId"] if raced else None
                )
                continue
            image = _describe_until_snapshots_known(
                ec2, image_id, snapshot_id_attempts, snapshot_id_delay, sleep
            )
            pending = tag_snapshots(ec2, image, instance_id) if image is not None else -1
            if pending:
                logger.warning(
                    "AMI snapshots not known yet; their tags come from CreateImage and the next run re-checks",
                    extra={"image": image_id, "mappings_without_snapshot": pending},
                )
            result.add_created(name, source=instance_id, image=image_id, no_reboot=settings.no_reboot)
        except (ClientError, BotoCoreError) as err:
            result.add_failed(instance_id, _error_text(err))
    try:
        retag_managed_images(ec2)
    except (ClientError, BotoCoreError) as err:
        # New AMIs are made and tagged; an earlier AMI's snapshots stay as they were until the next run.
        logger.warning("could not re-check the snapshots of earlier AMIs", extra={"error": _error_text(err)})
    logger.info("ami backups done", extra={"result": result.as_dict()})
    return result
