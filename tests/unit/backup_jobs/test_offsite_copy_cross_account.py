"""The offsite copy job into another account, against moto with two accounts and two regions: home
account 123456789012 in eu-central-2 (the function's), target account 210987654321 in eu-central-1.

moto is made to share as AWS does (tests/moto_sharing.py): the target can copy a staging copy only
after it was shared, and only in its own region. The job assumes the target's ``-copy`` role; moto
lands those requests in the target account's backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto.ec2.models import ec2_backends
from moto.rds.models import rds_backends

from lambdas.common.contracts import OFFSITE_KEY_ALIAS, STAGING_KEY_ALIAS, offsite_bucket_name
from lambdas.common.jobs.backup_result import BackupJobFailed
from lambdas.common.settings import Offsite, OffsiteCopySettings
from lambdas.offsite_copy.handler import handler
from tests.moto_sharing import assumed_session, shared_copies  # noqa: F401 - a fixture
from tests.unit.backup_jobs.conftest import AwsFaults

HOME_ACCOUNT, TARGET = "123456789012", "210987654321"
HOME, OFFSITE = "eu-central-2", "eu-central-1"
ROLE = f"arn:aws:iam::{TARGET}:role/schoolbackup-offsite-copy"
RUN = {"scheduled_time": "2026-11-27T04:15:00Z"}
TODAY = "20261127-0330"
SELECTED = {"Backup": "true"}
pytestmark = pytest.mark.usefixtures("shared_copies")


def _tags(job: str, source: str) -> list[dict[str, str]]:
    tags = {"ManagedBy": "schoolbackup", "BackupJob": job, "BackupSource": source}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tags_of(items: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def target_session() -> boto3.Session:
    return assumed_session(ROLE, OFFSITE)


def _key(kms: Any, alias: str) -> str:
    key = kms.create_key(Description=alias)["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return str(key["Arn"])


@pytest.fixture
def keys(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Copies into the target account on (rds daily, ami weekly); the staging key in the home account's
    offsite region and the offsite key in the target's."""
    offsite = Offsite(
        region=OFFSITE, bucket=offsite_bucket_name(TARGET, OFFSITE), account=TARGET, role_arn=ROLE
    )
    for name, value in OffsiteCopySettings(offsite).to_env().items():
        monkeypatch.setenv(name, value)
    return {
        "staging": _key(boto3.client("kms", region_name=OFFSITE), STAGING_KEY_ALIAS),
        "offsite": _key(target_session().client("kms"), OFFSITE_KEY_ALIAS),
    }


@pytest.fixture
def school(
    keys: dict[str, str], make_db: Callable[..., str], make_instance: Callable[..., str]
) -> dict[str, str]:
    db = make_db("school-db", SELECTED)
    server = make_instance(SELECTED)
    name = f"sb-{db}-{TODAY}"
    boto3.client("rds", region_name=HOME).create_db_snapshot(
        DBSnapshotIdentifier=name, DBInstanceIdentifier=db, Tags=_tags("rds-daily", db)
    )
    image = boto3.client("ec2", region_name=HOME).create_image(
        InstanceId=server,
        Name=f"sb-{server}-20261126-0300",
        TagSpecifications=[{"ResourceType": "image", "Tags": _tags("ami-weekly", server)}],
    )["ImageId"]
    return {"db": name, "ami": f"sb-{server}-20261126-0300", "image": image, **keys}


def stages_rds() -> dict[str, Any]:
    snaps = boto3.client("rds", region_name=OFFSITE).describe_db_snapshots(SnapshotType="manual")
    return {s["DBSnapshotIdentifier"]: s for s in snaps["DBSnapshots"]}


def target_rds() -> dict[str, Any]:
    snaps = target_session().client("rds").describe_db_snapshots(SnapshotType="manual")
    return {s["DBSnapshotIdentifier"]: s for s in snaps["DBSnapshots"]}


def stages_ami() -> dict[str, Any]:
    images = boto3.client("ec2", region_name=OFFSITE).describe_images(Owners=["self"])["Images"]
    return {i["Name"]: i for i in images}


