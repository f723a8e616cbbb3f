"""backupctl run <job> against moto: the deployed function is found by its contract name and invoked once;
the dump is sent as a Run Command to the selected servers with the newest dump document."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.cli.conftest import BUCKET, REGION, Result, School


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
