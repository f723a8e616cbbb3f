"""The RDS manual-snapshot quota is read by one function for every job; an unreadable answer is
"quota unknown", never a lost snapshot or a failed job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.common.aws.quota import SnapshotQuota, read_snapshot_quota
from lambdas.rds_snapshot.handler import handler
from tests.unit.backup_jobs.conftest import AwsFaults

EVENT = {"scheduled_time": "2026-11-27T02:30:00Z"}
HTML_5XX = "<html><head><title>503 Service Unavailable</title></head><body>upstream busy</body></html>"
LAMBDAS = Path(__file__).resolve().parents[3] / "lambdas"


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (200, HTML_5XX, "could not be read"),  # a proxy's HTML page: botocore's ResponseParserError
        (503, HTML_5XX, "could not be read"),  # 5xx with an HTML body, after the retries
        (
            200,
            '<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
            "<DescribeAccountAttributesResult><AccountQuotas><AccountQuota><AccountQuotaName>ManualSnapshots"
            "</AccountQuotaName></AccountQuota></AccountQuotas></DescribeAccountAttributesResult>"
            "</DescribeAccountAttributesResponse>",
            "has no numbers",
        ),
    ],
    ids=["html with 200", "html with 503", "no numbers"],
)
def test_an_unreadable_quota_is_unknown_and_the_snapshots_go_ahead(
    status: int,
    body: str,
    why: str,
    make_db: Callable[..., str],
    lambda_context: Any,
    aws_faults: AwsFaults,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_db("school-db", {"Backup": "true"})
    aws_faults.bodies["rds.DescribeAccountAttributes"] = (status, body)

    assert read_snapshot_quota(boto3.client("rds")) is None
    result = handler(EVENT, lambda_context)

    assert result["created"] == ["sb-school-db-20261127-0230"]
    assert (
        f"RDS manual snapshot quota unknown: {'it ' if why == 'could not be read' else 'the answer '}{why}"
        in caplog.text
    )


def test_a_readable_quota_is_used_and_counted(aws: None, aws_faults: AwsFaults) -> None:
    aws_faults.rds_quota(used=42, limit=100)
    quota = read_snapshot_quota(boto3.client("rds"))
    assert quota == SnapshotQuota(used=42, limit=100)
    assert quota.as_dict() == {"used": 42, "max": 100, "percent": 42.0}
    assert not quota.reached and SnapshotQuota(100, 100).reached


def test_only_one_module_reads_the_quota() -> None:
    readers = sorted(
        str(p.relative_to(LAMBDAS))
        for p in LAMBDAS.rglob("*.py")
        if "describe_account_attributes(" in p.read_text()
    )
    assert readers == ["common/aws/quota.py"]