def target_ami() -> dict[str, Any]:
    images = target_session().client("ec2").describe_images(Owners=["self"])["Images"]
    return {i["Name"]: i for i in images}


def home_arn(name: str) -> str:
    snap = boto3.client("rds", region_name=HOME).describe_db_snapshots(DBSnapshotIdentifier=name)
    return str(snap["DBSnapshots"][0]["DBSnapshotArn"])


def test_first_run_stages_under_the_staging_key_in_the_home_account_and_copies_nothing_yet(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    result = handler(RUN, lambda_context)

    assert result["account"] == TARGET
    assert result["rds"]["staging"]["started"] == [school["db"]]
    assert result["ami"]["staging"]["started"] == [school["ami"]]
    assert result["rds"]["created"] == [] and result["rds"]["failed"] == {}
    stage = stages_rds()[school["db"]]
    assert stage["KmsKeyId"] == school["staging"]  # moto resolves the alias: the staging key
    assert tags_of(stage["TagList"]) == {
        "ManagedBy": "schoolbackup",
        "BackupJob": "rds-daily",
        "BackupSource": school["db"].split("-20")[0].removeprefix("sb-"),
        "CopiedFrom": home_arn(school["db"]),
        "OffsiteStage": "staging",
    }
    image = stages_ami()[school["ami"]]
    assert tags_of(image["Tags"])["OffsiteStage"] == "staging"
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap = boto3.client("ec2", region_name=OFFSITE).describe_snapshots(SnapshotIds=[snapshot])
    assert tags_of(snap["Snapshots"][0]["Tags"])["OffsiteStage"] == "staging"  # prune's delete condition
    (sent,) = aws_faults.params("ec2.CopyImage")
    assert sent["KmsKeyId"] == [STAGING_KEY_ALIAS] and sent["SourceRegion"] == [HOME]
    assert target_rds() == {} and target_ami() == {}


def test_second_run_shares_the_staging_copies_and_the_target_copies_them_with_its_own_key(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    handler(RUN, lambda_context)

    result = handler(RUN, lambda_context)

    assert result["rds"]["created"] == [school["db"]]
    assert result["ami"]["created"] == [school["ami"]]
    shared = boto3.client("rds", region_name=OFFSITE).describe_db_snapshot_attributes(
        DBSnapshotIdentifier=school["db"]
    )["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
    assert {"AttributeName": "restore", "AttributeValues": [TARGET]} in shared
    copy = target_rds()[school["db"]]
    assert copy["KmsKeyId"] == school["offsite"]  # the target account's offsite key
    assert tags_of(copy["TagList"]) == {
        "ManagedBy": "schoolbackup",
        "BackupJob": "rds-daily",
        "BackupSource": tags_of(stages_rds()[school["db"]]["TagList"])["BackupSource"],
        "CopiedFrom": home_arn(school["db"]),  # the original, not the staging copy
    }
    (_, sent) = aws_faults.params("rds.CopyDBSnapshot")
    stage_arn = stages_rds()[school["db"]]["DBSnapshotArn"]
    assert sent["SourceDBSnapshotIdentifier"] == [stage_arn]
    assert f":{HOME_ACCOUNT}:" in stage_arn and f":{OFFSITE}:" in stage_arn
    assert "PreSignedUrl" not in sent  # same region: nothing to presign
    image = target_ami()[school["ami"]]
    assert tags_of(image["Tags"]) == {
        "ManagedBy": "schoolbackup",
        "BackupJob": "ami-weekly",
        "BackupSource": tags_of(image["Tags"])["BackupSource"],
        "CopiedFrom": f"arn:aws:ec2:{HOME}::image/{school['image']}",
    }
    (_, sent_image) = aws_faults.params("ec2.CopyImage")
    assert sent_image["KmsKeyId"] == [OFFSITE_KEY_ALIAS] and sent_image["SourceRegion"] == [OFFSITE]


def test_third_run_deletes_the_staging_copies_once_the_copies_are_usable_and_copies_nothing_twice(
    school: dict[str, str], lambda_context: Any
) -> None:
    handler(RUN, lambda_context)
    handler(RUN, lambda_context)
    stage_image = stages_ami()[school["ami"]]
    stage_snapshot = stage_image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    result = handler(RUN, lambda_context)

    assert result["rds"]["already_existed"] == [school["db"]] and result["rds"]["created"] == []
    assert result["rds"]["staging"]["deleted"] == [school["db"]]
    assert result["ami"]["staging"]["deleted"] == [school["ami"]]
    assert stages_rds() == {} and stages_ami() == {}
    left = boto3.client("ec2", region_name=OFFSITE).describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert stage_snapshot not in {s["SnapshotId"] for s in left}  # not left behind, costing money
    assert set(target_rds()) == {school["db"]} and set(target_ami()) == {school["ami"]}
    assert handler(RUN, lambda_context)["rds"]["staging"] == {"started": [], "waiting": [], "deleted": []}


def test_a_staging_copy_still_being_made_is_waited_for_not_shared(
    school: dict[str, str], lambda_context: Any
) -> None:
    handler(RUN, lambda_context)
    rds_backends[HOME_ACCOUNT][OFFSITE].database_snapshots[school["db"]].status = "copying"

    result = handler(RUN, lambda_context)

    assert result["rds"]["staging"]["waiting"] == [school["db"]]
    assert result["rds"]["created"] == [] and result["rds"]["failed"] == {}
    assert school["db"] not in target_rds()


def test_a_failed_staging_copy_is_deleted_reported_and_started_again(
    school: dict[str, str], lambda_context: Any
) -> None:
    handler(RUN, lambda_context)
    rds_backends[HOME_ACCOUNT][OFFSITE].database_snapshots[school["db"]].status = "failed"

    with pytest.raises(BackupJobFailed, match=r"staging copy sb-school-db-20261127-0330 in eu-central-1"):
        handler(RUN, lambda_context)
    assert school["db"] not in stages_rds()  # deleted: it holds the name and helps nobody

    again = handler(RUN, lambda_context)
    assert again["rds"]["staging"]["started"] == [school["db"]]


def test_a_staging_copy_overtaken_by_a_newer_original_is_deleted_unless_still_being_made(
    school: dict[str, str], lambda_context: Any
) -> None:
    handler(RUN, lambda_context)  # stages today's snapshot and AMI
    db = tags_of(stages_rds()[school["db"]]["TagList"])["BackupSource"]
    newer = f"sb-{db}-20261128-0330"
    boto3.client("rds", region_name=HOME).create_db_snapshot(
        DBSnapshotIdentifier=newer, DBInstanceIdentifier=db, Tags=_tags("rds-daily", db)
    )
    ec2_backends[HOME_ACCOUNT][OFFSITE].amis[stages_ami()[school["ami"]]["ImageId"]].state = "pending"

    result = handler({"scheduled_time": "2026-11-28T04:15:00Z"}, lambda_context)

    assert result["rds"]["staging"]["started"] == [newer]
    assert result["rds"]["staging"]["deleted"] == [school["db"]]  # overtaken, never copied: not needed
    assert set(stages_rds()) == {newer}
    assert school["ami"] in stages_ami()  # pending, and still the newest AMI: waited for
    assert result["ami"]["staging"]["waiting"] == [school["ami"]]


def test_a_role_that_cannot_be_assumed_fails_the_run_naming_the_error(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    aws_faults.bodies["sts.AssumeRole"] = (
        403,
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not "
        f"authorized to perform: sts:AssumeRole on resource: {ROLE}</Message></Error>"
        "<RequestId>denied</RequestId></ErrorResponse>",
    )

    with pytest.raises(BackupJobFailed, match=r"AccessDenied.*sts:AssumeRole.*schoolbackup-offsite-copy"):
        handler(RUN, lambda_context)

    assert stages_rds() == {}  # nothing is staged when the target cannot be reached
