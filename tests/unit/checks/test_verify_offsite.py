"""verify of the offsite copies (moto, home eu-central-2, offsite eu-central-1): the newest copy of each
kind in the offsite region and the copy bucket, its own targets, metrics with the Region dimension."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
import time_machine

from cli.backupctl.dumpwriter import tar_gz, write_dump_slot
from cli.backupctl.rehearsal import create_database, launch_server
from lambdas.common.contracts import COPIED_FROM_KEY, backup_name, backup_tags, offsite_bucket_name
from lambdas.common.jobs.verify import VerificationFailed
from lambdas.common.settings import Offsite, Targets
from lambdas.verify.handler import handler
from tests.unit.checks.conftest import DB, MYSQL_DUMP, NOW, Dump, emf_metrics, make_ami, make_rds_snapshot

REGION = "eu-central-1"
COPY_BUCKET = offsite_bucket_name("123456789012", REGION)
FRESH = NOW - timedelta(hours=4, minutes=30)
TARGETS = Targets(dump_max_age_hours=27, rds_max_age_hours=50, ami_max_age_hours=216)


@pytest.fixture
def offsite(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Offsite on (every kind), the copy bucket, and the region's own EC2/RDS (for making copies)."""
    settings = Offsite(region=REGION, bucket=COPY_BUCKET, kinds=("dump", "rds", "ami"), targets=TARGETS)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=COPY_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    ec2, rds = boto3.client("ec2", region_name=REGION), boto3.client("rds", region_name=REGION)
    return {
        "s3": s3,
        "ec2": ec2,
        "rds": rds,
        "instance": launch_server(ec2, {"Name": "offsite-stand-in"}),
        "db": create_database(rds, DB, {"Name": "offsite-stand-in"}),
    }


def copy_rds(offsite: dict[str, Any], when: datetime) -> str:
    name = backup_name(DB, when)
    tags = {
        **backup_tags("rds-daily", DB),
        COPIED_FROM_KEY: f"arn:aws:rds:eu-central-2:123456789012:snapshot:{name}",
    }
    with time_machine.travel(when, tick=False):
        offsite["rds"].create_db_snapshot(
            DBInstanceIdentifier=DB,
            DBSnapshotIdentifier=name,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    return name


def copy_ami(offsite: dict[str, Any], source: str, when: datetime) -> str:
    ec2 = offsite["ec2"]
    with time_machine.travel(when, tick=False):
        image = ec2.create_image(
            InstanceId=offsite["instance"], Name=backup_name(source, when), NoReboot=True
        )["ImageId"]
    tags = {**backup_tags("ami-weekly", source), COPIED_FROM_KEY: "arn:aws:ec2:eu-central-2::image/ami-0"}
    ec2.create_tags(Resources=[image], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return image


def copy_dump(offsite: dict[str, Any], source: str, when: datetime) -> Dump:
    """What replication leaves in the copy bucket: the same keys and bytes as at home."""
    contents = {
        "files.tar.gz": tar_gz({"etc/hostname": b"web\n"}),
        "db-school.sql.gz": gzip.compress(MYSQL_DUMP),
    }
    bucket = offsite.get("bucket", COPY_BUCKET)
    return write_dump_slot(offsite["s3"], bucket, source, when, contents, create_only=False)


def home_and_copies(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    offsite: dict[str, Any],
    *,
    copied: tuple[str, ...] = ("dump", "rds", "ami"),
    rds_copy_age: timedelta = timedelta(hours=2),
) -> dict[str, Any]:
    """Fresh backups at home; offsite the ``copied`` kinds (the RDS copy ``rds_copy_age`` old)."""
    make_dump(server, FRESH)
    make_rds_snapshot(database, NOW - timedelta(hours=3))
    make_ami(server, NOW - timedelta(days=5))
    copies = {
        "dump": lambda: copy_dump(offsite, server, FRESH),
        "rds": lambda: copy_rds(offsite, NOW - rds_copy_age),
        "ami": lambda: copy_ami(offsite, server, NOW - timedelta(days=5)),
    }
    return {kind: copies[kind]() for kind in copied}


def run(lambda_context: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler({"scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    return result


def failure(lambda_context: Any) -> str:
    with pytest.raises(VerificationFailed) as caught:
        run(lambda_context)
    return str(caught.value)


def metric(found: list[dict[str, Any]], name: str, **dims: str) -> float:
    values = [m["value"] for m in found if m["name"] == name and m["dimensions"] == dims]
    assert len(values) == 1, (name, dims, found)
    return float(values[0])


def test_fresh_offsite_copies_pass_and_publish_their_metrics_with_the_region(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    offsite: dict[str, Any],
    lambda_context: Any,
    capsys: Any,
) -> None:
    home_and_copies(server, database, make_dump, offsite)
    result = run(lambda_context)
    assert result["passed"] is True
    assert {(c["source"], c["kind"], c["region"], c["ok"]) for c in result["offsite_checks"]} == {
        (server, "dump", REGION, True),
        (server, "ami", REGION, True),
        (database, "rds", REGION, True),
    }
    found = emf_metrics(capsys.readouterr().out)
    assert metric(
        found, "NewestGoodBackupAgeHours", Source=database, Kind="rds", Region=REGION
    ) == pytest.approx(2.0)
    assert metric(found, "VerificationPassed", Source=server, Kind="dump", Region=REGION) == 1
    assert metric(found, "WorstNewestGoodBackupAgeHours", Kind="ami", Region=REGION) == pytest.approx(120.0)
    # the home metrics are as before: no Region
    assert metric(found, "NewestGoodBackupAgeHours", Source=database, Kind="rds") == pytest.approx(3.0)
    assert metric(found, "VerificationFailures") == 0


def test_a_stale_offsite_rds_copy_fails_naming_the_region_while_home_is_fine(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    offsite: dict[str, Any],
    lambda_context: Any,
    capsys: Any,
) -> None:
    # the offsite target is 50 hours
    stale = home_and_copies(server, database, make_dump, offsite, rds_copy_age=timedelta(hours=60))["rds"]
    message = failure(lambda_context)
    assert f"RDS snapshot of {database}, offsite copy in {REGION}: the newest good backup {stale}" in message
    assert "is 60 hours old" in message
    assert "at most 50 hours" in message
    assert message.count("offsite copy") == 1
    found = emf_metrics(capsys.readouterr().out)
    assert metric(found, "VerificationPassed", Source=database, Kind="rds", Region=REGION) == 0
    assert metric(found, "VerificationPassed", Source=database, Kind="rds") == 1
    assert metric(found, "WorstNewestGoodBackupAgeHours", Kind="rds", Region=REGION) == pytest.approx(60.0)
    assert metric(found, "VerificationFailures") == 1


def test_a_missing_offsite_ami_copy_fails(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    offsite: dict[str, Any],
    lambda_context: Any,
) -> None:
    home_and_copies(server, database, make_dump, offsite, copied=("dump", "rds"))
    message = failure(lambda_context)
    assert f"AMI of {server}, offsite copy in {REGION}: no backup found" in message


def test_a_copied_dump_whose_object_has_not_arrived_is_not_good_yet(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    offsite: dict[str, Any],
    lambda_context: Any,
    capsys: Any,
) -> None:
    copied = home_and_copies(server, database, make_dump, offsite)["dump"]
    sql = next(key for key in copied.keys.values() if key.endswith(".sql.gz"))
    offsite["s3"].delete_object(Bucket=COPY_BUCKET, Key=sql)  # replicated the manifest, not yet the part
    message = failure(lambda_context)
    assert f"dump of {server}, offsite copy in {REGION}: none of the 1 backups found is usable." in message
    result_checks = [c for c in message.split(". ") if "offsite copy" in c]
    assert len(result_checks) == 1
    found = emf_metrics(capsys.readouterr().out)
    assert metric(found, "VerificationPassed", Source=server, Kind="dump", Region=REGION) == 0
    assert metric(found, "VerificationPassed", Source=server, Kind="dump") == 1
