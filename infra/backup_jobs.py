"""Issue 3: the rds_snapshot and ami_backup functions, their schedules and least-privilege roles.

What each role may do (IAM service authorization reference, EC2 and RDS):
- Describe* calls support no resource-level permissions (EC2) or are account-wide (RDS account
  attributes): ``*``, acknowledged with a reason.
- Creating a backup is allowed only from instances carrying the selection tag (``rds:db-tag/<key>``,
  ``ec2:ResourceTag/<key>``) or listed by id, and only into names ``sb-*`` (RDS snapshots).
- Tags may be written only as the schoolbackup tags (``aws:RequestTag`` + ``aws:TagKeys``); EC2
  tag-on-create additionally requires ``ec2:CreateAction=CreateImage``.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import Config
from infra.functions import FunctionFactory
from infra.nag import acknowledge
from infra.schedules import JobSchedules
from lambdas.common.naming import (
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    SOURCE_KEY,
)

TAG_KEYS: Final = [MANAGED_BY_KEY, JOB_KEY, SOURCE_KEY]


def _tag_conditions(job: str) -> dict[str, dict[str, object]]:
    return {
        "StringEquals": {
            f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
            f"aws:RequestTag/{JOB_KEY}": job,
        },
        "ForAllValues:StringEquals": {"aws:TagKeys": TAG_KEYS},
    }


def _acknowledge_wildcards(function: lambda_.Function, reasons: dict[str, str]) -> None:
    """One acknowledgement per wildcard resource of this function's role, each with its reason."""
    target = function.role or function
    for resource, reason in reasons.items():
        acknowledge(target, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)


