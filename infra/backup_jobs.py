"""The rds_snapshot and ami_backup functions, their schedules and least-privilege roles.

What each role may do (IAM service authorization reference, EC2 and RDS):
- Describe* calls support no resource-level permissions (EC2) or are account-wide (RDS account
  attributes): ``*``, acknowledged with a reason.
- Creating a backup is allowed only from instances carrying the selection tag (``rds:db-tag/<key>``,
  ``ec2:ResourceTag/<key>``) or listed by id, and only into names ``sb-*`` (RDS snapshots).
- Tags may be written only as the schoolbackup tags (``aws:RequestTag`` + ``aws:TagKeys``); EC2
  tag-on-create additionally requires ``ec2:CreateAction=CreateImage``.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import Config
from infra.functions import FunctionFactory
from infra.job_settings import JobSettings
from infra.schedules import JobSchedules
from lambdas.common.contracts import (
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    TAG_KEYS,
)


def _tag_conditions(job: str) -> dict[str, dict[str, object]]:
    return {
        "StringEquals": {
            f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
            f"aws:RequestTag/{JOB_KEY}": job,
        },
        "ForAllValues:StringEquals": {"aws:TagKeys": list(TAG_KEYS)},
    }


class BackupJobs(Construct):
    """``rds_snapshot`` (daily) and ``ami_backup`` (weekly), scheduled with ``{"scheduled_time": ...}``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        settings: JobSettings,
        factory: FunctionFactory,
        schedules: JobSchedules,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config, self.settings = config, settings
        stack = Stack.of(self)
        self.region, self.account, self.partition = stack.region, stack.account, stack.partition
        self.rds_snapshot = self._rds_snapshot(factory, schedules)
        self.ami_backup = self._ami_backup(factory, schedules)

    def _rds_snapshot(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        selection = self.config.selection
        tag = selection.tag
        rds_arn = f"arn:{self.partition}:rds:{self.region}:{self.account}"
        snapshot_arn = f"{rds_arn}:snapshot:{NAME_PREFIX}*"
        statements = [
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
                conditions={"StringEquals": {f"rds:db-tag/{tag.key}": tag.value}},
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
            statements.append(
                iam.PolicyStatement(
                    sid="SnapshotListedInstances",
                    actions=["rds:CreateDBSnapshot"],
                    resources=[f"{rds_arn}:db:{db_id}" for db_id in selection.rds_instance_ids],
                )
            )
        return factory.job(
            "rds_snapshot",
            description="manual snapshot of every selected RDS instance",
            environment=self.settings.rds_snapshot.to_env(),
            statements=statements,
            wildcards={
                "*": "rds:DescribeAccountAttributes (the snapshot quota) has no resource-level permissions.",
                "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:db:*": (
                    "Listing instances needs db:*; CreateDBSnapshot on db:* is limited by the "
                    f"rds:db-tag/{tag.key} condition to the instances selected for backup."
                ),
                "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:cluster:*": (
                    "Listing clusters (read only) finds tagged Aurora clusters so they are reported, not skipped."
                ),
                f"arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:{NAME_PREFIX}*": (
                    "Snapshot names are sb-<db>-<time>, unknown before the run; tags only as the schoolbackup tags."
                ),
            },
            schedules=schedules,
            timeout=Duration.minutes(3),
        )

    def _ami_backup(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        selection = self.config.selection
        tag = selection.tag
        ec2_arn = f"arn:{self.partition}:ec2:{self.region}"
        image_arn, ebs_snapshot_arn = f"{ec2_arn}::image/*", f"{ec2_arn}::snapshot/*"
        statements = [
            iam.PolicyStatement(
                sid="FindInstancesImagesSnapshots",
                actions=["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ImageTaggedInstances",
                actions=["ec2:CreateImage"],
                resources=[f"{ec2_arn}:{self.account}:instance/*"],
                conditions={"StringEquals": {f"ec2:ResourceTag/{tag.key}": tag.value}},
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
                    "ForAllValues:StringEquals": {"aws:TagKeys": list(TAG_KEYS)},
                },
            ),
            # Snapshots of a pending image are tagged after CreateImage (and re-checked on later runs).
            iam.PolicyStatement(
                sid="TagImageSnapshotsAfterwards",
                actions=["ec2:CreateTags"],
                resources=[ebs_snapshot_arn],
                conditions=_tag_conditions(JOB_AMI),
            ),
        ]
        if selection.ec2_instance_ids:
            statements.append(
                iam.PolicyStatement(
                    sid="ImageListedInstances",
                    actions=["ec2:CreateImage"],
                    resources=[f"{ec2_arn}:{self.account}:instance/{i}" for i in selection.ec2_instance_ids],
                )
            )
        return factory.job(
            "ami_backup",
            description="AMI (NoReboot) of every selected EC2 instance, image and snapshots tagged",
            environment=self.settings.ami_backup.to_env(),
            statements=statements,
            wildcards={
                "*": "ec2:DescribeInstances/DescribeImages/DescribeSnapshots support no resource-level permissions.",
                "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*": (
                    f"CreateImage on instance/* is limited by the ec2:ResourceTag/{tag.key} condition "
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
            schedules=schedules,
            timeout=Duration.minutes(5),
        )
