"""The monthly IAM review function, its schedule and its least-privilege role.

What the role may do (IAM service authorization reference):
- Read the account's IAM: iam:GenerateCredentialReport, GetCredentialReport, GetAccountSummary and
  GetAccountAuthorizationDetails support no resource-level permissions (``*``); they only read.
- Ask AWS's policy simulator about users and roles of this account (iam:SimulatePrincipalPolicy on
  ``user/*`` and ``role/*`` of the account): it evaluates policies, it changes nothing.
- Read the backup bucket's and key's policies (s3:GetBucketPolicy, kms:GetKeyPolicy on those two only):
  the simulator needs them.
- Read this stack's template and resources (cloudformation:GetTemplate, ListStackResources on this
  stack only), to compare its roles with what it defines.
- Its own records: list and read ``reports/iam/`` (the previous month's), create one there once
  (If-None-Match required), with the bucket key.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.functions import FunctionFactory
from infra.job_settings import JobSettings
from infra.schedules import JobSchedules
from infra.storage import read_statements, write_once_statements
from lambdas.common.contracts import IAM_REVIEW_PREFIX

JOB: Final = "iam_review"
BUCKET_ARN: Final = "<StorageBackupBucketF1474890.Arn>"


class IamReview(Construct):
    """The ``iam_review`` function (monthly), scheduled with ``{"scheduled_time": ...}``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: JobSettings,
        factory: FunctionFactory,
        schedules: JobSchedules,
        bucket: s3.IBucket,
        key: kms.IKey,
        prune_role: iam.IRole | None,
    ) -> None:
        super().__init__(scope, construct_id)
        if prune_role is None:
            raise ValueError("the IAM review needs the prune function's role (it deletes backups by design)")
        self.bucket, self.key = bucket, key
        review = replace(
            settings.iam_review,
            key_arn=key.key_arn,
            stack_name=Stack.of(self).stack_name,
            prune_role=prune_role.role_name,
        )
        self.function = factory.job(
            JOB,
            description="monthly IAM review: MFA, old keys, admin-grade policies, who can delete backups, drift",
            environment=review.to_env(),
            statements=self._statements(),
            wildcards=wildcard_reasons(Stack.of(self).stack_name),
            schedules=schedules,
            timeout=Duration.minutes(10),
        )

    def _statements(self) -> list[iam.PolicyStatement]:
        stack = Stack.of(self)
        account_iam = f"arn:{stack.partition}:iam::{stack.account}"
        records = f"{IAM_REVIEW_PREFIX}/"
        return [
            iam.PolicyStatement(
                sid="ReadAccountIam",
                actions=[
                    "iam:GenerateCredentialReport",
                    "iam:GetCredentialReport",
                    "iam:GetAccountSummary",
                    "iam:GetAccountAuthorizationDetails",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="SimulatePrincipals",
                actions=["iam:SimulatePrincipalPolicy"],
                resources=[f"{account_iam}:user/*", f"{account_iam}:role/*"],
            ),
            iam.PolicyStatement(
                sid="ReadBucketPolicy", actions=["s3:GetBucketPolicy"], resources=[self.bucket.bucket_arn]
            ),
            iam.PolicyStatement(
                sid="ReadKeyPolicy", actions=["kms:GetKeyPolicy"], resources=[self.key.key_arn]
            ),
            iam.PolicyStatement(
                sid="ReadOwnStack",
                actions=["cloudformation:GetTemplate", "cloudformation:ListStackResources"],
                resources=[
                    stack.format_arn(
                        service="cloudformation", resource="stack", resource_name=f"{stack.stack_name}/*"
                    )
                ],
            ),
            *read_statements(self.bucket, self.key, [records], sid="OwnRecords"),
            *write_once_statements(self.bucket, self.key, records, sid="OwnRecord"),
        ]


def wildcard_reasons(stack_name: str) -> dict[str, str]:
    """Each wildcard resource of the role (as cdk-nag prints it) with the reason it is needed."""
    return {
        "*": (
            "iam:GenerateCredentialReport, GetCredentialReport, GetAccountSummary and GetAccountAuthorizationDetails "
            "support no resource-level permissions; all four only read."
        ),
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*": (
            "iam:SimulatePrincipalPolicy for every user of this account: the review asks AWS which of them could "
            "destroy the backups. The simulator evaluates policies and changes nothing."
        ),
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*": (
            "iam:SimulatePrincipalPolicy for every role of this account: the review asks AWS which of them could "
            "destroy the backups. The simulator evaluates policies and changes nothing."
        ),
        f"arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/{stack_name}/*": (
            "This stack only (its id is assigned at creation): its template and resources, read to compare its "
            "roles with what it defines."
        ),
        f"{BUCKET_ARN}/{IAM_REVIEW_PREFIX}/*": (
            "iam_review reads the previous month's record and writes one record per month under reports/iam/ "
            "(create-only)."
        ),
    }
