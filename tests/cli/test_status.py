"""backupctl status and prune --dry-run against moto: an empty account, a healthy one, a stale one, an
unconfirmed alarm subscription; exit status 0 only when nothing needs the admin."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine

from cli.backupctl.context import Aws
from lambdas.common.contracts import backup_name, backup_tags, restore_test_record_key
from tests.cli.conftest import BUCKET, Result, School, write_dump
from tests.drill_records import drill_record
from tests.unit.test_messages import english_words

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # Friday 09:00 in Zurich
ADMINS = ("it-admin@example.org", "it-deputy@example.org")  # the shipped cdk.json


@pytest.fixture
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _tags(job: str, source: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in backup_tags(job, source).items()]


def _healthy(school: School, *, age: timedelta = timedelta(0)) -> None:
    """Backups of every kind as the jobs make them, ``age`` older than a healthy night."""
    write_dump(school.server, NOW - age - timedelta(hours=7, minutes=30))
    with time_machine.travel(NOW - age - timedelta(hours=5), tick=False):
        boto3.client("rds").create_db_snapshot(
            DBInstanceIdentifier=school.database,
            DBSnapshotIdentifier=backup_name(school.database, NOW - age - timedelta(hours=5)),
            Tags=_tags("rds-daily", school.database),
        )
    ec2 = boto3.client("ec2")
    with time_machine.travel(NOW - age - timedelta(days=5), tick=False):
        image = ec2.create_image(
            InstanceId=school.server,
            Name=backup_name(school.server, NOW - age - timedelta(days=5)),
            NoReboot=True,
        )["ImageId"]
    ec2.create_tags(Resources=[image], Tags=_tags("ami-weekly", school.server))
    boto3.client("cloudwatch").put_metric_data(
        Namespace="schoolbackup",
        MetricData=[
            {"MetricName": "VerificationFailures", "Value": 0, "Timestamp": NOW - timedelta(hours=1)}
        ],
    )
    record = {
        "started_at": f"{NOW - timedelta(days=4):%Y-%m-%dT%H:%M:%SZ}",
        "passed": True,
        "duration_seconds": 12.5,
    }
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=restore_test_record_key(NOW - timedelta(days=4)), Body=json.dumps(record)
    )
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="SchoolBackup-alarms")["TopicArn"]
    for address in ADMINS:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)


def test_an_empty_account_is_a_problem_with_reasons(
    aws: None, clock: None, cli: Callable[..., Result]
) -> None:
    result = cli("status", "--json")
    assert result.exit_code == 1
    status = result.json()
    assert status["ok"] is False
    text = " ".join(status["problems"])
    assert "No EC2 or RDS instance is selected for backup" in text
    assert "The alarm topic SchoolBackup-alarms does not exist" in text
    assert "No restore test has been recorded yet." in text


def test_a_healthy_school_is_all_good_and_exits_0(
    school: School, clock: None, cli: Callable[..., Result]
) -> None:
    _healthy(school)
    result = cli("status", "--json")
    status = result.json()
    assert status["problems"] == []
    assert result.exit_code == 0
    [web] = [s for s in status["sources"] if s["id"] == school.server]
    assert web["name"] == "web"
    assert {b["kind"]: b["state"] for b in web["backups"]} == {"dump": "usable", "ami": "usable"}
    [db] = [s for s in status["sources"] if s["id"] == school.database]
    assert db["name"] == "school database"
    [rds] = db["backups"]
    assert (rds["state"], rds["age_hours"], rds["target_hours"]) == ("usable", 5.0, 26)
    assert [s["confirmed"] for s in status["subscriptions"]] == [True, True]
    assert status["restore_test"]["passed"] is True
    next_dump = next(s for s in status["schedules"] if s["job"] == "dump")
    assert next_dump["next_run"] == "2026-11-28T00:30:00Z"  # 01:30 in Zurich
    assert status["drill"] == {"last": None, "deployed": True}  # the shipped cdk.json switches it on

    human = cli("status")
    assert human.exit_code == 0
    assert "All good" in human.stdout
    assert "Last restore drill: none recorded yet ('backupctl drill start' runs one now)" in human.stdout
    assert f"web ({school.server})" in human.stdout


def test_stale_backups_are_named_and_exit_1(school: School, clock: None, cli: Callable[..., Result]) -> None:
    _healthy(school, age=timedelta(days=2))
    result = cli("status", "--json")
    assert result.exit_code == 1
    problems = result.json()["problems"]
    assert any(
        f"Database snapshot: school database ({school.database}): The newest good backup" in p
        and "53 hours old" in p
        for p in problems
    )
    assert any(f"Files and database dump: web ({school.server})" in p for p in problems)
    verify_lines = [p for s in result.json()["sources"] for b in s["backups"] for p in b["problems"]]
    assert any(
        f"RDS snapshot of school database ({school.database}): the newest good" in p for p in verify_lines
    )
    human = cli("status")
    assert "PROBLEM" in human.stdout and "problems need your attention" in human.stdout
    # Grouped by cause, each with what to do: the stale dump is one problem with its command.
    findings = result.json()["findings"]
    assert {(f["cause"], f["kind"]) for f in findings} >= {("backup", "dump"), ("backup", "rds")}
    dump = next(f for f in findings if f["kind"] == "dump")
    assert dump["next_step"]["command"] == "backupctl run dump"
    assert "Command: backupctl run dump" in human.stdout


def test_an_unconfirmed_subscription_means_alarms_reach_no_one(
    school: School, clock: None, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    _healthy(school)
    original = Aws.sns

    def pending_for_deputy(self: Aws) -> Any:
        client = original(self)

        def rewrite(parsed: dict[str, Any], **_: Any) -> None:
            for sub in parsed.get("Subscriptions", []):
                if sub.get("Endpoint") == ADMINS[1]:
                    sub["SubscriptionArn"] = "PendingConfirmation"

        client.meta.events.register("after-call.sns.ListSubscriptionsByTopic", rewrite)
        return client

    monkeypatch.setattr(Aws, "sns", pending_for_deputy)
    result = cli("status", "--json")
    assert result.exit_code == 1
    assert [s["confirmed"] for s in result.json()["subscriptions"]] == [True, False]
    assert any(
        f"{ADMINS[1]} gets no alarm: its subscription to the alarm topic is not confirmed" in p
        for p in result.json()["problems"]
    )


def test_an_alarm_in_alarm_is_a_problem(school: School, clock: None, cli: Callable[..., Result]) -> None:
    _healthy(school)
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="SchoolBackup-dump-backup-age",
        MetricName="WorstNewestGoodBackupAgeHours",
        Namespace="schoolbackup",
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=26,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName="SchoolBackup-dump-backup-age", StateValue="ALARM", StateReason="too old"
    )
    result = cli("status", "--json")
    assert result.exit_code == 1
    [alarm] = result.json()["alarms"]
    assert (alarm["name"], alarm["reason"]) == ("SchoolBackup-dump-backup-age", "too old")


def test_prune_dry_run_shows_the_plan_and_deletes_nothing(
    school: School, clock: None, cli: Callable[..., Result]
) -> None:
    rds = boto3.client("rds")
    for days in range(0, 120, 3):
        when = NOW - timedelta(days=days, hours=5)
        with time_machine.travel(when, tick=False):
            rds.create_db_snapshot(
                DBInstanceIdentifier=school.database,
                DBSnapshotIdentifier=backup_name(school.database, when),
                Tags=_tags("rds-daily", school.database),
            )
    result = cli("prune", "--dry-run", "--json")
    assert result.exit_code == 0
    plan = result.json()
    deleted = [i for i in plan["items"] if i["action"] == "delete"]
    assert deleted and plan["delete"] == len(deleted)
    assert all(
        "older than 90 days" in i["reason"] or "not kept" in i["reason"] or i["reason"] for i in deleted
    )
    names = {
        s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }
    assert len(names) == 40  # nothing deleted
    human = cli("prune", "--dry-run")
    assert "Nothing was deleted" in human.stdout
    assert cli("prune").exit_code == 2


def test_without_credentials_one_sentence(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = cli("--endpoint-url", "http://127.0.0.1:9", "status")
    assert result.exit_code == 1
    assert "No AWS credentials found" in result.stderr
    assert result.stderr.count("\n") <= 2


def test_status_speaks_the_configured_language(
    school: School, clock: None, cli: Callable[..., Result], german_config: Path
) -> None:
    _healthy(school, age=timedelta(days=2))
    human = cli("--config", str(german_config), "status")
    assert human.exit_code == 1
    out = human.stdout
    assert "Sicherungen (SchoolBackup, eu-central-2)" in out
    assert "Probleme brauchen Ihre Aufmerksamkeit" in out
    assert "Befehl: backupctl run dump" in out
    assert "Letzter Wiederherstellungstest:" in out and "Nächste Läufe (Europe/Zurich)" in out
    assert "verwendbar" in out and "usable" not in out
    assert english_words(out) == [], out
    # the next runs with German weekdays (Sa 28.11.2026 ...), not Python's English %a
    runs = re.findall(r"\b([A-Z][a-z]{1,2}) \d\d\.\d\d\.\d{4} \d\d:\d\d", out)
    assert runs and set(runs) <= {"Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"}, runs


def test_status_shows_the_last_drill_and_a_failed_one_is_a_problem(
    school: School, clock: None, cli: Callable[..., Result], german_config: Path
) -> None:
    _healthy(school)
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=BUCKET,
        Key="reports/drills/20260704T0600Z.json",
        Body=json.dumps(drill_record("2026-07-04T06:00:00Z")),
    )
    passed = cli("status", "--json")
    assert passed.exit_code == 0, passed.json()["problems"]
    assert passed.json()["drill"] == {
        "last": "reports/drills/20260704T0600Z.json",
        "deployed": True,
        "started_at": "2026-07-04T06:00:00Z",
        "result": "passed",
        "rto_minutes": 42.5,
        "rto_target_minutes": 240,
        "rto_met": True,
        "leftovers": [],
        "ok": True,
    }
    line = "Last restore drill: 04.07.2026 08:00: passed, the school was working again after 42.5 minutes"
    assert line in cli("status").stdout

    failed = drill_record("2026-11-07T07:00:00Z", failed_phase="dump-check")
    s3.put_object(Bucket=BUCKET, Key="reports/drills/20261107T0700Z.json", Body=json.dumps(failed))
    result = cli("status", "--json")
    assert result.exit_code == 1
    status = result.json()
    assert (status["drill"]["result"], status["drill"]["rto_minutes"]) == ("failed", None)
    [finding] = status["findings"]
    assert finding["cause"] == "drill"
    assert finding["next_step"]["command"] == "backupctl drill status"
    assert finding["consequences"] == ["Dump-check: school answered '0' (expected a value other than 0)"]
    human = cli("status")
    assert (
        "Last restore drill: 07.11.2026 08:00: FAILED, the school was not restored and checked"
        in human.stdout
    )
    german = cli("--config", str(german_config), "status")
    assert german.exit_code == 1
    assert "Letzte Wiederherstellungsübung: 07.11.2026 08:00: FEHLGESCHLAGEN" in german.stdout
    assert "Die Wiederherstellungsübung vom 07.11.2026 08:00 ist fehlgeschlagen" in german.stdout
    assert "reports/drills/20261107T0700Z.json" in german.stdout  # the English details stay in the record
    assert english_words(german.stdout) == [], german.stdout
