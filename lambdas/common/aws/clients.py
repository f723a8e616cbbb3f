"""boto3 clients with the retry behaviour every job needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

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

# Adaptive mode backs off on Throttling / RequestLimitExceeded and rate-limits the client itself;
# ten attempts ride out a burst of throttling without hiding a real outage for long.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=10, read_timeout=60)


def ec2_client() -> EC2Client:
    return boto3.client("ec2", config=RETRY_CONFIG)


def rds_client() -> RDSClient:
    return boto3.client("rds", config=RETRY_CONFIG)


def s3_client() -> S3Client:
    return boto3.client("s3", config=RETRY_CONFIG)


def cloudwatch_client() -> CloudWatchClient:
    return boto3.client("cloudwatch", config=RETRY_CONFIG)


def sns_client() -> SNSClient:
    return boto3.client("sns", config=RETRY_CONFIG)


def sesv2_client() -> SESV2Client:
    return boto3.client("sesv2", config=RETRY_CONFIG)


def ssm_client() -> SSMClient:
    return boto3.client("ssm", config=RETRY_CONFIG)


def iam_client() -> IAMClient:
    return boto3.client("iam", config=RETRY_CONFIG)


def cloudformation_client() -> CloudFormationClient:
    return boto3.client("cloudformation", config=RETRY_CONFIG)


def kms_client() -> KMSClient:
    return boto3.client("kms", config=RETRY_CONFIG)
