"""What AWS does and moto does not when one account copies another account's snapshot or AMI.

moto looks a copy's source up in the caller's own account, whatever account the source ARN names,
and knows nothing of sharing. AWS copies a DB snapshot of another account only when that snapshot is
shared with the caller (its ``restore`` attribute), only in the region it is in (a shared encrypted
snapshot cannot be copied across regions), and an AMI of another account only when the AMI's launch
permission and its snapshots' createVolumePermission name the caller. ``shared_copies`` patches moto
to do the same, so a test proves that the code shares before it copies, and copies in the right region.
It also applies CopyImage's TagSpecifications to the new image and its snapshot, as AWS does (moto
ignores them): into another account copies may be tagged only as they are made.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.responses.amis import AmisResponse
from moto.rds.models import DBSnapshot, RDSBackend, rds_backends


def _shared_db_snapshot(backend: RDSBackend, arn: str, not_found: type[Exception]) -> DBSnapshot:
    """``arn:<p>:rds:<region>:<account>:snapshot:<name>`` of another account, if shared with ``backend``'s."""
    _, _, _, region, account, _, name = arn.split(":", 6)
    snapshots = rds_backends[account][region].database_snapshots
    snapshot = snapshots.get(name)
    if snapshot is None or backend.account_id not in snapshot.attributes.get("restore", []):
        raise not_found(name)
    if region != backend.region_name:
        raise not_found(f"{name} (a shared snapshot is copied in its own region, not from {region})")
    return snapshot


def _shared_image(backend: AmiBackend, image_id: str, region: str) -> Ami:
    for account, regions in ec2_backends.items():
        if account == backend.account_id or region not in regions:  # type: ignore[attr-defined]
            continue
        source = regions[region]
        image = source.amis.get(image_id)
        if image is None:
            continue
        me = backend.account_id  # type: ignore[attr-defined]
        if {"UserId": me} not in image.launch_permissions:
            raise ValueError(f"{image_id} of {account} is not shared with {me} (launch permission)")
        if me not in image.ebs_snapshot.create_volume_permission_userids:
            raise ValueError(f"the snapshot of {image_id} is not shared with {me} (createVolumePermission)")
        return image
    raise ValueError(f"no image {image_id} in {region} of another account")


@pytest.fixture
def shared_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    original_get = RDSBackend.get_snapshot
    original_copy_image = AmiBackend.copy_image

    def get_snapshot(self: RDSBackend, identifier: str, resource_type: Any, not_found_exception: Any) -> Any:
        if identifier.startswith("arn:") and identifier.split(":")[4] != self.account_id:
            return _shared_db_snapshot(self, identifier, not_found_exception)
        return original_get(self, identifier, resource_type, not_found_exception)

    def copy_image(
        self: AmiBackend,
        source_image_id: str,
        source_region: str,
        name: str | None = None,
        description: str | None = None,
    ) -> Ami:
        own = ec2_backends[self.account_id][source_region]  # type: ignore[attr-defined]
        if source_image_id in own.amis:
            return original_copy_image(self, source_image_id, source_region, name, description)
        source = _shared_image(self, source_image_id, source_region)
        image = Ami(self, _new_ami_id(), instance=None, source_ami=source, name=name, description=description)
        self.amis[image.id] = image
        return image

    original_response = AmisResponse.copy_image

    def copy_image_response(self: AmisResponse) -> ActionResult:
        answer = original_response(self)
        image = self.ec2_backend.amis[answer.result["ImageId"]]  # type: ignore[attr-defined]
        for spec in self._get_param("TagSpecifications", []):
            tags = {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
            target = {"image": image.id, "snapshot": image.ebs_snapshot.id}.get(spec.get("ResourceType"))
            if target and tags:
                self.ec2_backend.create_tags([target], tags)
        return answer

    monkeypatch.setattr(AmisResponse, "copy_image", copy_image_response)
    monkeypatch.setattr(RDSBackend, "get_snapshot", get_snapshot)
    monkeypatch.setattr(AmiBackend, "copy_image", copy_image)


def _new_ami_id() -> str:
    from moto.ec2.utils import random_ami_id

    return str(random_ami_id())


def assumed_session(role_arn: str, region: str) -> boto3.Session:
    """A session as ``role_arn`` (moto lands its requests in the role's account), for setting up and
    looking at another account in a test."""
    creds = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="test-setup")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )
