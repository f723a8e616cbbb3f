"""The prune function, its daily schedule and its least-privilege role.

What the role may do (IAM service authorization reference, EC2 and RDS):
- List: ``ec2:DescribeImages``/``ec2:DescribeSnapshots`` support no resource-level permissions (``*``);
  ``rds:DescribeDBSnapshots`` on instances and snapshots of this account and region (read only);
  ``rds:DescribeAccountAttributes`` (the manual-snapshot quota) is account-wide (``*``).
- Delete: ``ec2:DeregisterImage`` and ``ec2:DeleteSnapshot`` only on resources tagged
  ``ManagedBy=schoolbackup`` (``aws:ResourceTag``); ``rds:DeleteDBSnapshot`` only on snapshots named
  ``sb-*`` *and* tagged ``ManagedBy=schoolbackup`` (``rds:snapshot-tag``). Even a bug in prune cannot
  delete the school's own images or snapshots.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.functions import FunctionFactory
from infra.job_settings import JobSettings
from infra.schedules import JobSchedules
from lambdas.common.contracts import MANAGED_BY_KEY, MANAGED_BY_VALUE, NAME_PREFIX

JOB: Final = "prune"
# Prune stops starting deletions 30 s before its timeout and reports what is left for the next run;
# at ~0.2 s per deletion, 10 minutes clear a few thousand backups.
TIMEOUT: Final = Duration.minutes(10)


class Prune(Construct):
    """The ``prune`` function (daily), scheduled with ``{"scheduled_time": ...}``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: JobSettings,
        factory: FunctionFactory,
        schedules: JobSchedules,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = factory.job(
            JOB,
            description="apply the retention policy to AMIs (+ their EBS snapshots) and RDS snapshots",
            environment=settings.prune.to_env(),
            statements=self._statements(),
            wildcards=WILDCARD_REASONS,
            schedules=schedules,
            timeout=TIMEOUT,
        )

    def _statements(self) -> list[iam.PolicyStatement]:
        stack = Stack.of(self)
        ec2_arn = f"arn:{stack.partition}:ec2:{stack.region}"
        rds_arn = f"arn:{stack.partition}:rds:{stack.region}:{stack.account}"
        managed = {"StringEquals": {f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}
        return [
            iam.PolicyStatement(
                sid="ListImagesAndSnapshots",
                actions=["ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="DeregisterOwnImages",
                actions=["ec2:DeregisterImage"],
                resources=[f"{ec2_arn}::image/*"],
                conditions=managed,
            ),
            iam.PolicyStatement(
                sid="DeleteOwnEbsSnapshots",
                actions=["ec2:DeleteSnapshot"],
                resources=[f"{ec2_arn}::snapshot/*"],
                conditions=managed,
            ),
            iam.PolicyStatement(
                sid="ListDbSnapshots",
                actions=["rds:DescribeDBSnapshots"],
                resources=[f"{rds_arn}:db:*", f"{rds_arn}:snapshot:*"],
            ),
            iam.PolicyStatement(
                sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="DeleteOwnDbSnapshots",
                actions=["rds:DeleteDBSnapshot"],
                resources=[f"{rds_arn}:snapshot:{NAME_PREFIX}*"],
                conditions={"StringEquals": {f"rds:snapshot-tag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}},
            ),
        ]


WILDCARD_REASONS: Final = {
    "*": (
        "ec2:DescribeImages/DescribeSnapshots support no resource-level permissions, and "
        "rds:DescribeAccountAttributes (the manual-snapshot quota) is account-wide."
    ),
    "arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": (
        "Image ids are not known in advance; DeregisterImage is limited by the "
        f"aws:ResourceTag/{MANAGED_BY_KEY}={MANAGED_BY_VALUE} condition to schoolbackup's AMIs."
    ),
    "arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*": (
        "Snapshot ids are not known in advance; DeleteSnapshot is limited by the "
        f"aws:ResourceTag/{MANAGED_BY_KEY}={MANAGED_BY_VALUE} condition to schoolbackup's snapshots."
    ),
    "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:db:*": (
        "Listing manual snapshots (read only) across the account's instances: the policy "
        "applies to every backed-up DB, whose ids are not known at deploy time."
    ),
    "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:*": (
        "Listing manual snapshots (read only) is one account-wide call; prune then keeps to "
        "the ones tagged ManagedBy=schoolbackup, and may delete only those (next statement)."
    ),
    f"arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:{NAME_PREFIX}*": (
        "Snapshot names are sb-<db>-<time>; DeleteDBSnapshot additionally requires "
        f"rds:snapshot-tag/{MANAGED_BY_KEY}={MANAGED_BY_VALUE}."
    ),
}
