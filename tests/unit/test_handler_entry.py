"""Every handler can be called the way a test harness or the CLI calls it: with ``context=None``, or
with a minimal context object that has only the four fields Powertools reads (no
``get_remaining_time_in_millis``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.ami_backup import handler as ami_backup
from lambdas.common.jobs.restore_test import RestoreTestFailed
from lambdas.common.jobs.verify import VerificationFailed
from lambdas.prune import handler as prune
from lambdas.rds_snapshot import handler as rds_snapshot
from lambdas.restore_test import handler as restore_test
from lambdas.verify import handler as verify

BUCKET = "schoolbackup-123456789012-eu-central-2"
DOCUMENTED_ENV = {
    "BACKUP_BUCKET": BUCKET,
    "SELECTION_TAG": "Backup=true",
    "KEEP_DAILY": "7",
    "KEEP_WEEKLY": "4",
    "KEEP_MONTHLY": "3",
    "MAX_AGE_DAYS": "90",
    "MIN_KEEP": "3",
}
UNDOCUMENTED = (
    "EC2_INSTANCE_IDS",
    "RDS_INSTANCE_IDS",
    "NO_REBOOT",
    "DRY_RUN",
    "DUMP_ENABLED",
    "DUMP_MAX_AGE_HOURS",
    "RDS_MAX_AGE_HOURS",
    "AMI_MAX_AGE_HOURS",
    "RESTORE_TEST_PICK",
)


@dataclass
class MinimalContext:
    """Only what a plain test double usually carries."""

    function_name: str = "schoolbackup-test"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:eu-central-2:123456789012:function:schoolbackup-test"
    aws_request_id: str = "11111111-1111-1111-1111-111111111111"


@pytest.fixture
def documented_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the variables of DESIGN.md's table are set; moto with a bucket, a selected server and DB."""
    for name in UNDOCUMENTED:
        monkeypatch.delenv(name, raising=False)
    for name, value in DOCUMENTED_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-2"}
        )
        yield


HANDLERS: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "rds_snapshot": rds_snapshot.handler,
    "ami_backup": ami_backup.handler,
    "prune": prune.handler,
}


@pytest.mark.parametrize("name", sorted(HANDLERS))
@pytest.mark.parametrize("context", [None, MinimalContext()], ids=["none", "minimal"])
def test_backup_and_prune_handlers_run_with_a_missing_or_minimal_context(
    documented_only: None, name: str, context: Any
) -> None:
    result = HANDLERS[name]({"scheduled_time": "2026-11-27T02:30:00Z"}, context)
    assert isinstance(result, dict)
    assert result.get("failed", {}) == {}
    assert result.get("failures", []) == []


@pytest.mark.parametrize("context", [None, MinimalContext()], ids=["none", "minimal"])
def test_verify_with_only_documented_variables_checks_and_fails_on_missing_backups(
    documented_only: None, context: Any
) -> None:
    boto3.client("rds").create_db_instance(
        DBInstanceIdentifier="school-db",
        DBInstanceClass="db.t4g.micro",
        Engine="mysql",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        Tags=[{"Key": "Backup", "Value": "true"}],
    )
    with pytest.raises(VerificationFailed, match="RDS snapshot of school-db: no backup found"):
        verify.handler({"scheduled_time": "2026-11-27T06:30:00Z"}, context)


@pytest.mark.parametrize("context", [None, MinimalContext()], ids=["none", "minimal"])
def test_restore_test_runs_with_a_missing_or_minimal_context(documented_only: None, context: Any) -> None:
    # An empty bucket is a failed restore test, not a crash on the context.
    with pytest.raises(RestoreTestFailed):
        restore_test.handler({}, context)
