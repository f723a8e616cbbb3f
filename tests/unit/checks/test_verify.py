"""verify against moto: fresh and stale backups of each kind, damaged dumps, sources without backups."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest

from lambdas.common.contracts import NO_GOOD_BACKUP_AGE_HOURS
from lambdas.common.jobs.verify import VerificationFailed
from lambdas.common.settings import SettingsError, VerifySettings
from lambdas.verify.handler import handler
from tests.unit.checks.conftest import BUCKET, NOW, Dump, emf_metrics, make_ami, make_rds_snapshot

FRESH = NOW - timedelta(hours=4, minutes=30)  # 02:00 UTC today


def _fresh_everything(server: str, database: str, make_dump: Callable[..., Dump]) -> None:
    make_dump(server, FRESH)
    make_rds_snapshot(database, NOW - timedelta(hours=3))
    make_ami(server, NOW - timedelta(days=5))


def _run(lambda_context: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler({"scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    return result


def _failure(lambda_context: Any) -> str:
    with pytest.raises(VerificationFailed) as caught:
        _run(lambda_context)
    return str(caught.value)


def _metric(found: list[dict[str, Any]], name: str, **dims: str) -> float:
    values = [m["value"] for m in found if m["name"] == name and m["dimensions"] == dims]
    assert len(values) == 1, (name, dims, found)
    return float(values[0])


def test_verify_passes_with_fresh_backups_of_every_kind_and_publishes_ages(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any, capsys: Any
) -> None:
    _fresh_everything(server, database, make_dump)
    result = _run(lambda_context)
    assert result["passed"] is True
    assert {(c["source"], c["kind"], c["ok"]) for c in result["checks"]} == {
        (server, "dump", True),
        (server, "ami", True),
        (database, "rds", True),
    }
    found = emf_metrics(capsys.readouterr().out)
    assert _metric(found, "NewestGoodBackupAgeHours", Source=server, Kind="dump") == pytest.approx(4.43, 0.01)
    assert _metric(found, "NewestGoodBackupAgeHours", Source=database, Kind="rds") == pytest.approx(3.0)
    assert _metric(found, "WorstNewestGoodBackupAgeHours", Kind="ami") == pytest.approx(120.0)
    assert _metric(found, "VerificationPassed", Source=server, Kind="dump") == 1
    assert _metric(found, "VerificationFailures") == 0


@pytest.mark.parametrize(
    ("kind", "age", "expected"),
    [
        ("dump", timedelta(hours=30, minutes=30), "is 30 hours old"),
        ("rds", timedelta(hours=27), "is 27 hours old"),
        ("ami", timedelta(days=9), "is 216 hours old"),
    ],
)
def test_verify_fails_a_stale_backup_naming_source_kind_and_target(
    *,
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
    capsys: Any,
    kind: str,
    age: timedelta,
    expected: str,
) -> None:
    make_dump(
        server, NOW - (age if kind == "dump" else timedelta(hours=4, minutes=30)) - timedelta(minutes=4)
    )
    make_rds_snapshot(database, NOW - (age if kind == "rds" else timedelta(hours=3)))
    make_ami(server, NOW - (age if kind == "ami" else timedelta(days=5)))
    message = _failure(lambda_context)
    source = database if kind == "rds" else server
    label = {"dump": "dump", "rds": "RDS snapshot", "ami": "AMI"}[kind]
    assert f"{label} of {source}: the newest good backup" in message
    assert expected in message
    assert message.count("newest good backup") == 1
    found = emf_metrics(capsys.readouterr().out)
    assert _metric(found, "VerificationPassed", Source=source, Kind=kind) == 0
    assert (
        _metric(found, "WorstNewestGoodBackupAgeHours", Kind=kind) > {"dump": 26, "rds": 26, "ami": 192}[kind]
    )
    assert _metric(found, "VerificationFailures") == 1


def test_a_source_without_any_backup_fails_and_counts_as_worst_age(
    server: str, database: str, lambda_context: Any, capsys: Any
) -> None:
    message = _failure(lambda_context)
    assert f"dump of {server}: no backup found in the last 4 days" in message
    assert f"RDS snapshot of {database}: no backup found" in message
    assert f"AMI of {server}: no backup found" in message
    found = emf_metrics(capsys.readouterr().out)
    for kind in ("dump", "rds", "ami"):
        assert _metric(found, "WorstNewestGoodBackupAgeHours", Kind=kind) == NO_GOOD_BACKUP_AGE_HOURS
    assert not [m for m in found if m["name"] == "NewestGoodBackupAgeHours"]
    assert _metric(found, "VerificationFailures") == 3


def test_nothing_selected_at_all_is_a_failure_not_a_pass(aws: None, lambda_context: Any) -> None:
    assert "No EC2 or RDS instance is selected" in _failure(lambda_context)


def test_a_dump_without_manifest_fails_even_when_an_older_one_is_fine(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    _fresh_everything(server, database, make_dump)
    make_dump(server, NOW - timedelta(hours=1), manifest=False)
    message = _failure(lambda_context)
    assert f"dump of {server}: the newest backup 20261127T0530Z" in message
    assert "has no manifest.json" in message


@pytest.mark.parametrize(
    ("damage", "expected"),
    [("delete", "db-school.sql.gz is missing"), ("truncate", "files.tar.gz has 10 bytes, the manifest says")],
)
def test_a_dump_whose_object_was_deleted_or_truncated_fails(
    *,
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
    damage: str,
    expected: str,
) -> None:
    _fresh_everything(server, database, make_dump)
    dump = make_dump(server, NOW - timedelta(hours=2))
    s3 = boto3.client("s3")
    if damage == "delete":
        s3.delete_object(Bucket=BUCKET, Key=dump.keys["db-school.sql.gz"])
    else:
        s3.put_object(Bucket=BUCKET, Key=dump.keys["files.tar.gz"], Body=b"0123456789")
    message = _failure(lambda_context)
    assert f"dump of {server}" in message
    assert expected in message


def test_a_dump_reporting_failure_status_fails(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    _fresh_everything(server, database, make_dump)
    make_dump(server, NOW - timedelta(hours=2), status="failed")
    assert "reports status 'failed'" in _failure(lambda_context)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [("deleted", "is missing its EBS snapshot(s)"), ("error", "has failed EBS snapshot(s)")],
)
def test_an_ami_whose_snapshot_is_gone_or_failed_is_not_a_good_backup(
    *,
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
    damage: str,
    expected: str,
) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    _fresh_everything(server, database, make_dump)
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "tag:ManagedBy", "Values": ["schoolbackup"]}]
    )
    snapshot = image["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    # EC2 refuses to delete a snapshot in use; the backend can lose it anyway (or see it fail).
    snapshots = ec2_backends[DEFAULT_ACCOUNT_ID]["eu-central-2"].snapshots
    if damage == "deleted":
        del snapshots[snapshot]
    else:
        snapshots[snapshot].status = "error"
    message = _failure(lambda_context)
    assert f"AMI of {server}: the newest backup" in message
    assert f"{expected} {snapshot}" in message
    assert f"AMI of {server}: none of the 1 backups found is usable." in message


def test_foreign_snapshots_without_managed_by_tag_do_not_count(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    make_dump(server, FRESH)
    make_ami(server, NOW - timedelta(days=1))
    boto3.client("rds").create_db_snapshot(
        DBInstanceIdentifier=database, DBSnapshotIdentifier="manual-by-hand"
    )
    assert f"RDS snapshot of {database}: no backup found" in _failure(lambda_context)


def test_missing_target_ages_default_to_the_configured_defaults(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DUMP_MAX_AGE_HOURS", "RDS_MAX_AGE_HOURS", "AMI_MAX_AGE_HOURS"):
        monkeypatch.delenv(name)
    targets = VerifySettings.from_env().targets
    assert (targets.dump_max_age_hours, targets.rds_max_age_hours, targets.ami_max_age_hours) == (
        26,
        26,
        192,
    )


@pytest.mark.parametrize("value", ["eight days", "0"])
def test_malformed_target_age_is_named(
    aws: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AMI_MAX_AGE_HOURS", value)
    with pytest.raises(SettingsError, match="AMI_MAX_AGE_HOURS"):
        _run(lambda_context)


@pytest.mark.parametrize("missing", ["BACKUP_BUCKET", "SELECTION_TAG"])
def test_missing_documented_setting_is_named(
    aws: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(SettingsError, match=missing):
        _run(lambda_context)


def test_ages_are_measured_from_the_scheduled_time(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    _fresh_everything(server, database, make_dump)  # fresh at NOW (the clock stays there)
    with pytest.raises(VerificationFailed) as caught:
        handler({"scheduled_time": "2026-11-29T06:30:00Z"}, lambda_context)  # two days later
    message = str(caught.value)
    assert f"RDS snapshot of {database}: the newest good backup" in message
    assert "is 51 hours old" in message
    assert "(27.11.2026 04:30 Europe/Zurich, 03:30 UTC)" in message  # local time first; names are UTC
    assert f"dump of {server}: the newest good backup" in message


def test_backups_older_than_max_age_beyond_min_keep_mean_prune_is_not_running(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    # The original plan's pruning "silently never ran": verify notices what prune should have removed.
    _fresh_everything(server, database, make_dump)
    for days in (92, 95, 120):  # MAX_AGE_DAYS=90 (+1 day grace), MIN_KEEP=3 is met by newer ones below
        make_rds_snapshot(database, NOW - timedelta(days=days))
    make_rds_snapshot(database, NOW - timedelta(days=1, hours=3))
    make_rds_snapshot(database, NOW - timedelta(days=2, hours=3))
    message = _failure(lambda_context)
    assert f"RDS snapshot of {database}: 3 backup(s) older than 90 days are still there" in message
    assert "the prune job should have removed them" in message
    assert "AMI of" not in message


def test_old_backups_protected_by_min_keep_are_not_a_prune_problem(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    _fresh_everything(server, database, make_dump)
    make_rds_snapshot(database, NOW - timedelta(days=120))  # with the fresh one: 2 usable <= MIN_KEEP 3
    make_rds_snapshot(database, NOW - timedelta(days=91, hours=12))  # within the day of grace
    assert _run(lambda_context)["passed"] is True


def test_missing_retention_setting_is_named(
    aws: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIN_KEEP")
    with pytest.raises(SettingsError, match="MIN_KEEP"):
        VerifySettings.from_env()


def test_a_dump_with_non_transactional_tables_is_good_and_carries_a_note(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    _fresh_everything(server, database, make_dump)
    make_dump(server, NOW - timedelta(hours=1), inconsistent=("school.sessions", "school.log"))
    result = _run(lambda_context)
    assert result["passed"] is True
    [dump] = [c for c in result["checks"] if c["kind"] == "dump"]
    assert dump["problems"] == []
    assert (
        "2 table(s) that are not transactional (school.sessions, school.log)" in dump["newest_good"]["note"]
    )
    [note] = dump["notes"]
    assert note.startswith(f"dump of {server}: the newest good backup ")
    assert "dump.mysql_consistency: lock-tables" in note
    others = [c for c in result["checks"] if c["kind"] != "dump"]
    assert all(c["notes"] == [] for c in others)


def test_an_older_dump_with_non_transactional_tables_adds_no_note(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    make_dump(server, NOW - timedelta(hours=20), inconsistent=("school.sessions",))
    _fresh_everything(server, database, make_dump)  # the newest good dump is consistent
    [dump] = [c for c in _run(lambda_context)["checks"] if c["kind"] == "dump"]
    assert dump["notes"] == []


def test_a_manifest_with_a_malformed_inconsistent_tables_field_is_named(
    server: str, database: str, make_dump: Callable[..., Dump], lambda_context: Any
) -> None:
    _fresh_everything(server, database, make_dump)
    dump = make_dump(server, NOW - timedelta(hours=1))
    doc = {**dump.manifest, "inconsistent_tables": "school.sessions"}
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=dump.folder + "manifest.json", Body=json.dumps(doc).encode()
    )
    assert "has an invalid manifest" in (message := _failure(lambda_context))
    assert "inconsistent_tables='school.sessions' must be a list of table names" in message
