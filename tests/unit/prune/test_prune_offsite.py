"""Prune in the offsite region (moto, home eu-central-2, offsite eu-central-1): the copies there by the
offsite policy, with the home safety rules; every AWS call judged against the stack with offsite on."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import boto3
import pytest
import time_machine

from lambdas.common.contracts import COPIED_FROM_KEY, JOB_AMI, JOB_RDS, aws_tags, backup_name, backup_tags
from lambdas.common.retention import RetentionPolicy
from lambdas.common.settings import Offsite
from lambdas.prune import handler as prune_handler
from tests.conftest import FakeLambdaContext
from tests.emf import emf_metrics
from tests.moto_sharing import assumed_session
from tests.unit.prune.conftest import (
    AMI_TIME,
    EVENT,
    NOW,
    RDS_TIME,
    World,
    all_db_snapshot_ids,
    at,
    create_ami,
    image_ids,
    managed_rds_names,
    snapshot_ids,
)

OFFSITE_REGION = "eu-central-1"
ACCOUNT = "123456789012"
DB = "school-db"


def offsite_env(
    monkeypatch: pytest.MonkeyPatch,
    policy: RetentionPolicy,
    target: str | None = None,
    role: str | None = None,
) -> None:
    offsite = Offsite(
        region=OFFSITE_REGION,
        bucket=f"schoolbackup-offsite-{target or ACCOUNT}-{OFFSITE_REGION}",
        kinds=("rds", "ami"),
        policy=policy,
        account=target,
        role_arn=role,
    )
    for name, value in offsite.to_env().items():
        monkeypatch.setenv(name, value)


def copies(days: list[date], home_world: World, session: boto3.Session | None = None) -> dict[str, Any]:
    """Copies in the offsite region of school-db's snapshots and of the first server's AMIs on ``days``
    (names and tags of the originals, plus CopiedFrom), and one look-alike without ManagedBy; in the
    account of ``session`` (default: this one)."""
    session = session or boto3.Session(region_name=OFFSITE_REGION)
    ec2, rds = session.client("ec2"), session.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier=DB,
        Engine="mysql",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    source = home_world.instance_ids[0]
    made: dict[str, Any] = {"rds": {}, "ami": {}, "ami_snaps": {}}
    for day in days:
        when = at(day, RDS_TIME)
        name = backup_name(DB, when)
        tags = {
            **backup_tags(JOB_RDS, DB),
            COPIED_FROM_KEY: f"arn:aws:rds:eu-central-2:{ACCOUNT}:snapshot:{name}",
        }
        with time_machine.travel(when + timedelta(minutes=45), tick=False):
            rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=name, Tags=aws_tags(tags))
        made["rds"][day] = name
        image, snaps = create_ami(ec2, instance, at(day, AMI_TIME), None)
        ami_tags = {**backup_tags(JOB_AMI, source), COPIED_FROM_KEY: "arn:aws:ec2:eu-central-2::image/ami-0"}
        ec2.create_tags(Resources=[image, *snaps], Tags=aws_tags(ami_tags))
        made["ami"][day] = image
        made["ami_snaps"][image] = snaps
    old = at(days[0] - timedelta(days=1), RDS_TIME)
    foreign = backup_name(DB, old)
    with time_machine.travel(old, tick=False):
        rds.create_db_snapshot(
            DBInstanceIdentifier=DB,
            DBSnapshotIdentifier=foreign,
            Tags=aws_tags({"BackupJob": JOB_RDS, "BackupSource": DB}),
        )
    made["foreign"] = foreign
    return made


def run(context: FakeLambdaContext, event: dict[str, Any] | None = None) -> dict[str, Any]:
    with time_machine.travel(NOW, tick=False):
        result: dict[str, Any] = prune_handler.handler(dict(event or EVENT), context)
    return result


def test_prune_applies_the_offsite_policy_in_the_offsite_region_and_the_home_policy_at_home(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home_rds = aws[1]
    days = [NOW.date() - timedelta(days=n) for n in range(5, -1, -1)]  # the last 6 days
    made = copies(days, small_world)
    offsite_env(
        monkeypatch, RetentionPolicy(keep_daily=2, keep_weekly=0, keep_monthly=0, max_age_days=35, min_keep=1)
    )
    home_before = managed_rds_names(home_rds)

    result = run(lambda_context)

    rds = boto3.client("rds", region_name=OFFSITE_REGION)
    ec2 = boto3.client("ec2", region_name=OFFSITE_REGION)
    # Offsite: keep_daily=2 keeps the two newest days (the home policy, 7 daily, would keep all six).
    assert managed_rds_names(rds) == {made["rds"][d] for d in days[-2:]}
    assert image_ids(ec2) & set(made["ami"].values()) == {made["ami"][d] for d in days[-2:]}
    gone = [made["ami"][d] for d in days[:-2]]
    remaining = snapshot_ids(ec2)
    assert not {s for image in gone for s in made["ami_snaps"][image]} & remaining  # with their snapshots
    assert made["foreign"] in all_db_snapshot_ids(rds)  # no ManagedBy: never touched
    # Home: its own policy, as without offsite copies (the small world's 70 days).
    assert managed_rds_names(home_rds) < home_before
    assert {backup_name(db, at(NOW.date(), RDS_TIME)) for db in small_world.db_ids} <= managed_rds_names(
        home_rds
    )

    offsite = result["offsite"]
    assert offsite["region"] == OFFSITE_REGION
    assert result["region"] == "eu-central-2"
    assert offsite["counts"]["deleted"] == {"rds": 4, "ami": 4}
    assert offsite["counts"]["kept"] == {"rds": 2, "ami": 2}
    assert offsite["failures"] == []
    found = emf_metrics(capsys.readouterr().out)
    by = {(m["name"], m["dimensions"].get("Kind"), m["dimensions"].get("Region")): m["value"] for m in found}
    assert by[("PruneDeleted", "rds", OFFSITE_REGION)] == 4
    assert by[("PruneKept", "ami", OFFSITE_REGION)] == 2
    assert by[("PruneFailures", "rds", OFFSITE_REGION)] == 0
    assert by[("PruneRemaining", "ami", OFFSITE_REGION)] == 0
    assert by[("PruneDeleted", "rds", None)] == result["counts"]["deleted"]["rds"]  # home: no Region


def test_min_keep_protects_the_last_offsite_copies_and_dry_run_deletes_nothing_anywhere(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ec2_home, rds_home = aws
    days = [NOW.date() - timedelta(days=n) for n in (62, 61, 60)]  # the copies stopped two months ago
    made = copies(days, small_world)
    offsite_env(
        monkeypatch, RetentionPolicy(keep_daily=2, keep_weekly=0, keep_monthly=0, max_age_days=35, min_keep=2)
    )
    rds = boto3.client("rds", region_name=OFFSITE_REGION)
    ec2 = boto3.client("ec2", region_name=OFFSITE_REGION)
    before = (
        all_db_snapshot_ids(rds),
        image_ids(ec2),
        all_db_snapshot_ids(rds_home),
        image_ids(ec2_home),
    )

    planned = run(lambda_context, {**EVENT, "dry_run": True})
    assert (
        all_db_snapshot_ids(rds),
        image_ids(ec2),
        all_db_snapshot_ids(rds_home),
        image_ids(ec2_home),
    ) == before
    assert planned["offsite"]["dry_run"] is True
    assert planned["offsite"]["counts"]["planned_deletions"] == {"rds": 1, "ami": 1}

    result = run(lambda_context)
    # All older than max_age_days=35, but min_keep=2: the two newest copies stay.
    assert managed_rds_names(rds) == {made["rds"][d] for d in days[1:]}
    assert image_ids(ec2) & set(made["ami"].values()) == {made["ami"][d] for d in days[1:]}
    assert made["foreign"] in all_db_snapshot_ids(rds)
    kept = {i["id"]: i["reason"] for i in result["offsite"]["plan"] if i["action"] == "keep"}
    assert "min_keep" in kept[made["rds"][days[-1]]]


TARGET = "210987654321"
PRUNE_ROLE = f"arn:aws:iam::{TARGET}:role/schoolbackup-offsite-prune"


def target_session() -> boto3.Session:
    return assumed_session(PRUNE_ROLE, OFFSITE_REGION)


def test_with_a_target_account_prune_applies_the_offsite_policy_there_and_nowhere_else(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    days = [NOW.date() - timedelta(days=n) for n in range(5, -1, -1)]
    there = copies(days, small_world, target_session())
    here = copies(days, small_world)  # look-alikes in this account's offsite region (e.g. staging copies)
    offsite_env(
        monkeypatch,
        RetentionPolicy(keep_daily=2, keep_weekly=0, keep_monthly=0, max_age_days=35, min_keep=1),
        target=TARGET,
        role=PRUNE_ROLE,
    )

    result = run(lambda_context)

    target_rds = target_session().client("rds")
    assert managed_rds_names(target_rds) == {there["rds"][d] for d in days[-2:]}
    assert image_ids(target_session().client("ec2")) & set(there["ami"].values()) == {
        there["ami"][d] for d in days[-2:]
    }
    assert there["foreign"] in all_db_snapshot_ids(target_rds)
    # this account's offsite region is the copy job's (staging copies), never prune's
    assert managed_rds_names(boto3.client("rds", region_name=OFFSITE_REGION)) == set(here["rds"].values())
    assert result["offsite"]["counts"]["deleted"] == {"rds": 4, "ami": 4}
