"""boto3 clients with the retry behaviour every job needs.

Each factory takes an optional ``region``: None is the function's own region (AWS_REGION), another one
reaches the offsite copies (prune and verify there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient

    from lambdas.common.settings import Offsite

# Adaptive mode backs off on Throttling / RequestLimitExceeded and rate-limits the client itself;
# ten attempts ride out a burst of throttling without hiding a real outage for long.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=10, read_timeout=60)


def ec2_client(region: str | None = None) -> EC2Client:
    return boto3.client("ec2", region_name=region, config=RETRY_CONFIG)


def rds_client(region: str | None = None) -> RDSClient:
    return boto3.client("rds", region_name=region, config=RETRY_CONFIG)


def s3_client(region: str | None = None) -> S3Client:
    return boto3.client("s3", region_name=region, config=RETRY_CONFIG)


def cloudwatch_client(region: str | None = None) -> CloudWatchClient:
    return boto3.client("cloudwatch", region_name=region, config=RETRY_CONFIG)


def sns_client(region: str | None = None) -> SNSClient:
    return boto3.client("sns", region_name=region, config=RETRY_CONFIG)


def sesv2_client(region: str | None = None) -> SESV2Client:
    return boto3.client("sesv2", region_name=region, config=RETRY_CONFIG)


def ssm_client(region: str | None = None) -> SSMClient:
    return boto3.client("ssm", region_name=region, config=RETRY_CONFIG)


def iam_client(region: str | None = None) -> IAMClient:
    return boto3.client("iam", region_name=region, config=RETRY_CONFIG)


def cloudformation_client(region: str | None = None) -> CloudFormationClient:
    return boto3.client("cloudformation", region_name=region, config=RETRY_CONFIG)


def kms_client(region: str | None = None) -> KMSClient:
    return boto3.client("kms", region_name=region, config=RETRY_CONFIG)


@dataclass(frozen=True)
class RegionClients:
    """The clients prune and verify use in the offsite region (the copies there and the copy bucket)."""

    region: str
    ec2: EC2Client
    rds: RDSClient
    s3: S3Client


def region_clients(region: str) -> RegionClients:
    return RegionClients(region, ec2_client(region), rds_client(region), s3_client(region))


def assumed_region_clients(
    region: str, role_arn: str, session_name: str, base: boto3.Session | None = None
) -> RegionClients:
    """The clients of ``region`` in another account, as the role ``role_arn`` there.

    The role is assumed (STS AssumeRole with ``base``'s credentials, by default the function's own) on
    the first request and again before the credentials expire, not here: a role that cannot be
    assumed fails the first request with the AccessDenied of STS, where the caller's error handling
    of that request (one check, one source) reports it, instead of failing the whole job up front.
    The session name shows in the target account's CloudTrail."""
    base = base or boto3.Session()
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=base._session.create_client,  # botocore's own AssumeRole provider
        source_credentials=base.get_credentials(),
        role_arn=role_arn,
        extra_args={"RoleSessionName": session_name, "DurationSeconds": 3600},
    )
    core = botocore.session.Session()
    # no public setter for refreshable credentials (set_credentials makes static ones)
    core._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    session = boto3.Session(botocore_session=core, region_name=region)
    return RegionClients(
        region,
        session.client("ec2", config=RETRY_CONFIG),
        session.client("rds", config=RETRY_CONFIG),
        session.client("s3", config=RETRY_CONFIG),
    )


def offsite_region_clients(region: str, role_arn: str | None, session_name: str) -> RegionClients:
    """The offsite region's clients: of this account, or with ``role_arn`` of the target account."""
    if role_arn:
        return assumed_region_clients(region, role_arn, session_name)
    return region_clients(region)


def offsite_clients_of(offsite: Offsite | None, session_name: str) -> RegionClients | None:
    """The offsite region's clients for ``offsite`` (through its role in a target account), or None
    without offsite copies."""
    return offsite_region_clients(offsite.region, offsite.role_arn, session_name) if offsite else None
