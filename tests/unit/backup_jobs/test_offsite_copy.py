"""The offsite copy job against moto in two regions: eu-central-2 (home, the function's own) and
eu-central-1 (offsite). Originals are made here as rds_snapshot and ami_backup make them (name and tags);
every AWS call of the handler is judged by the IAM harness against the stack with offsite copies on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.ec2.models import ec2_backends
from moto.rds.models import rds_backends

from lambdas.common.contracts import OFFSITE_KEY_ALIAS, offsite_bucket_name
from lambdas.common.jobs.backup_result import BackupJobFailed
from lambdas.common.settings import Offsite, OffsiteCopySettings
from lambdas.offsite_copy.handler import handler
from tests.unit.backup_jobs.conftest import AwsFaults, emf_metrics

ACCOUNT = "123456789012"
HOME, OFFSITE = "eu-central-2", "eu-central-1"
RUN = {"scheduled_time": "2026-11-27T04:15:00Z"}
TODAY, EARLIER = "20261127-0330", "20261126-0330"
SELECTED = {"Backup": "true"}


def _tags(job: str, source: str, **extra: str) -> list[dict[str, str]]:
    tags = {"ManagedBy": "schoolbackup", "BackupJob": job, "BackupSource": source, **extra}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tags_of(items: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


@pytest.fixture
def offsite(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Offsite copies on (rds daily, ami weekly) and the offsite key with its alias; returns the key ARN."""
    settings = OffsiteCopySettings(Offsite(region=OFFSITE, bucket=offsite_bucket_name(ACCOUNT, OFFSITE)))
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    kms = boto3.client("kms", region_name=OFFSITE)
    key = kms.create_key(Description="offsite")["KeyMetadata"]
    kms.create_alias(AliasName=OFFSITE_KEY_ALIAS, TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def home_rds() -> Any:
    return boto3.client("rds", region_name=HOME)


def off_rds() -> Any:
    return boto3.client("rds", region_name=OFFSITE)


def off_ec2() -> Any:
    return boto3.client("ec2", region_name=OFFSITE)


def db_original(db: str, stamp: str, tags: list[dict[str, str]] | None = None) -> str:
    name = f"sb-{db}-{stamp}"
    home_rds().create_db_snapshot(
        DBSnapshotIdentifier=name,
        DBInstanceIdentifier=db,
        Tags=_tags("rds-daily", db) if tags is None else tags,
    )
    return name


def db_copies() -> dict[str, dict[str, Any]]:
    snaps = off_rds().describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    return {s["DBSnapshotIdentifier"]: s for s in snaps}


def ami_original(instance: str, stamp: str, managed: bool = True) -> str:
    ec2 = boto3.client("ec2", region_name=HOME)
    spec = [{"ResourceType": "image", "Tags": _tags("ami-weekly", instance)}] if managed else []
    return str(
        ec2.create_image(InstanceId=instance, Name=f"sb-{instance}-{stamp}", TagSpecifications=spec)[
            "ImageId"
        ]
    )


def ami_copies() -> dict[str, dict[str, Any]]:
    images = off_ec2().describe_images(Owners=["self"])["Images"]
    return {i["Name"]: i for i in images}


def ami_copy_made_earlier(instance: str, stamp: str, original: str) -> str:
    """A copy as an earlier run left it (made by the test, not by the job)."""
    ec2 = off_ec2()
    image = ec2.copy_image(SourceImageId=original, SourceRegion=HOME, Name=f"sb-{instance}-{stamp}")[
        "ImageId"
    ]
    arn = f"arn:aws:ec2:{HOME}::image/{original}"
    ec2.create_tags(Resources=[image], Tags=_tags("ami-weekly", instance, CopiedFrom=arn))
    return str(image)


@pytest.fixture
def school(
    offsite: str, make_db: Callable[..., str], make_instance: Callable[..., str]
) -> Iterator[dict[str, str]]:
    db = make_db("school-db", SELECTED)
    server = make_instance(SELECTED)
    return {"db": db, "server": server, "key": offsite}


def test_copies_newest_usable_originals_with_name_offsite_key_and_tags(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    db, server = school["db"], school["server"]
    db_original(db, EARLIER)
    newest_db = db_original(db, TODAY)
    ami_original(server, "20261122-0300")
    newest_image = ami_original(server, "20261126-0300")

    result = handler(RUN, lambda_context)

    assert result["rds"]["created"] == [newest_db]
    assert result["ami"]["created"] == [f"sb-{server}-20261126-0300"]
    copy = db_copies()[newest_db]
    original_arn = home_rds().describe_db_snapshots(DBSnapshotIdentifier=newest_db)["DBSnapshots"][0][
        "DBSnapshotArn"
    ]
    assert copy["Encrypted"] is True
    assert copy["KmsKeyId"] == school["key"]  # moto resolves the alias to the offsite key
    assert tags_of(copy["TagList"]) == {
        "ManagedBy": "schoolbackup",
        "BackupJob": "rds-daily",
        "BackupSource": db,
        "CopiedFrom": original_arn,
    }
    assert list(db_copies()) == [newest_db]  # only the newest, never the older one
    image = ami_copies()[f"sb-{server}-20261126-0300"]
    assert tags_of(image["Tags"]) == {
        "ManagedBy": "schoolbackup",
        "BackupJob": "ami-weekly",
        "BackupSource": server,
        "CopiedFrom": f"arn:aws:ec2:{HOME}::image/{newest_image}",
    }
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap_tags = tags_of(off_ec2().describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0].get("Tags"))
    assert snap_tags["ManagedBy"] == "schoolbackup"
    assert snap_tags["BackupSource"] == server
    # what was asked of AWS: re-encryption with the offsite key (moto keeps neither for AMIs)
    (sent,) = aws_faults.params("ec2.CopyImage")
    assert sent["Encrypted"] == ["true"]
    assert sent["KmsKeyId"] == [OFFSITE_KEY_ALIAS]
    assert sent["SourceRegion"] == [HOME]
    (rds_sent,) = aws_faults.params("rds.CopyDBSnapshot")
    assert rds_sent["KmsKeyId"] == [OFFSITE_KEY_ALIAS]
    assert rds_sent["CopyTags"] == ["false"]
    assert rds_sent["SourceDBSnapshotIdentifier"] == [original_arn]
    assert "PreSignedUrl" in rds_sent  # boto3 presigned the request in the home region


def test_second_run_copies_nothing_twice_and_says_so(
    school: dict[str, str], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    name = db_original(school["db"], TODAY)
    ami_original(school["server"], "20261126-0300")
    handler(RUN, lambda_context)
    before = (set(db_copies()), set(ami_copies()))
    capsys.readouterr()

    second = handler(RUN, lambda_context)

    assert (set(db_copies()), set(ami_copies())) == before
    assert second["rds"]["created"] == [] and second["rds"]["already_existed"] == [name]
    assert second["ami"]["created"] == [] and second["ami"]["already_existed"] == [
        f"sb-{school['server']}-20261126-0300"
    ]
    published = emf_metrics(capsys.readouterr().out)
    existed = {m["dimensions"]["Job"]: m["value"] for m in published if m["name"] == "BackupsAlreadyExisted"}
    created = [m for m in published if m["name"] == "BackupsCreated"]
    assert existed == {"rds-daily": 1, "ami-weekly": 1}
    assert {m["value"] for m in created} == {0}
    assert {m["dimensions"]["Region"] for m in created} == {OFFSITE}


def test_a_failed_earlier_copy_is_a_failure_every_run_not_a_copy_that_exists(
    school: dict[str, str], lambda_context: Any
) -> None:
    """A copy that failed (e.g. the original's key could not be used) holds the name: the job must not
    count it as made, but fail naming it, so that the errors alarm tells the admin."""
    name = db_original(school["db"], TODAY)
    ami = f"sb-{school['server']}-20261126-0300"
    ami_original(school["server"], "20261126-0300")
    handler(RUN, lambda_context)
    rds_backends[ACCOUNT][OFFSITE].database_snapshots[name].status = "failed"
    ec2_backends[ACCOUNT][OFFSITE].amis[ami_copies()[ami]["ImageId"]].state = "failed"

    with pytest.raises(BackupJobFailed) as caught:
        handler(RUN, lambda_context)

    said = str(caught.value)
    assert f"the offsite copy {name} in {OFFSITE} failed (state failed)" in said
    assert f"the offsite copy {ami} in {OFFSITE} failed (state failed)" in said


def test_pending_and_foreign_originals_and_copies_are_never_copied(
    school: dict[str, str], lambda_context: Any
) -> None:
    db, server = school["db"], school["server"]
    usable = db_original(db, EARLIER)
    pending = db_original(db, TODAY)
    rds_backends[ACCOUNT][HOME].database_snapshots[pending].status = "creating"
    db_original(db, "20261127-0331", tags=[{"Key": "Backup", "Value": "manual"}])  # the school's own
    db_original(db, "20261127-0332", tags=_tags("rds-daily", db, CopiedFrom="arn:elsewhere"))  # a copy
    image = ami_original(server, "20261126-0300")
    ec2_backends[ACCOUNT][HOME].amis[image].state = "pending"
    ami_original(server, "20261125-0300", managed=False)

    result = handler(RUN, lambda_context)

    assert list(db_copies()) == [usable]
    assert result["rds"]["created"] == [usable]
    assert ami_copies() == {}
    assert result["ami"] == {
        "job": "ami-weekly",
        "created": [],
        "already_existed": [],
        "failed": {},
        "not_due": [],
    }


def test_weekly_skips_while_the_newest_copy_is_three_days_old_and_copies_at_seven(
    school: dict[str, str], lambda_context: Any
) -> None:
    server = school["server"]
    old = ami_original(server, "20261124-0300")
    newest = f"sb-{server}-20261127-0300"
    ami_original(server, "20261127-0300")
    ami_copy_made_earlier(server, "20261124-0300", old)

    skipped = handler(RUN, lambda_context)

    assert skipped["ami"]["not_due"] == [newest]
    assert newest not in ami_copies()

    later = {"scheduled_time": "2026-12-01T04:15:00Z"}  # the newest copy is now 7 days old
    copied = handler(later, lambda_context)

    assert copied["ami"]["created"] == [newest]
    assert newest in ami_copies()


def test_weekly_rds_copies_when_there_is_no_copy_yet(
    school: dict[str, str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFSITE_RDS_FREQUENCY", "weekly")
    name = db_original(school["db"], TODAY)

    result = handler(RUN, lambda_context)

    assert result["rds"]["created"] == [name]


def test_a_copy_outlives_its_original(school: dict[str, str], lambda_context: Any) -> None:
    name = db_original(school["db"], TODAY)
    handler(RUN, lambda_context)
    home_rds().delete_db_snapshot(DBSnapshotIdentifier=name)  # prune at home, later

    again = handler(RUN, lambda_context)

    assert name in db_copies()  # the job never deletes
    assert (again["rds"]["created"], again["rds"]["already_existed"], again["rds"]["failed"]) == ([], [], {})


def _text(body: bytes | str | None) -> str:
    return body.decode() if isinstance(body, bytes) else body or ""


def _fail_copy_of(aws_faults: AwsFaults, marker: str) -> None:
    """CopyDBSnapshot of one source answers with an AWS error; every other call goes to moto."""
    original = aws_faults.answer

    def answer(event_name: str, request: Any) -> AWSResponse | None:
        if event_name.endswith("rds.CopyDBSnapshot") and marker in _text(request.body):
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>KMSKeyNotAccessibleFault</Code>"
                "<Message>The key is disabled.</Message></Error><RequestId>x</RequestId></ErrorResponse>"
            )
            return AWSResponse(request.url, 400, {}, MockRawResponse(body))
        return original(event_name, request)

    aws_faults.answer = answer  # type: ignore[method-assign]


def test_one_failing_source_does_not_stop_the_other_and_the_handler_raises_after_publishing(
    school: dict[str, str],
    make_db: Callable[..., str],
    lambda_context: Any,
    aws_faults: AwsFaults,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = make_db("library-db", SELECTED)
    db_original(school["db"], TODAY)
    good = db_original(other, TODAY)
    _fail_copy_of(aws_faults, "school-db")

    with pytest.raises(BackupJobFailed, match=r"school-db: KMSKeyNotAccessibleFault"):
        handler(RUN, lambda_context)

    assert list(db_copies()) == [good]
    published = emf_metrics(capsys.readouterr().out)
    by_job = {(m["name"], m["dimensions"].get("Job")): m["value"] for m in published}
    assert by_job[("BackupsFailed", "rds-daily")] == 1
    assert by_job[("BackupsCreated", "rds-daily")] == 1


def test_throttling_is_ridden_out_by_the_retries(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    name = db_original(school["db"], TODAY)
    ami_original(school["server"], "20261126-0300")
    aws_faults.throttle.update({"rds.CopyDBSnapshot": 3, "ec2.CopyImage": 3, "rds.DescribeDBSnapshots": 2})

    result = handler(RUN, lambda_context)

    assert result["rds"]["created"] == [name]
    assert len(result["ami"]["created"]) == 1
    assert aws_faults.throttled["rds.CopyDBSnapshot"] == 3
    assert aws_faults.throttled["ec2.CopyImage"] == 3


def test_a_full_offsite_quota_fails_clearly_and_copies_nothing(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    db_original(school["db"], TODAY)
    aws_faults.rds_quota(used=100, limit=100)

    with pytest.raises(BackupJobFailed, match=r"quota in eu-central-1 is full \(100 of 100 in use\)"):
        handler(RUN, lambda_context)

    assert db_copies() == {}


def test_a_concurrent_run_that_won_the_race_counts_as_already_existed(
    school: dict[str, str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    name = db_original(school["db"], TODAY)
    ami_original(school["server"], "20261126-0300")
    aws_faults.bodies["rds.CopyDBSnapshot"] = (
        400,
        "<ErrorResponse><Error><Type>Sender</Type><Code>DBSnapshotAlreadyExists</Code><Message>exists</Message>"
        "</Error><RequestId>race</RequestId></ErrorResponse>",
    )
    aws_faults.bodies["ec2.CopyImage"] = (
        400,
        "<Response><Errors><Error><Code>InvalidAMIName.Duplicate</Code><Message>in use</Message></Error>"
        "</Errors><RequestID>race</RequestID></Response>",
    )

    result = handler(RUN, lambda_context)

    assert result["rds"]["already_existed"] == [name]
    assert result["ami"]["already_existed"] == [f"sb-{school['server']}-20261126-0300"]
    assert result["rds"]["failed"] == {} and result["ami"]["failed"] == {}
