"""Fixtures for the backup jobs: moto, EC2 instances from a registered test AMI, RDS instances, and
``aws_faults`` to answer chosen calls before moto does (throttling, the RDS quota moto lacks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import adaptive, standard
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from tests.emf import emf_metrics  # noqa: F401 - re-exported for the tests here
from tests.iam.recorder import in_lookup

SCHEDULED = "2026-11-27T02:30:00Z"
STAMP = "20261127-0230"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SELECTION_TAG", "Backup=true")
    for name in ("RDS_INSTANCE_IDS", "EC2_INSTANCE_IDS", "NO_REBOOT"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


class AwsFaults:
    """Wraps moto's ``before-send`` handler: for a chosen operation it can answer with throttling errors
    for the first N attempts or with a canned body; everything else goes to moto unchanged."""

    def __init__(self) -> None:
        self.throttle: dict[str, int] = {}  # "service.Operation" -> attempts to throttle
        self.bodies: dict[str, tuple[int, str]] = {}  # "service.Operation" -> (status, body)
        self.throttled: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.sent: list[tuple[str, dict[str, list[str]]]] = []  # (operation, query parameters) as sent

    def params(self, op: str) -> list[dict[str, list[str]]]:
        return [p for o, p in self.sent if o == op]

    def answer(self, event_name: str, request: Any) -> AWSResponse | None:
        # event_name is "before-send.<service>.<Operation>"
        op = event_name.split(".", 1)[1]
        self.calls[op] += 1
        body = request.body or b""
        self.sent.append((op, parse_qs(body.decode() if isinstance(body, bytes) else str(body))))
        if self.throttled[op] < self.throttle.get(op, self.throttle.get("*", 0)):
            self.throttled[op] += 1
            return AWSResponse(request.url, 400, {}, MockRawResponse(_throttling_body(op)))
        if op in self.bodies:
            status, body = self.bodies[op]
            return AWSResponse(request.url, status, {}, MockRawResponse(body))
        return None

    def rds_quota(self, used: int, limit: int) -> None:
        self.bodies["rds.DescribeAccountAttributes"] = (200, _quota_body(used, limit))


def _throttling_body(op: str) -> str:
    if op.startswith("ec2."):
        return (
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
            "</Message></Error></Errors><RequestID>throttled</RequestID></Response>"
        )
    return (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
        "</Error><RequestId>throttled</RequestId></ErrorResponse>"
    )


def _quota_body(used: int, limit: int) -> str:
    return (
        '<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        "<DescribeAccountAttributesResult><AccountQuotas>"
        "<AccountQuota><AccountQuotaName>DBInstances</AccountQuotaName><Used>1</Used><Max>40</Max></AccountQuota>"
        f"<AccountQuota><AccountQuotaName>ManualSnapshots</AccountQuotaName><Used>{used}</Used><Max>{limit}</Max>"
        "</AccountQuota></AccountQuotas></DescribeAccountAttributesResult>"
        "<ResponseMetadata><RequestId>quota</RequestId></ResponseMetadata></DescribeAccountAttributesResponse>"
    )


@pytest.fixture
def aws_faults(monkeypatch: pytest.MonkeyPatch) -> AwsFaults:
    """moto registers one BotocoreStubber for ``before-send``; wrapping its ``__call__`` puts our answer
    first without depending on handler order. Retry back-off is set to zero so tests stay fast."""
    faults = AwsFaults()
    moto_call = BotocoreStubber.__call__

    def call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
        if self.enabled and not in_lookup():  # the IAM recorder's own tag lookups go straight to moto
            answer = faults.answer(event_name, request)
            if answer is not None:
                return answer
        return moto_call(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", call)
    # Zero back-off, and no client-side rate limiting (adaptive mode would pause up to seconds per call).
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(
        adaptive.ClientRateLimiter, "on_sending_request", lambda self, request, **kwargs: None
    )
    return faults


@pytest.fixture
def test_ami(aws: None) -> str:
    ec2 = boto3.client("ec2")
    return ec2.register_image(
        Name="test-base-image",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        Architecture="arm64",
        VirtualizationType="hvm",
    )["ImageId"]


@pytest.fixture
def make_instance(test_ami: str) -> Callable[..., str]:
    def make(tags: dict[str, str] | None = None, state: str = "running") -> str:
        ec2 = boto3.client("ec2")
        spec = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
        ]
        instance_id = ec2.run_instances(
            ImageId=test_ami,
            MinCount=1,
            MaxCount=1,
            InstanceType="t4g.small",
            **({"TagSpecifications": spec} if tags else {}),
        )["Instances"][0]["InstanceId"]
        if state == "stopped":
            ec2.stop_instances(InstanceIds=[instance_id])
        elif state == "terminated":
            ec2.terminate_instances(InstanceIds=[instance_id])
        return instance_id

    return make


@pytest.fixture
def make_db(aws: None) -> Callable[..., str]:
    def make(
        db_id: str, tags: dict[str, str] | None = None, stopped: bool = False, cluster: str | None = None
    ) -> str:
        rds = boto3.client("rds")
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": db_id,
            "DBInstanceClass": "db.t4g.micro",
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        }
        if cluster:
            kwargs.update(Engine="aurora-mysql", DBClusterIdentifier=cluster)
        else:
            kwargs.update(
                Engine="mysql",
                AllocatedStorage=20,
                MasterUsername="admin",
                MasterUserPassword="not-a-secret-1",
            )
        rds.create_db_instance(**kwargs)
        if stopped:
            rds.stop_db_instance(DBInstanceIdentifier=db_id)
        return db_id

    return make
