"""``backupctl drill start|status`` against moto's Step Functions and the bucket's drill records."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.cli.conftest import BUCKET, REGION, Result
from tests.drill_records import drill_record
from tests.unit.test_messages import english_words

MACHINE = "SchoolBackup-restore-drill"
ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:{MACHINE}"


@pytest.fixture
def machine(aws: None) -> str:
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {"StartAt": "Plan", "States": {"Plan": {"Type": "Pass", "End": True}}}
    found: str = boto3.client("stepfunctions").create_state_machine(
        name=MACHINE, definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    return found


def put_record(stamp: str, content: dict[str, Any]) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"reports/drills/{stamp}.json", Body=json.dumps(content))


def test_start_runs_the_state_machine_once_with_the_scheduled_time(
    machine: str, cli: Callable[..., Result]
) -> None:
    first = cli("drill", "start", "--json")
    assert first.exit_code == 0, first.stderr
    started = first.json()
    execution = boto3.client("stepfunctions").describe_execution(executionArn=started["execution"])
    assert json.loads(execution["input"]) == {"scheduled_time": started["scheduled_time"]}
    # moto leaves an execution RUNNING: a second start must refuse (two drills would share resources)
    again = cli("drill", "start")
    assert again.exit_code == 1
    assert f"already running ({started['execution'].rsplit(':', 1)[1]})" in again.stderr
    status = cli("drill", "status")
    assert "Running since" in status.stdout


def test_start_without_a_deployed_drill_says_how_to_deploy_it(aws: None, cli: Callable[..., Result]) -> None:
    result = cli("drill", "start")
    assert result.exit_code == 1
    assert "restore_drill.enabled is false" in result.stderr and "cdk deploy" in result.stderr


def test_status_shows_the_newest_drill_with_its_rto_and_phases(
    machine: str, cli: Callable[..., Result]
) -> None:
    put_record("20260704T0400Z", drill_record(result="failed", rto_minutes=None, rto_met=False))
    put_record("20270102T0500Z", drill_record())
    result = cli("drill", "status")
    assert result.exit_code == 0, result.stderr
    assert (
        "Last drill 02.01.2027 06:00: passed; recovery time 42.5 minutes (target: 240 minutes)."
        in result.stdout
    )
    assert "dump-check" in result.stdout
    as_json = cli("drill", "status", "--json").json()
    assert as_json["last"]["rto_minutes"] == 42.5 and as_json["running"] == []


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"result": "failed", "rto_minutes": None, "rto_met": False}, "FAILED; recovery time not reached"),
        ({"rto_minutes": 300.0, "rto_met": False}, "passed; recovery time 300.0 minutes (target: 240"),
        ({"leftovers": ["i-0123456789abcdef0"], "torn_down": False}, "Not deleted yet: i-0123456789abcdef0"),
    ],
)
def test_status_exits_1_when_the_last_drill_needs_attention(
    machine: str, cli: Callable[..., Result], changes: dict[str, Any], shown: str
) -> None:
    put_record("20270102T0500Z", drill_record(**changes))
    result = cli("drill", "status")
    assert result.exit_code == 1
    assert shown in result.stdout


def test_drill_speaks_german(machine: str, cli: Callable[..., Result], german_config: Path) -> None:
    put_record("20270102T0500Z", drill_record(result="failed", rto_minutes=None, rto_met=False))
    result = cli("--config", str(german_config), "drill", "status")
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("Letzte Übung"))
    assert (
        line
        == "Letzte Übung 02.01.2027 06:00: FEHLGESCHLAGEN; Wiederherstellungszeit nicht erreicht (Ziel: 240 Minuten)."
    )
    assert english_words(line) == []
    started = cli("--config", str(german_config), "drill", "start")
    assert started.exit_code == 0, started.stderr
    assert started.stdout.startswith("Wiederherstellungsübung gestartet: arn:aws:states:")
