"""Fixtures for verify, restore_test and report: moto with a bucket, a selected server and database,
and helpers that write real dumps (gzip'd tar + SQL with manifest), RDS snapshots and AMIs."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import boto3
import pytest
import time_machine
from moto import mock_aws

from cli.backupctl.dumpwriter import WrittenDump, tar_gz, write_dump_slot
from cli.backupctl.rehearsal import create_database, launch_server
from lambdas.common.contracts import backup_name, backup_tags
from tests.emf import emf_metrics  # noqa: F401 - re-exported for the tests here

BUCKET = "schoolbackup-123456789012-eu-central-2"
DB = "school-db"
NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)  # verify's default time on a Friday


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, clock: time_machine.Coordinates) -> Iterator[None]:
    env = {
        "BACKUP_BUCKET": BUCKET,
        "SELECTION_TAG": "Backup=true",
        "DUMP_MAX_AGE_HOURS": "26",
        "RDS_MAX_AGE_HOURS": "26",
        "AMI_MAX_AGE_HOURS": "192",
        "KEEP_DAILY": "7",
        "KEEP_WEEKLY": "4",
        "KEEP_MONTHLY": "3",
        "MAX_AGE_DAYS": "90",
        "MIN_KEEP": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("EC2_INSTANCE_IDS", "RDS_INSTANCE_IDS", "DUMP_ENABLED", "RESTORE_TEST_PICK"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-2"}
        )
        yield


@pytest.fixture
def server(aws: None) -> str:
    return launch_server(boto3.client("ec2"), {"Backup": "true"})


@pytest.fixture
def database(aws: None) -> str:
    return create_database(boto3.client("rds"), DB, {"Backup": "true"})


MYSQL_DUMP = (
    b"-- MariaDB dump 10.19\n--\n-- Host: db    Database: school\n"
    + b"INSERT INTO pupils VALUES (1,'Anna'),(2,'Ben');\n" * 200
    + b"-- Dump completed on 2026-11-27  1:04:41\n"
)


Dump = WrittenDump


@pytest.fixture
def make_dump(aws: None) -> Callable[..., Dump]:
    """Write a dump of ``source`` at ``when`` (the folder time); finished 4 minutes later."""

    def make(
        source: str,
        when: datetime,
        *,
        manifest: bool = True,
        status: str = "ok",
        sql: bytes = MYSQL_DUMP,
        engine: str = "mysql",
        inconsistent: tuple[str, ...] = (),
    ) -> Dump:
        contents = {
            "files.tar.gz": tar_gz({"etc/hostname": b"web\n", "var/www/index.php": b"<?php echo 'hi';\n"}),
            "db-school.sql.gz": gzip.compress(sql),
        }
        return write_dump_slot(
            boto3.client("s3"),
            BUCKET,
            source,
            when,
            contents,
            engine=engine,
            status=status,
            manifest=manifest,
            inconsistent=inconsistent,
            create_only=False,  # the tests here also damage dumps afterwards
        )

    return make


def make_rds_snapshot(db: str, when: datetime) -> str:
    """A schoolbackup snapshot; moto stamps SnapshotCreateTime with the (travelled) clock."""
    name = backup_name(db, when)
    with time_machine.travel(when, tick=False):
        boto3.client("rds").create_db_snapshot(
            DBInstanceIdentifier=db,
            DBSnapshotIdentifier=name,
            Tags=[{"Key": k, "Value": v} for k, v in backup_tags("rds-daily", db).items()],
        )
    return name


def make_ami(instance: str, when: datetime) -> str:
    name = backup_name(instance, when)
    ec2 = boto3.client("ec2")
    with time_machine.travel(when, tick=False):
        image = ec2.create_image(InstanceId=instance, Name=name, NoReboot=True)["ImageId"]
    tags = [{"Key": k, "Value": v} for k, v in backup_tags("ami-weekly", instance).items()]
    ec2.create_tags(Resources=[image], Tags=tags)
    return image
