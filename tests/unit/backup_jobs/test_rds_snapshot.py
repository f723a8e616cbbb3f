from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
import time_machine

from lambdas.common.jobs.backup_result import BackupJobFailed
from lambdas.common.settings import RdsSnapshotSettings, SettingsError
from lambdas.rds_snapshot.handler import handler
from tests.unit.backup_jobs.conftest import SCHEDULED, STAMP, AwsFaults, emf_metrics

EVENT = {"scheduled_time": SCHEDULED}
SELECTED = {"Backup": "true"}


def snapshots() -> dict[str, dict[str, Any]]:
    rds = boto3.client("rds")
    return {
        s["DBSnapshotIdentifier"]: s for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def tags_of(snapshot: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}


def test_snapshots_only_tagged_instances_with_name_and_tags(
    make_db: Callable[..., str], lambda_context: Any
) -> None:
    make_db("school-db", SELECTED)
    make_db("other-db", {"Backup": "false"})
    make_db("untagged-db")

    result = handler(EVENT, lambda_context)

    name = f"sb-school-db-{STAMP}"
    assert result == {"job": "rds-daily", "created": [name], "already_existed": [], "failed": {}}
    made = snapshots()
    assert list(made) == [name]
    assert made[name]["DBInstanceIdentifier"] == "school-db"
    assert tags_of(made[name]) == {
        "ManagedBy": "schoolbackup",
        "BackupJob": "rds-daily",
        "BackupSource": "school-db",
    }


def test_listed_ids_are_snapshotted_without_the_tag(
    make_db: Callable[..., str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db("school-db")
    make_db("ignored-db")
    monkeypatch.setenv("RDS_INSTANCE_IDS", "school-db")

    handler(EVENT, lambda_context)

    assert list(snapshots()) == [f"sb-school-db-{STAMP}"]


def test_second_invocation_for_same_time_reports_existing_and_creates_nothing(
    make_db: Callable[..., str], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_db("school-db", SELECTED)
    handler(EVENT, lambda_context)
    capsys.readouterr()

    second = handler(EVENT, lambda_context)

    assert second["created"] == []
    assert second["already_existed"] == [f"sb-school-db-{STAMP}"]
    assert len(snapshots()) == 1
    published = {m["name"]: m for m in emf_metrics(capsys.readouterr().out)}
    assert published["BackupsAlreadyExisted"]["value"] == 1
    assert published["BackupsCreated"]["value"] == 0
    assert published["BackupsAlreadyExisted"]["dimensions"]["Job"] == "rds-daily"


def test_without_scheduled_time_the_current_utc_minute_names_the_snapshot(
    make_db: Callable[..., str], lambda_context: Any
) -> None:
    make_db("school-db", SELECTED)
    with time_machine.travel("2026-12-01T23:59:42+01:00", tick=False):
        handler({}, lambda_context)
    assert list(snapshots()) == ["sb-school-db-20261201-2259"]


def test_stopped_instance_fails_after_the_others_are_snapshotted(
    make_db: Callable[..., str], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_db("a-db", SELECTED)
    make_db("b-db", SELECTED, stopped=True)
    make_db("c-db", SELECTED)

    with pytest.raises(
        BackupJobFailed, match=r"rds-daily: 1 of 3 sources failed: b-db: DB instance is 'stopped'"
    ):
        handler(EVENT, lambda_context)

    assert sorted(snapshots()) == [f"sb-a-db-{STAMP}", f"sb-c-db-{STAMP}"]
    published = {m["name"]: m["value"] for m in emf_metrics(capsys.readouterr().out)}
    assert published["BackupsCreated"] == 2
    assert published["BackupsFailed"] == 1


def test_listed_id_that_does_not_exist_is_a_failure(
    make_db: Callable[..., str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db("school-db", SELECTED)
    monkeypatch.setenv("RDS_INSTANCE_IDS", "gone-db")
    with pytest.raises(BackupJobFailed, match="gone-db: listed in RDS_INSTANCE_IDS but no such DB instance"):
        handler(EVENT, lambda_context)
    assert list(snapshots()) == [f"sb-school-db-{STAMP}"]


def test_tagged_aurora_cluster_is_a_clear_failure_and_its_members_are_not_snapshotted(
    make_db: Callable[..., str], lambda_context: Any
) -> None:
    rds = boto3.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="aurora-school",
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        Tags=[{"Key": "Backup", "Value": "true"}],
    )
    make_db("aurora-school-1", SELECTED, cluster="aurora-school")
    make_db("school-db", SELECTED)

    with pytest.raises(BackupJobFailed) as raised:
        handler(EVENT, lambda_context)

    assert "aurora-school: Aurora clusters are not supported yet" in str(raised.value)
    assert "1 of 2 sources failed" in str(raised.value)  # the member instance is not a second failure
    assert list(snapshots()) == [f"sb-school-db-{STAMP}"]
    assert rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"] == []


def test_throttling_on_the_first_calls_still_snapshots_every_instance(
    make_db: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    for db in ("a-db", "b-db", "c-db"):
        make_db(db, SELECTED)
    aws_faults.throttle = {"*": 2}  # every RDS operation is throttled twice before it is answered
    aws_faults.rds_quota(used=3, limit=100)

    result = handler(EVENT, lambda_context)

    assert sorted(result["created"]) == [f"sb-{db}-{STAMP}" for db in ("a-db", "b-db", "c-db")]
    assert len(snapshots()) == 3
    assert aws_faults.throttled["rds.CreateDBSnapshot"] == 2
    assert aws_faults.throttled["rds.DescribeDBInstances"] == 2


def test_quota_near_limit_is_published_and_warned_about(
    make_db: Callable[..., str],
    lambda_context: Any,
    aws_faults: AwsFaults,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_db("school-db", SELECTED)
    aws_faults.rds_quota(used=85, limit=100)

    handler(EVENT, lambda_context)

    published = {m["name"]: m for m in emf_metrics(capsys.readouterr().out)}
    assert published["RdsManualSnapshotsUsed"]["value"] == 85
    assert published["RdsManualSnapshotsQuota"]["value"] == 100
    assert published["RdsManualSnapshotQuotaPercent"]["value"] == 85
    assert "Job" not in published["RdsManualSnapshotQuotaPercent"]["dimensions"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("RDS manual snapshot quota at 85 %: 85 of 100" in w for w in warnings)
    assert list(snapshots()) == [f"sb-school-db-{STAMP}"]


def test_quota_below_warning_level_logs_no_warning(
    make_db: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults, caplog: pytest.LogCaptureFixture
) -> None:
    make_db("school-db", SELECTED)
    aws_faults.rds_quota(used=80, limit=100)
    handler(EVENT, lambda_context)
    assert "RDS manual snapshot quota at" not in caplog.text
    assert "backup created" in caplog.text


def test_quota_reached_fails_each_new_snapshot_with_a_clear_message(
    make_db: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    make_db("a-db", SELECTED)
    make_db("b-db", SELECTED)
    aws_faults.rds_quota(used=100, limit=100)

    with pytest.raises(BackupJobFailed) as raised:
        handler(EVENT, lambda_context)

    message = str(raised.value)
    assert "a-db: RDS manual snapshot quota reached: 100 of 100" in message
    assert "b-db: RDS manual snapshot quota reached: 100 of 100" in message
    assert snapshots() == {}
    assert aws_faults.calls["rds.CreateDBSnapshot"] == 0


def test_quota_filled_by_this_run_fails_only_the_snapshots_beyond_it(
    make_db: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    make_db("a-db", SELECTED)
    make_db("b-db", SELECTED)
    aws_faults.rds_quota(used=99, limit=100)

    with pytest.raises(BackupJobFailed, match=r"b-db: RDS manual snapshot quota reached: 100 of 100"):
        handler(EVENT, lambda_context)
    assert list(snapshots()) == [f"sb-a-db-{STAMP}"]


def test_unreadable_quota_is_a_warning_not_a_lost_backup(
    make_db: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults, caplog: pytest.LogCaptureFixture
) -> None:
    make_db("school-db", SELECTED)
    aws_faults.bodies["rds.DescribeAccountAttributes"] = (
        403,
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message>"
        "</Error><RequestId>x</RequestId></ErrorResponse>",
    )

    result = handler(EVENT, lambda_context)

    assert result["created"] == [f"sb-school-db-{STAMP}"]
    assert "RDS manual snapshot quota unknown: it could not be read" in caplog.text


def test_settings_name_the_missing_selection_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELECTION_TAG", raising=False)
    with pytest.raises(SettingsError, match="SELECTION_TAG"):
        RdsSnapshotSettings.from_env()


@pytest.mark.parametrize(
    ("name", "value"),
    [("SELECTION_TAG", "Backup"), ("SELECTION_TAG", "=true"), ("RDS_INSTANCE_IDS", "ok-db,bad_db!")],
)
def test_settings_name_the_malformed_variable(name: str, value: str) -> None:
    environ = {"SELECTION_TAG": "Backup=true", name: value}
    with pytest.raises(SettingsError, match=name):
        RdsSnapshotSettings.from_env(environ)


def test_settings_read_selection_and_ids() -> None:
    settings = RdsSnapshotSettings.from_env(
        {"SELECTION_TAG": "Sicherung=ja", "RDS_INSTANCE_IDS": "a-db, b-db"}
    )
    assert (settings.selection.key, settings.selection.value) == ("Sicherung", "ja")
    assert settings.instance_ids == ("a-db", "b-db")


def test_handler_fails_before_any_aws_call_when_settings_are_missing(
    make_db: Callable[..., str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db("school-db", SELECTED)
    monkeypatch.delenv("SELECTION_TAG")
    with pytest.raises(SettingsError, match="SELECTION_TAG"):
        handler(EVENT, lambda_context)
    assert snapshots() == {}


def test_same_minute_with_other_seconds_creates_nothing_twice(
    make_db: Callable[..., str], lambda_context: Any
) -> None:
    make_db("school-db", SELECTED)
    handler({"scheduled_time": "2026-11-27T02:30:00Z"}, lambda_context)
    again = handler({"scheduled_time": "2026-11-27T02:30:59.5Z"}, lambda_context)
    assert again["created"] == []
    assert again["already_existed"] == [f"sb-school-db-{STAMP}"]
    assert list(snapshots()) == [f"sb-school-db-{STAMP}"]


def test_scheduled_time_with_an_offset_names_the_snapshot_in_utc(
    make_db: Callable[..., str], lambda_context: Any
) -> None:
    make_db("school-db", SELECTED)
    handler({"scheduled_time": "2026-11-27T03:30:00+01:00"}, lambda_context)
    assert list(snapshots()) == [f"sb-school-db-{STAMP}"]
