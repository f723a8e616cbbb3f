"""The prune Lambda against moto: 180 days of backups for two sources, asserted on AWS state afterwards."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import boto3
import pytest
import time_machine
from botocore.exceptions import ClientError

from lambdas.common.contracts import JOB_AMI, backup_name, backup_tags
from lambdas.common.jobs.prune import PruneError
from lambdas.common.settings import SettingsError
from lambdas.prune import handler as prune_handler
from tests.conftest import FakeLambdaContext
from tests.emf import emf_metrics as read_emf
from tests.unit.prune.conftest import (
    DAYS,
    EVENT,
    NOW,
    RDS_TIME,
    World,
    all_db_snapshot_ids,
    at,
    backup_dates,
    create_ami,
    image_ids,
    managed_rds_names,
    snapshot_ids,
)

#
# Prune runs Friday 2026-11-27 05:00 UTC (ISO week 2026-W48), policy 7 daily / 4 weekly / 3 monthly,
# max age 90 days (cut-off 2026-08-29 05:00), min_keep 3.
#
# RDS, one snapshot a day at 03:30:
#   daily   -> the 7 newest days: Nov 21 .. Nov 27
#   weekly  -> newest of W48 (Nov 27), W47 (Sun Nov 22), W46 (Sun Nov 15), W45 (Sun Nov 8)
#   monthly -> newest of Nov (Nov 27), Oct (Oct 31), Sep (Sep 30)
#   none of those is older than 90 days; min_keep (3 newest) is already inside the daily ones.
EXPECTED_RDS_DATES = {date(2026, 11, d) for d in range(21, 28)} | {
    date(2026, 11, 15),
    date(2026, 11, 8),
    date(2026, 10, 31),
    date(2026, 9, 30),
}
# AMIs, Sundays at 03:00: the last backup day is Sun Nov 22.
#   daily   -> 7 newest days that have a backup: Nov 22, 15, 8, 1, Oct 25, 18, 11
#   weekly  -> Nov 22, 15, 8, 1 (already in)
#   monthly -> Nov 22, Oct 25, Sep 27
EXPECTED_AMI_DATES = (
    {date(2026, 11, d) for d in (22, 15, 8, 1)}
    | {date(2026, 10, d) for d in (25, 18, 11)}
    | {date(2026, 9, 27)}
)


def _naive_restic(days: list[date], now_day: date) -> set[date]:
    """A second, deliberately simple statement of the rules for one backup a day at most."""
    newest = sorted(days, reverse=True)
    keep = set(newest[:7])
    for key, count in ((lambda d: d.isocalendar()[:2], 4), (lambda d: (d.year, d.month), 3)):
        seen: list[Any] = []
        for d in newest:
            if key(d) not in seen and len(seen) < count:
                seen.append(key(d))
                keep.add(d)
    return {d for d in keep if (now_day - d).days <= 89} | set(newest[:3])


def test_expected_sets_agree_with_a_naive_statement_of_the_rules() -> None:
    rds_dates, ami_dates = backup_dates(DAYS)
    assert _naive_restic(rds_dates, NOW.date()) == EXPECTED_RDS_DATES
    assert _naive_restic(ami_dates, NOW.date()) == EXPECTED_AMI_DATES


def run(context: FakeLambdaContext, event: dict[str, Any] | None = None) -> dict[str, Any]:
    with time_machine.travel(NOW, tick=False):
        result: dict[str, Any] = prune_handler.handler(dict(event or EVENT), context)
    return result


def expected_rds_names(world: World) -> set[str]:
    dates = EXPECTED_RDS_DATES if len(world.rds_dates) == DAYS else _naive_restic(world.rds_dates, NOW.date())
    return {backup_name(db, at(d, RDS_TIME)) for db in world.db_ids for d in dates}


def expected_images(world: World) -> set[str]:
    dates = EXPECTED_AMI_DATES if len(world.rds_dates) == DAYS else _naive_restic(world.ami_dates, NOW.date())
    return {world.images[i][d] for i in world.instance_ids for d in dates}


def all_our_images(world: World) -> set[str]:
    return {image for per_day in world.images.values() for image in per_day.values()}


def foreign_everything(ec2: Any, rds: Any, world: World) -> None:
    assert set(world.foreign_images) <= image_ids(ec2)
    assert set(world.foreign_snapshots) <= snapshot_ids(ec2)
    assert set(world.foreign_db_snapshots) <= all_db_snapshot_ids(rds)


def emf_metrics(output: str) -> dict[tuple[str, str | None], float]:
    """(metric name, Kind dimension) -> value from the EMF lines printed by Powertools."""
    return {(m["name"], m["dimensions"].get("Kind")): m["value"] for m in read_emf(output)}


def test_prune_leaves_exactly_the_backups_the_rules_keep_and_a_second_run_deletes_nothing(
    aws: tuple[Any, Any], world: World, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2, rds = aws
    result = run(lambda_context)

    assert managed_rds_names(rds) == expected_rds_names(world)
    ours = all_our_images(world)
    assert image_ids(ec2) & ours == expected_images(world)
    # Every snapshot of a deleted AMI is gone, those of kept AMIs are there, the orphan is gone.
    kept_snaps = {s for image in expected_images(world) for s in world.image_snapshots[image]}
    deleted_snaps = {s for image in ours - expected_images(world) for s in world.image_snapshots[image]}
    remaining = snapshot_ids(ec2)
    assert kept_snaps <= remaining
    assert not (deleted_snaps & remaining)
    assert world.orphan_snapshot not in remaining
    foreign_everything(ec2, rds, world)

    rds_deleted = 2 * (len(world.rds_dates) - len(EXPECTED_RDS_DATES))
    images_deleted = 2 * (len(world.ami_dates) - len(EXPECTED_AMI_DATES))
    assert result["dry_run"] is False
    assert result["remaining"] == 0
    assert result["failures"] == []
    assert result["counts"]["deleted"] == {"rds": rds_deleted, "ami": images_deleted + 1}  # + the orphan
    assert result["counts"]["ebs_snapshots_deleted"] == len(deleted_snaps) + 1
    assert result["counts"]["kept"] == {
        "rds": 2 * len(EXPECTED_RDS_DATES),
        "ami": 2 * len(EXPECTED_AMI_DATES),
    }

    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics[("PruneDeleted", "rds")] == rds_deleted
    assert metrics[("PruneDeleted", "ami")] == images_deleted + 1
    assert metrics[("PruneKept", "rds")] == 2 * len(EXPECTED_RDS_DATES)
    assert metrics[("PruneFailures", "ami")] == 0
    assert metrics[("PruneRemaining", "rds")] == 0

    # A second run finds nothing more to delete.
    state = (image_ids(ec2), snapshot_ids(ec2), all_db_snapshot_ids(rds))
    again = run(lambda_context)
    assert not [i for i in again["plan"] if i["action"] == "delete"]
    assert again["counts"]["deleted"] == {"rds": 0, "ami": 0}
    assert (image_ids(ec2), snapshot_ids(ec2), all_db_snapshot_ids(rds)) == state


def test_dry_run_deletes_nothing_and_returns_the_plan_with_reasons(
    aws: tuple[Any, Any], world: World, lambda_context: FakeLambdaContext
) -> None:
    ec2, rds = aws
    images_before, snaps_before, db_before = image_ids(ec2), snapshot_ids(ec2), all_db_snapshot_ids(rds)
    result = run(lambda_context, {**EVENT, "dry_run": True})
    assert (image_ids(ec2), snapshot_ids(ec2), all_db_snapshot_ids(rds)) == (
        images_before,
        snaps_before,
        db_before,
    )
    assert result["dry_run"] is True
    deletes = {i["id"] for i in result["plan"] if i["action"] == "delete"}
    rds_names = {backup_name(db, at(d, RDS_TIME)) for db in world.db_ids for d in world.rds_dates}
    assert deletes & rds_names == rds_names - expected_rds_names(world)
    assert deletes & all_our_images(world) == all_our_images(world) - expected_images(world)
    assert result["counts"]["deleted"] == {"rds": 0, "ami": 0}

    # Every decision carries its reason.
    plan = {item["id"]: item for item in result["plan"]}
    db = world.db_ids[0]
    assert plan[backup_name(db, at(date(2026, 11, 27), RDS_TIME))]["reason"] == (
        "daily 2026-11-27; weekly 2026-W48; monthly 2026-11; min_keep (newest 3 usable)"
    )
    assert plan[backup_name(db, at(date(2026, 11, 15), RDS_TIME))]["reason"] == "weekly 2026-W46"
    assert plan[backup_name(db, at(date(2026, 9, 30), RDS_TIME))]["reason"] == "monthly 2026-09"
    assert plan[backup_name(db, at(date(2026, 11, 14), RDS_TIME))]["reason"] == "not kept by any rule"
    assert plan[backup_name(db, at(date(2026, 6, 1), RDS_TIME))]["reason"] == "older than 90 days"
    assert plan[backup_name(db, at(date(2026, 6, 1), RDS_TIME))]["action"] == "delete"
    orphan = plan[world.orphan_snapshot]
    assert orphan["action"] == "delete"
    assert orphan["reason"].startswith("orphan: its AMI ami-")
    instance = world.instance_ids[0]
    image = plan[world.images[instance][date(2026, 9, 27)]]
    assert (image["kind"], image["source"], image["action"]) == ("ami", instance, "keep")
    assert image["snapshots"] == world.image_snapshots[world.images[instance][date(2026, 9, 27)]]
    # Foreign artifacts are not even in the plan.
    assert not set(plan) & {*world.foreign_images, *world.foreign_snapshots, *world.foreign_db_snapshots}


def test_dry_run_from_the_environment(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, rds = aws
    monkeypatch.setenv("DRY_RUN", "true")
    before = all_db_snapshot_ids(rds)
    assert run(lambda_context)["dry_run"] is True
    assert all_db_snapshot_ids(rds) == before


def test_snapshot_in_use_is_reported_and_deleted_by_the_next_run(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ec2, _ = aws
    doomed_image = sorted(all_our_images(small_world) - expected_images(small_world))[0]
    stuck = small_world.image_snapshots[doomed_image][0]
    client = boto3.client("ec2")
    real_delete = client.delete_snapshot

    def delete_snapshot(**kwargs: Any) -> Any:
        if kwargs["SnapshotId"] == stuck:
            error = {"Code": "InvalidSnapshot.InUse", "Message": f"The snapshot {stuck} is in use"}
            raise ClientError({"Error": error}, "DeleteSnapshot")
        return real_delete(**kwargs)

    client.delete_snapshot = delete_snapshot  # type: ignore[method-assign]
    monkeypatch.setattr(prune_handler, "ec2_client", lambda: client)

    first = run(lambda_context)  # does not raise: in use is not a failure
    assert [e["id"] for e in first["in_use"]] == [stuck]
    assert first["failures"] == []
    assert doomed_image not in image_ids(ec2)
    assert stuck in snapshot_ids(ec2)  # kept its tags, so the next run finds it

    del client.delete_snapshot  # back to the real method
    second = run(lambda_context)
    plan = {i["id"]: i for i in second["plan"]}
    assert plan[stuck]["action"] == "delete"
    assert plan[stuck]["reason"] == f"orphan: its AMI {doomed_image} no longer exists"
    assert stuck not in snapshot_ids(ec2)
    assert second["in_use"] == []


def test_other_deletion_failures_raise_after_everything_else_was_done(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, rds = aws
    broken = backup_name(small_world.db_ids[0], at(small_world.rds_dates[0], RDS_TIME))
    client = boto3.client("rds")
    real_delete = client.delete_db_snapshot

    def delete_db_snapshot(**kwargs: Any) -> Any:
        if kwargs["DBSnapshotIdentifier"] == broken:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteDBSnapshot")
        return real_delete(**kwargs)

    client.delete_db_snapshot = delete_db_snapshot  # type: ignore[method-assign]
    monkeypatch.setattr(prune_handler, "rds_client", lambda: client)
    with pytest.raises(PruneError, match=broken):
        run(lambda_context)
    assert managed_rds_names(rds) == expected_rds_names(small_world) | {broken}


def test_stops_before_the_timeout_and_a_later_run_finishes(
    aws: tuple[Any, Any], small_world: World, lambda_context: FakeLambdaContext
) -> None:
    _, rds = aws
    lambda_context.remaining_ms = 5_000
    stopped = run(lambda_context)
    planned = sum(stopped["counts"]["planned_deletions"].values())
    assert planned > 0
    assert stopped["remaining"] == planned
    assert stopped["counts"]["deleted"] == {"rds": 0, "ami": 0}

    lambda_context.remaining_ms = 900_000
    finished = run(lambda_context)
    assert finished["remaining"] == 0
    assert managed_rds_names(rds) == expected_rds_names(small_world)


class CountdownContext(FakeLambdaContext):
    """Loses 2 s of remaining time every time prune looks at the clock."""

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= 2_000
        return self.remaining_ms


def test_stops_part_way_and_reports_what_remains(
    aws: tuple[Any, Any], small_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rds = aws
    context = CountdownContext(remaining_ms=30_000 + 2_000 * 50)  # exactly 50 deletions fit
    result = run(context)
    planned = sum(result["counts"]["planned_deletions"].values())
    assert sum(result["counts"]["deleted"].values()) == 50
    assert result["remaining"] == planned - 50
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics[("PruneRemaining", "rds")] + metrics[("PruneRemaining", "ami")] == planned - 50
    # RDS snapshots go first, oldest first.
    first_day = small_world.rds_dates[0]
    assert backup_name(small_world.db_ids[0], at(first_day, RDS_TIME)) not in managed_rds_names(rds)


@pytest.mark.parametrize("missing", ["KEEP_DAILY", "KEEP_WEEKLY", "KEEP_MONTHLY", "MAX_AGE_DAYS", "MIN_KEEP"])
def test_missing_setting_fails_naming_the_variable(
    retention_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeLambdaContext, missing: str
) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(SettingsError, match=missing):
        prune_handler.handler(dict(EVENT), lambda_context)


@pytest.mark.parametrize(
    ("name", "value"),
    [("MIN_KEEP", "three"), ("MIN_KEEP", "0"), ("MAX_AGE_DAYS", "-1"), ("DRY_RUN", "maybe")],
)
def test_malformed_setting_fails_naming_the_variable(
    retention_env: None,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeLambdaContext,
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        prune_handler.handler(dict(EVENT), lambda_context)


def test_quota_usage_is_published(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = boto3.client("rds")
    quotas = [
        {"AccountQuotaName": "DBInstances", "Used": 1, "Max": 40},
        {"AccountQuotaName": "ManualSnapshots", "Used": 87, "Max": 100},
    ]
    calls: list[dict[str, Any]] = []

    def describe_account_attributes(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"AccountQuotas": quotas}

    client.describe_account_attributes = describe_account_attributes  # type: ignore[method-assign]
    monkeypatch.setattr(prune_handler, "rds_client", lambda: client)
    result = run(lambda_context)
    assert calls == [{}]
    assert result["rds_quota"] == {"used": 87.0, "max": 100.0, "percent": 87.0}
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics[("RdsManualSnapshotsUsed", None)] == 87
    assert metrics[("RdsManualSnapshotsQuota", None)] == 100
    assert metrics[("RdsManualSnapshotQuotaPercent", None)] == 87.0


def test_unreadable_quota_is_a_warning_not_a_failure(
    aws: tuple[Any, Any],
    small_world: World,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run(lambda_context)  # moto does not implement DescribeAccountAttributes
    assert result["rds_quota"] is None
    assert result["failures"] == []
    assert result["counts"]["deleted"]["rds"] > 0
    metrics = emf_metrics(capsys.readouterr().out)
    assert ("RdsManualSnapshotsUsed", None) not in metrics
    assert ("PruneDeleted", "rds") in metrics


def test_an_amis_snapshots_go_with_it_and_other_jobs_backups_are_left_alone(
    aws: tuple[Any, Any], retention_env: None, lambda_context: FakeLambdaContext
) -> None:
    ec2, _ = aws
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    old = NOW - timedelta(days=200)
    images = []
    for week in range(5):  # min_keep 3 keeps the newest three; the two oldest go
        when = old - timedelta(weeks=week)
        images.append(create_ami(ec2, instance, when, backup_tags(JOB_AMI, instance)))
    oldest, oldest_snaps = images[-1]
    drill, _drill_snaps = create_ami(ec2, instance, old - timedelta(weeks=9), backup_tags("drill", instance))
    no_source, _ = create_ami(ec2, instance, old - timedelta(weeks=10), {"ManagedBy": "schoolbackup"})

    result = run(lambda_context)

    remaining_images = image_ids(ec2)
    assert oldest not in remaining_images and images[-2][0] not in remaining_images
    assert {images[0][0], images[1][0], images[2][0], drill, no_source} <= remaining_images
    assert not set(oldest_snaps) & snapshot_ids(ec2)
    assert result["skipped_snapshots"] == []
    assert result["failures"] == []
    plan = {i["id"]: i for i in result["plan"]}
    assert plan[drill]["reason"] == "BackupJob=drill: not a backup under the retention policy, left alone"
    assert plan[no_source]["reason"] == "no BackupSource tag, left alone"


@pytest.mark.iam_denied("ec2:DeleteSnapshot")
def test_untagged_snapshot_of_our_ami_that_iam_denies_is_a_failure_saying_what_to_do(
    aws: tuple[Any, Any],
    retention_env: None,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ec2, _ = aws
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    old = NOW - timedelta(days=200)
    images = [
        create_ami(ec2, instance, old - timedelta(weeks=week), backup_tags(JOB_AMI, instance))
        for week in range(4)
    ]
    oldest, oldest_snaps = images[-1]
    ec2.delete_tags(Resources=oldest_snaps, Tags=[{"Key": "ManagedBy"}])
    client = boto3.client("ec2")

    def deny(params: dict[str, Any], **kwargs: Any) -> None:
        # What the role's tag condition does in AWS (the IAM evaluator confirms it: iam_denied below);
        # moto enforces no IAM, so the answer is given here, after the call was recorded.
        if params["SnapshotId"] in oldest_snaps:
            error = {
                "Code": "UnauthorizedOperation",
                "Message": "You are not authorized to perform this operation.",
            }
            raise ClientError({"Error": error}, "DeleteSnapshot")

    client.meta.events.register("before-parameter-build.ec2.DeleteSnapshot", deny)
    monkeypatch.setattr(prune_handler, "ec2_client", lambda: client)

    with pytest.raises(PruneError) as raised:
        run(lambda_context)
    message = str(raised.value)
    for snapshot_id in oldest_snaps:
        assert f"snapshot {snapshot_id} of the deregistered AMI {oldest} is not tagged" in message
        assert f"aws ec2 delete-snapshot --snapshot-id {snapshot_id}" in message
    assert oldest not in image_ids(ec2)
    assert set(oldest_snaps) <= snapshot_ids(ec2)
    monkeypatch.undo()
