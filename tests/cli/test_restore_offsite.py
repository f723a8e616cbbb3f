"""``backupctl restore db|server|files|dump --from-region``: restoring from the offsite copies, into the
offsite region, when the home region (or everything in it) is lost; and the regions it refuses."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.backupctl.dumpwriter import write_dump_slot
from tests.cli.conftest import (
    BUCKET,
    COPY_BUCKET,
    DB,
    FILES,
    MYSQL_DUMP,
    NIGHT,
    OFFSITE,
    Result,
    tar_gz,
)
from tests.cli.test_restore_aws import make_ami, make_db_snapshot

SOURCE = "i-0abc1234def567890"
DAY = "2026-11-26"  # NIGHT (00:30 UTC) is 01:30 on this day in Zurich

Cli = Callable[..., Result]


@pytest.fixture
def there(aws: None) -> dict[str, Any]:
    """The offsite region: its copy bucket, and a network to restore into (no school runs there)."""
    s3 = boto3.client("s3", region_name=OFFSITE)
    s3.create_bucket(Bucket=COPY_BUCKET, CreateBucketConfiguration={"LocationConstraint": OFFSITE})
    ec2 = boto3.client("ec2", region_name=OFFSITE)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{OFFSITE}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="restore", Description="restore", VpcId=vpc)["GroupId"]
    rds = boto3.client("rds", region_name=OFFSITE)
    rds.create_db_subnet_group(
        DBSubnetGroupName="restore-subnets", DBSubnetGroupDescription="restore", SubnetIds=subnets
    )
    return {"s3": s3, "ec2": ec2, "rds": rds, "subnet": subnets[0], "sg": sg}


def test_files_and_dump_come_from_the_copy_bucket(
    there: dict[str, Any], offsite_cli: Cli, tmp_path: Path
) -> None:
    contents = {"files.tar.gz": tar_gz(FILES), "db-school.sql.gz": gzip.compress(MYSQL_DUMP)}
    write_dump_slot(there["s3"], COPY_BUCKET, SOURCE, NIGHT, contents)
    # nothing at home: the home bucket (of a lost region, or emptied) is not read
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0

    files = offsite_cli(
        "restore", "files", "--date", DAY, "--to", str(tmp_path / "files"), "--from-region", OFFSITE
    )
    dump = offsite_cli(
        "restore", "dump", "--date", DAY, "--to", str(tmp_path / "school.sql"), "--from-region", OFFSITE
    )

    assert files.exit_code == 0, files.stderr
    restored = {
        p.relative_to(tmp_path / "files").as_posix(): p.read_bytes()
        for p in (tmp_path / "files").rglob("*")
        if p.is_file()
    }
    assert restored == FILES
    assert dump.exit_code == 0, dump.stderr
    assert (tmp_path / "school.sql").read_bytes() == MYSQL_DUMP


def test_without_from_region_the_home_bucket_is_read(
    there: dict[str, Any], offsite_cli: Cli, tmp_path: Path
) -> None:
    contents = {"files.tar.gz": tar_gz(FILES), "db-school.sql.gz": gzip.compress(MYSQL_DUMP)}
    write_dump_slot(there["s3"], COPY_BUCKET, SOURCE, NIGHT, contents)

    result = offsite_cli("restore", "files", "--date", DAY, "--to", str(tmp_path / "files"))

    assert result.exit_code == 1
    assert not (tmp_path / "files").exists() or not any((tmp_path / "files").iterdir())


def test_db_is_restored_from_the_offsite_copy_into_the_offsite_region(
    there: dict[str, Any], offsite_cli: Cli
) -> None:
    rds = there["rds"]
    rds.create_db_instance(
        DBInstanceIdentifier=DB, Engine="mysql", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="admin", MasterUserPassword="not-a-secret-1", DBSubnetGroupName="restore-subnets",
    )  # fmt: skip
    snapshot = make_db_snapshot(rds, DB, NIGHT)  # the copy carries the original's name and tags
    rds.delete_db_instance(DBInstanceIdentifier=DB, SkipFinalSnapshot=True)  # no database runs there

    result = offsite_cli(
        "restore", "db", "--as", "school-db-offsite", "--subnet-group", "restore-subnets",
        "--security-group", there["sg"], "--from-region", OFFSITE, "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert result.json()["from"] == snapshot
    new = rds.describe_db_instances(DBInstanceIdentifier="school-db-offsite")["DBInstances"][0]
    assert new["DBSubnetGroup"]["DBSubnetGroupName"] == "restore-subnets"
    home = boto3.client("rds").describe_db_instances()["DBInstances"]
    assert home == []  # nothing was created at home


def test_server_is_restored_from_the_offsite_copy_into_the_offsite_region(
    there: dict[str, Any], offsite_cli: Cli
) -> None:
    ec2 = there["ec2"]
    original = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=there["subnet"])
    instance = original["Instances"][0]["InstanceId"]
    ami = make_ami(ec2, instance, NIGHT)
    ec2.terminate_instances(InstanceIds=[instance])

    result = offsite_cli(
        "restore", "server", "--source", instance, "--subnet-id", there["subnet"], "--instance-type",
        "t3.micro", "--security-group", there["sg"], "--from-region", OFFSITE, "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    launched = [
        i
        for r in ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [ami]}])["Reservations"]
        for i in r["Instances"]
    ]
    assert len(launched) == 1 and launched[0]["SubnetId"] == there["subnet"]


def test_another_region_is_bad_usage_naming_the_setting(aws: None, offsite_cli: Cli, tmp_path: Path) -> None:
    result = offsite_cli(
        "restore", "files", "--date", DAY, "--to", str(tmp_path / "x"), "--from-region", "us-east-1"
    )

    assert result.exit_code == 2
    assert (
        "the offsite copies are in eu-central-1 (offsite.region in cdk.json), not in us-east-1"
        in result.stderr
    )
    assert not (tmp_path / "x").exists()


def test_from_region_without_offsite_copies_is_bad_usage(aws: None, cli: Cli, tmp_path: Path) -> None:
    result = cli("restore", "db", "--as", "new-db", "--from-region", OFFSITE)

    assert result.exit_code == 2
    assert "there are no offsite copies; offsite.enabled is false in cdk.json" in result.stderr
