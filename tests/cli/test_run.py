"""backupctl run <job> against moto: the deployed function is found by its contract name and invoked once;
the dump is sent as a Run Command to the selected servers with the newest dump document."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.cli.conftest import BUCKET, REGION, Result, School
from tests.unit.test_messages import english_words


@pytest.fixture
def lambda_aws() -> Iterator[None]:
    """moto without Docker: an invoked function answers without running its code."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield


def _function(name: str) -> None:
    role = boto3.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )


def _dump_document(name: str) -> Any:
    """A Command document named like the stack's dump document (what run dump looks for)."""
    ssm = boto3.client("ssm")
    step = {"action": "aws:runShellScript", "name": "dump", "inputs": {"runCommand": ["true"]}}
    content = {"schemaVersion": "2.2", "description": "dump", "mainSteps": [step]}
    ssm.create_document(Name=name, Content=json.dumps(content), DocumentType="Command")
    return ssm


def test_run_invokes_the_deployed_function_by_its_contract_name(
    lambda_aws: None, cli: Callable[..., Result]
) -> None:
    _function("SchoolBackup-restore-test")
    result = cli("run", "restore-test", "--json")
    assert result.exit_code == 0, result.stderr
    answer = result.json()
    assert (answer["function"], answer["ok"]) == ("SchoolBackup-restore-test", True)


def test_run_of_a_job_that_is_not_deployed_says_so(aws: None, cli: Callable[..., Result]) -> None:
    result = cli("run", "verify")
    assert result.exit_code == 1
    assert "AWS refused Invoke" in result.stderr and "SchoolBackup-verify" in result.stderr


def test_an_unknown_job_is_bad_usage(lambda_aws: None, cli: Callable[..., Result]) -> None:
    result = cli("run", "backup-everything")
    assert result.exit_code == 2
    assert "the jobs are: dump, rds_snapshot" in result.stderr


def test_run_dump_sends_the_newest_dump_document_to_the_tagged_servers(
    school: School, cli: Callable[..., Result]
) -> None:
    ssm = _dump_document("SchoolBackup-Dump-0123456789")
    result = cli("run", "dump", "--json")
    assert result.exit_code == 0, result.stderr
    answer = result.json()
    assert answer["document"] == "SchoolBackup-Dump-0123456789"
    [command] = ssm.list_commands(CommandId=answer["command_id"])["Commands"]
    assert command["DocumentName"] == "SchoolBackup-Dump-0123456789"
    assert command["Targets"] == [{"Key": "tag:Backup", "Values": ["true"]}]
    [server] = answer["result"]
    assert (server["instance"], server["status"]) == (school.server, "Success")


def test_run_dump_without_a_document_says_the_stack_is_missing(
    school: School, cli: Callable[..., Result]
) -> None:
    result = cli("run", "dump")
    assert result.exit_code == 1
    assert "No dump document SchoolBackup-Dump-" in result.stderr


def test_run_dump_with_no_server_to_dump_is_a_problem_not_done(aws: None, cli: Callable[..., Result]) -> None:
    """A tag that matches no running server: SSM reports the command Success with 0 targets."""
    _dump_document("SchoolBackup-Dump-0123456789")
    result = cli("run", "dump")
    assert result.exit_code == 1
    assert "No server matched the dump's targets" in result.stderr


# --- in German (the configuration's language: de) ---------------------------------------------------


def test_run_in_german_says_what_it_runs_and_that_it_is_done(
    lambda_aws: None, cli: Callable[..., Result], german_config: Path
) -> None:
    _function("SchoolBackup-restore-test")
    result = cli("--config", str(german_config), "run", "restore-test")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "SchoolBackup-restore-test läuft (das kann einige Minuten dauern) ..."
    assert lines[-1] == "restore_test: erledigt"
    assert english_words(lines[0] + " " + lines[-1]) == []


def test_an_unknown_job_in_german(lambda_aws: None, cli: Callable[..., Result], german_config: Path) -> None:
    result = cli("--config", str(german_config), "run", "backup-everything")
    assert result.exit_code == 2
    assert "Es gibt keinen Job «backup_everything»; die Jobs heissen: dump, rds_snapshot" in result.stderr
    assert english_words(result.stderr) == []


def test_a_job_that_is_not_deployed_in_german(
    aws: None, cli: Callable[..., Result], german_config: Path
) -> None:
    result = cli("--config", str(german_config), "run", "verify")
    assert result.exit_code == 1
    assert result.stderr.startswith("backupctl: AWS hat Invoke abgelehnt: ")
    assert "SchoolBackup-verify" in result.stderr


def test_run_dump_in_german(school: School, cli: Callable[..., Result], german_config: Path) -> None:
    ssm = _dump_document("SchoolBackup-Dump-0123456789")
    result = cli("--config", str(german_config), "run", "dump")
    assert result.exit_code == 0, result.stderr
    [command] = ssm.list_commands()["Commands"]
    sent = (
        f"SchoolBackup-Dump-0123456789 als Befehl {command['CommandId']} gesendet; die Ausgabe steht in der "
        "Protokollgruppe /schoolbackup/SchoolBackup/dump."
    )
    lines = result.stdout.splitlines()
    assert (lines[0], lines[-1]) == (sent, "dump: erledigt")
    assert english_words(lines[0] + " " + lines[-1]) == []


def test_run_dump_without_a_document_in_german(
    school: School, cli: Callable[..., Result], german_config: Path
) -> None:
    result = cli("--config", str(german_config), "run", "dump")
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert said == (
        "backupctl: In diesem Konto und dieser Region gibt es kein Dump-Dokument SchoolBackup-Dump-...: "
        "Ist der Stack mit eingeschaltetem Dump eingerichtet?"
    )
    assert english_words(said) == []


def test_run_dump_with_no_server_in_german(
    aws: None, cli: Callable[..., Result], german_config: Path
) -> None:
    _dump_document("SchoolBackup-Dump-0123456789")
    result = cli("--config", str(german_config), "run", "dump")
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert said.startswith("backupctl: Kein Server passt zu den Zielen des Dumps (")
    assert said.endswith(
        "Läuft der Webserver, trägt er das Tag Backup=true und ist sein SSM-Agent online "
        "(Systems Manager, Fleet Manager)?"
    )
    assert english_words(said.split("):", 1)[1]) == []
