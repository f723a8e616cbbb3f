"""Moto fixtures for prune: 180 days of backups for two sources, plus foreign look-alikes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import boto3
import pytest
import time_machine
from moto import mock_aws

from lambdas.common.contracts import JOB_AMI, JOB_RDS, aws_tags, backup_name, backup_tags

# Prune runs on Friday 2026-11-27 (ISO week 2026-W48) at 05:00 UTC.
NOW = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
EVENT = {"scheduled_time": "2026-11-27T05:00:00Z"}
DAYS = 180
RDS_TIME = time(3, 30)
AMI_TIME = time(3, 0)
RETENTION_ENV = {
    "KEEP_DAILY": "7",
    "KEEP_WEEKLY": "4",
    "KEEP_MONTHLY": "3",
    "MAX_AGE_DAYS": "90",
    "MIN_KEEP": "3",
}


@dataclass
class World:
    """What the fixture created, by what a test needs to find it again."""

    db_ids: list[str]
    instance_ids: list[str]
    rds_dates: list[date]  # one manual snapshot per DB per date
    ami_dates: list[date]  # one AMI per instance per date (Sundays)
    images: dict[str, dict[date, str]] = field(default_factory=dict)  # instance -> date -> AMI id
    image_snapshots: dict[str, list[str]] = field(default_factory=dict)  # AMI id -> EBS snapshot ids
    foreign_images: list[str] = field(default_factory=list)
    foreign_snapshots: list[str] = field(default_factory=list)
    foreign_db_snapshots: list[str] = field(default_factory=list)
    orphan_snapshot: str = ""


def at(day: date, when: time) -> datetime:
    return datetime.combine(day, when, tzinfo=UTC)


def managed_rds_names(rds: Any) -> set[str]:
    names = set()
    for page in rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual"):
        for snap in page["DBSnapshots"]:
            tags = {t["Key"]: t["Value"] for t in snap.get("TagList", [])}
            if tags.get("ManagedBy") == "schoolbackup":
                names.add(snap["DBSnapshotIdentifier"])
    return names


def all_db_snapshot_ids(rds: Any) -> set[str]:
    return {
        s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def image_ids(ec2: Any) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def snapshot_ids(ec2: Any) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def create_ami(
    ec2: Any, instance_id: str, when: datetime, tags: dict[str, str] | None
) -> tuple[str, list[str]]:
    with time_machine.travel(when, tick=False):
        kwargs: dict[str, Any] = {
            "InstanceId": instance_id,
            "Name": backup_name(instance_id, when),
            "NoReboot": True,
        }
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "image", "Tags": aws_tags(tags)}]
        image_id = ec2.create_image(**kwargs)["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snaps = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    if tags:  # moto cannot tag snapshots through CreateImage; the AMI job tags them afterwards
        ec2.create_tags(Resources=snaps, Tags=aws_tags(tags))
    return image_id, snaps


@pytest.fixture
def retention_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in RETENTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DRY_RUN", raising=False)


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield boto3.client("ec2"), boto3.client("rds")


@pytest.fixture
def world(aws: tuple[Any, Any], retention_env: None) -> World:
    """180 days: daily RDS snapshots and weekly AMIs for two sources each, foreign look-alikes, an orphan."""
    return build_world(*aws, days=DAYS)


@pytest.fixture
def small_world(aws: tuple[Any, Any], retention_env: None) -> World:
    """The same over 70 days (10 AMIs a source, 2 of them pruned): for behaviour, not arithmetic."""
    return build_world(*aws, days=70)


def backup_dates(days: int) -> tuple[list[date], list[date]]:
    """(RDS dates: every day; AMI dates: Sundays) of ``days`` days up to and including NOW's day."""
    first = NOW.date() - timedelta(days=days - 1)
    rds_dates = [first + timedelta(days=i) for i in range(days)]
    return rds_dates, [d for d in rds_dates if d.isoweekday() == 7]


def build_world(ec2: Any, rds: Any, days: int) -> World:
    rds_dates, ami_dates = backup_dates(days)
    first = rds_dates[0]
    db_ids = ["school-db", "moodle-db"]
    for db in db_ids:
        rds.create_db_instance(
            DBInstanceIdentifier=db,
            Engine="mysql",
            DBInstanceClass="db.t3.micro",
            MasterUsername="admin",
            MasterUserPassword="not-a-secret-1",
            AllocatedStorage=20,
        )
    instances = ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2)["Instances"]
    world = World(db_ids, [i["InstanceId"] for i in instances], rds_dates, ami_dates)

    for day in rds_dates:
        with time_machine.travel(at(day, RDS_TIME), tick=False):
            for db in db_ids:
                rds.create_db_snapshot(
                    DBInstanceIdentifier=db,
                    DBSnapshotIdentifier=backup_name(db, at(day, RDS_TIME)),
                    Tags=aws_tags(backup_tags(JOB_RDS, db)),
                )
    for instance in world.instance_ids:
        world.images[instance] = {}
        for day in ami_dates:
            image_id, snaps = create_ami(ec2, instance, at(day, AMI_TIME), backup_tags(JOB_AMI, instance))
            world.images[instance][day] = image_id
            world.image_snapshots[image_id] = snaps

    old = at(first, AMI_TIME)
    source = world.instance_ids[0]
    # Foreign look-alikes, as old as the oldest backups: an untagged sb- AMI, an sb- AMI with our other
    # tags but no ManagedBy, their snapshots, a plain snapshot, and sb- RDS snapshots without ManagedBy.
    untagged, snaps1 = create_ami(ec2, source, old - timedelta(days=1), None)
    lookalike, snaps2 = create_ami(
        ec2, source, old - timedelta(days=2), {"BackupJob": JOB_AMI, "BackupSource": source}
    )
    ec2.create_tags(Resources=snaps2, Tags=aws_tags({"BackupJob": JOB_AMI, "BackupSource": source}))
    with time_machine.travel(old, tick=False):
        volume = ec2.create_volume(AvailabilityZone="eu-central-2a", Size=1)["VolumeId"]
        plain = ec2.create_snapshot(VolumeId=volume, Description=f"sb-{source}-20250101-0300")["SnapshotId"]
        for name, tags in (
            ("sb-school-db-20250101-0330", {}),
            (
                "sb-school-db-20250102-0330",
                {"ManagedBy": "someone-else", "BackupJob": JOB_RDS, "BackupSource": "school-db"},
            ),
        ):
            rds.create_db_snapshot(
                DBInstanceIdentifier="school-db", DBSnapshotIdentifier=name, Tags=aws_tags(tags)
            )
            world.foreign_db_snapshots.append(name)
    world.foreign_images = [untagged, lookalike]
    world.foreign_snapshots = [*snaps1, *snaps2, plain]

    # An orphan: our AMI snapshot whose AMI was deregistered by hand.
    gone, gone_snaps = create_ami(ec2, source, old - timedelta(days=3), backup_tags(JOB_AMI, source))
    ec2.deregister_image(ImageId=gone)
    world.orphan_snapshot = gone_snaps[0]
    return world