class BackupJobs(Construct):
    """``rds_snapshot`` (daily) and ``ami_backup`` (weekly), scheduled with ``{"scheduled_time": ...}``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        factory: FunctionFactory,
        schedules: JobSchedules,
    ) -> None:
        super().__init__(scope, construct_id)
        selection = config.selection
        stack = Stack.of(self)
        region, account, partition = stack.region, stack.account, stack.partition

        self.rds_snapshot = factory.function(
            "rds_snapshot",
            description="manual snapshot of every selected RDS instance",
            environment={
                "SELECTION_TAG": selection.tag,
                "RDS_INSTANCE_IDS": ",".join(selection.rds_instance_ids),
            },
            timeout=Duration.minutes(3),
        )
        rds_arn = f"arn:{partition}:rds:{region}:{account}"
        snapshot_arn = f"{rds_arn}:snapshot:{NAME_PREFIX}*"
        rds_statements = [
            iam.PolicyStatement(
                sid="FindInstancesAndClusters",
                actions=["rds:DescribeDBInstances", "rds:DescribeDBClusters"],
                resources=[f"{rds_arn}:db:*", f"{rds_arn}:cluster:*"],
            ),
            iam.PolicyStatement(
                sid="FindOwnSnapshots",
                actions=["rds:DescribeDBSnapshots"],
                resources=[f"{rds_arn}:db:*", snapshot_arn],
            ),
            iam.PolicyStatement(
                sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="SnapshotTaggedInstances",
                actions=["rds:CreateDBSnapshot"],
                resources=[f"{rds_arn}:db:*"],
                conditions={"StringEquals": {f"rds:db-tag/{selection.tag_key}": selection.tag_value}},
            ),
            iam.PolicyStatement(
                sid="CreateOwnSnapshotNames", actions=["rds:CreateDBSnapshot"], resources=[snapshot_arn]
            ),
            iam.PolicyStatement(
                sid="TagOwnSnapshotsOnCreate",
                actions=["rds:AddTagsToResource"],
                resources=[snapshot_arn],
                conditions=_tag_conditions(JOB_RDS),
            ),
        ]
        if selection.rds_instance_ids:
            rds_statements.append(
                iam.PolicyStatement(
                    sid="SnapshotListedInstances",
                    actions=["rds:CreateDBSnapshot"],
                    resources=[f"{rds_arn}:db:{db_id}" for db_id in selection.rds_instance_ids],
                )
            )
        self._grant(self.rds_snapshot, rds_statements)
        _acknowledge_wildcards(
            self.rds_snapshot,
            {
                "*": "rds:DescribeAccountAttributes (the snapshot quota) has no resource-level permissions.",
                "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:db:*": (
                    "Listing instances needs db:*; CreateDBSnapshot on db:* is limited by the "
                    f"rds:db-tag/{selection.tag_key} condition to the instances selected for backup."
                ),
                "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:cluster:*": (
                    "Listing clusters (read only) finds tagged Aurora clusters so they are reported, not skipped."
                ),
                f"arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:{NAME_PREFIX}*": (
                    "Snapshot names are sb-<db>-<time>, unknown before the run; tags only as the schoolbackup tags."
                ),
            },
        )

        self.ami_backup = factory.function(
            "ami_backup",
            description="AMI (NoReboot) of every selected EC2 instance, image and snapshots tagged",
            environment={
                "SELECTION_TAG": selection.tag,
                "EC2_INSTANCE_IDS": ",".join(selection.ec2_instance_ids),
                "NO_REBOOT": "true" if config.ami_no_reboot else "false",
            },
            timeout=Duration.minutes(5),
        )
        ec2_arn = f"arn:{partition}:ec2:{region}"
        image_arn, ebs_snapshot_arn = f"{ec2_arn}::image/*", f"{ec2_arn}::snapshot/*"
        ec2_statements = [
            iam.PolicyStatement(
                sid="FindInstancesImagesSnapshots",
                actions=["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ImageTaggedInstances",
                actions=["ec2:CreateImage"],
                resources=[f"{ec2_arn}:{account}:instance/*"],
                conditions={"StringEquals": {f"ec2:ResourceTag/{selection.tag_key}": selection.tag_value}},
            ),
            iam.PolicyStatement(
                sid="CreateImagesAndSnapshots",
                actions=["ec2:CreateImage"],
                resources=[image_arn, ebs_snapshot_arn],
            ),
            iam.PolicyStatement(
                sid="TagOnCreateImage",
                actions=["ec2:CreateTags"],
                resources=[image_arn, ebs_snapshot_arn],
                conditions={
                    "StringEquals": {
                        f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
                        f"aws:RequestTag/{JOB_KEY}": JOB_AMI,
                        "ec2:CreateAction": "CreateImage",
                    },
                    "ForAllValues:StringEquals": {"aws:TagKeys": TAG_KEYS},
                },
            ),
        ]
        ec2_statements.append(
            # Snapshots of a pending image are tagged after CreateImage (and re-checked on later runs).
            iam.PolicyStatement(
                sid="TagImageSnapshotsAfterwards",
                actions=["ec2:CreateTags"],
                resources=[ebs_snapshot_arn],
                conditions=_tag_conditions(JOB_AMI),
            )
        )
        if selection.ec2_instance_ids:
            ec2_statements.append(
                iam.PolicyStatement(
                    sid="ImageListedInstances",
                    actions=["ec2:CreateImage"],
                    resources=[f"{ec2_arn}:{account}:instance/{i}" for i in selection.ec2_instance_ids],
                )
            )
        self._grant(self.ami_backup, ec2_statements)
        _acknowledge_wildcards(
            self.ami_backup,
            {
                "*": "ec2:DescribeInstances/DescribeImages/DescribeSnapshots support no resource-level permissions.",
                "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*": (
                    f"CreateImage on instance/* is limited by the ec2:ResourceTag/{selection.tag_key} condition "
                    "to the instances selected for backup."
                ),
                "arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": (
                    "Image ids are unknown before CreateImage; tagging requires ec2:CreateAction=CreateImage "
                    "and exactly the schoolbackup tags."
                ),
                "arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*": (
                    "Snapshot ids are unknown before CreateImage; CreateTags may only write the schoolbackup "
                    "tags (aws:RequestTag and aws:TagKeys conditions)."
                ),
            },
        )

        schedules.lambda_job("rds_snapshot", self.rds_snapshot)
        schedules.lambda_job("ami_backup", self.ami_backup)

    @staticmethod
    def _grant(function: lambda_.Function, statements: list[iam.PolicyStatement]) -> None:
        for statement in statements:
            function.add_to_role_policy(statement)
