"""verify of copies in another account (moto with two accounts): the checks read the target account's
offsite region and copy bucket through its ``-read`` role, never this account's offsite region."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.credentials import AssumeRoleCredentialFetcher
from botocore.exceptions import ClientError

from cli.backupctl.rehearsal import create_database, launch_server
from lambdas.common.contracts import offsite_bucket_name
from lambdas.common.jobs.verify import VerificationFailed
from lambdas.common.settings import Offsite
from tests.moto_sharing import assumed_session
from tests.unit.checks.conftest import DB, Dump
from tests.unit.checks.test_verify_offsite import REGION, TARGETS, failure, home_and_copies, run

TARGET = "210987654321"
ROLE = f"arn:aws:iam::{TARGET}:role/schoolbackup-offsite-read"
COPY_BUCKET = offsite_bucket_name(TARGET, REGION)


def target_session() -> boto3.Session:
    return assumed_session(ROLE, REGION)


def _place(clients: Any, bucket: str) -> dict[str, Any]:
    s3, ec2, rds = clients("s3"), clients("ec2"), clients("rds")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return {
        "s3": s3,
        "ec2": ec2,
        "rds": rds,
        "instance": launch_server(ec2, {"Name": "offsite-stand-in"}),
        "db": create_database(rds, DB, {"Name": "offsite-stand-in"}),
    }


@pytest.fixture
def target(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Copies into the target account on; its region's EC2/RDS/S3 as the target account."""
    settings = Offsite(region=REGION, bucket=COPY_BUCKET, targets=TARGETS, account=TARGET, role_arn=ROLE)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    return {**_place(target_session().client, COPY_BUCKET), "bucket": COPY_BUCKET}


def test_copies_in_the_target_account_pass(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    target: dict[str, Any],
    lambda_context: Any,
) -> None:
    home_and_copies(server, database, make_dump, target)
    result = run(lambda_context)
    assert result["passed"] is True
    assert {(c["kind"], c["ok"]) for c in result["offsite_checks"]} == {
        ("dump", True),
        ("rds", True),
        ("ami", True),
    }


def test_copies_in_this_accounts_offsite_region_do_not_count(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    target: dict[str, Any],
    lambda_context: Any,
) -> None:
    """Staging copies (or old same-account copies) in this account's offsite region are not the copies."""
    here = {
        **_place(lambda service: boto3.client(service, region_name=REGION), "somewhere-else-bucket"),
        "bucket": "somewhere-else-bucket",
    }
    home_and_copies(server, database, make_dump, here)
    message = failure(lambda_context)
    assert "eu-central-1" in message and database in message


def test_a_read_role_that_cannot_be_assumed_fails_the_offsite_checks_and_keeps_the_home_ones(
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    target: dict[str, Any],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home_and_copies(server, database, make_dump, target)

    def denied(self: Any) -> Any:
        error = {"Error": {"Code": "AccessDenied", "Message": f"not authorized: sts:AssumeRole on {ROLE}"}}
        raise ClientError(error, "AssumeRole")  # type: ignore[arg-type]

    monkeypatch.setattr(AssumeRoleCredentialFetcher, "fetch_credentials", denied)
    with pytest.raises(VerificationFailed) as caught:
        run(lambda_context)
    message = str(caught.value)
    assert "AccessDenied" in message and "schoolbackup-offsite-read" in message
