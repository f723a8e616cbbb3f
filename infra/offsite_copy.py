"""The offsite_copy function: copies the newest usable RDS snapshot and AMI of each source into the offsite
region (another region of this account), its schedule and its least-privilege role.

What the role may do (IAM service authorization reference for RDS, EC2 and KMS; the EC2 and RDS user
guides on copying AMIs and DB snapshots):
- List: ``rds:DescribeDBSnapshots`` on instances and snapshots of the home and the offsite region (a
  listing is checked on ``db:*`` and ``snapshot:*``, read only); ``rds:DescribeAccountAttributes`` (the
  offsite region's snapshot quota) is account-wide; ``ec2:DescribeImages``/``DescribeSnapshots`` support
  no resource-level permissions.
- Copy: ``rds:CopyDBSnapshot`` only from home snapshots named ``sb-*`` into offsite snapshots named
  ``sb-*``; the tags of the copy only as the schoolbackup tags plus ``CopiedFrom`` (``aws:RequestTag``,
  ``aws:TagKeys``). ``ec2:CopyImage`` only from home images into offsite images and snapshots (image ids
  are unknown before the copy); tags on the copy (on create and afterwards) only as the schoolbackup tags
  plus ``CopiedFrom``.
- Keys: the copies are encrypted with the offsite key (named by its alias, see infra.offsite), through
  RDS and EC2 in the offsite region only (``kms:ViaService``); the originals' keys in the home region (the
  default keys ``aws/rds``/``aws/ebs`` or the school's own, unknown at synth) only through RDS and EC2 of
  the home region. Grants only for AWS resources (``kms:GrantIsForAWSResource``).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.functions import FunctionFactory
from infra.offsite import offsite_key_statements
from infra.schedules import JobSchedules
from lambdas.common.contracts import (
    COPY_TAG_KEYS,
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
)
from lambdas.common.settings import OffsiteCopySettings

# What EBS and RDS ask of the caller's keys while copying (KMS grants for the service, re-encryption).
EC2_DESTINATION_KEY = (
    "kms:DescribeKey",
    "kms:Decrypt",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
EC2_SOURCE_KEY = ("kms:DescribeKey", "kms:Decrypt", "kms:ReEncryptFrom")
RDS_KEY = ("kms:DescribeKey",)
RDS_SOURCE_KEY = ("kms:DescribeKey", "kms:Decrypt")
GRANT = ("kms:CreateGrant",)
GRANT_FOR_AWS: dict[str, object] = {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def _copy_tag_conditions(job: str) -> dict[str, dict[str, object]]:
    equals: dict[str, object] = {
        f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
        f"aws:RequestTag/{JOB_KEY}": job,
    }
    return {"StringEquals": equals, "ForAllValues:StringEquals": {"aws:TagKeys": list(COPY_TAG_KEYS)}}


class OffsiteCopy(Construct):
    """``offsite_copy`` (daily, after rds_snapshot and ami_backup, before prune), ``{"scheduled_time": ...}``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: OffsiteCopySettings,
        factory: FunctionFactory,
        schedules: JobSchedules,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        stack = Stack.of(self)
        self.stack = stack
        self.home, self.offsite = stack.region, settings.offsite.region
        self.function = self._function(factory, schedules)

    def _rds(self, region: str) -> str:
        return f"arn:{self.stack.partition}:rds:{region}:{self.stack.account}"

    def _ec2(self, region: str) -> str:
        return f"arn:{self.stack.partition}:ec2:{region}"

    def _home_keys(self, sid: str, actions: tuple[str, ...], service: str) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=list(actions),
            resources=[f"arn:{self.stack.partition}:kms:{self.home}:{self.stack.account}:key/*"],
            conditions={"StringEquals": {"kms:ViaService": f"{service}.{self.home}.amazonaws.com"}},
        )

    def _offsite_key(self, sid: str, actions: tuple[str, ...], service: str) -> list[iam.PolicyStatement]:
        statements = offsite_key_statements(self.stack, self.offsite, actions, sid, via_service=service)
        if actions == GRANT:
            for statement in statements:
                statement.add_conditions(GRANT_FOR_AWS)
        return statements

    def statements(self) -> list[iam.PolicyStatement]:
        home_rds, off_rds = self._rds(self.home), self._rds(self.offsite)
        home_ec2, off_ec2 = self._ec2(self.home), self._ec2(self.offsite)
        off_images, off_snapshots = f"{off_ec2}::image/*", f"{off_ec2}::snapshot/*"
        home_grant = self._home_keys("OriginalKeysGrantForRds", GRANT, "rds")
        home_grant.add_conditions(GRANT_FOR_AWS)
        home_ebs_grant = self._home_keys("OriginalKeysGrantForEc2", GRANT, "ec2")
        home_ebs_grant.add_conditions(GRANT_FOR_AWS)
        return [
            iam.PolicyStatement(
                sid="ListSnapshotsBothRegions",
                actions=["rds:DescribeDBSnapshots"],
                resources=[f"{arn}:{kind}:*" for arn in (home_rds, off_rds) for kind in ("db", "snapshot")],
            ),
            iam.PolicyStatement(
                sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="CopyOwnSnapshotsOffsite",
                actions=["rds:CopyDBSnapshot"],
                resources=[f"{home_rds}:snapshot:{NAME_PREFIX}*", f"{off_rds}:snapshot:{NAME_PREFIX}*"],
            ),
            iam.PolicyStatement(
                sid="TagSnapshotCopiesOnCopy",
                actions=["rds:AddTagsToResource"],
                resources=[f"{off_rds}:snapshot:{NAME_PREFIX}*"],
                conditions=_copy_tag_conditions(JOB_RDS),
            ),
            iam.PolicyStatement(
                sid="FindImagesAndSnapshots",
                actions=["ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            ),
            # Since October 2024 CopyImage is also authorized on the source image's snapshots (EC2 user
            # guide, permissions for copying an AMI).
            iam.PolicyStatement(
                sid="CopyOwnImagesOffsite",
                actions=["ec2:CopyImage"],
                resources=[f"{home_ec2}::image/*", f"{home_ec2}::snapshot/*", off_images, off_snapshots],
            ),
            # Tag-on-create of CopyImage (ec2:CreateTags with ec2:CreateAction=CopyImage) and, where those
            # tags did not arrive or a copy was still pending at a run, the same tags afterwards.
            iam.PolicyStatement(
                sid="TagImageCopies",
                actions=["ec2:CreateTags"],
                resources=[off_images, off_snapshots],
                conditions=_copy_tag_conditions(JOB_AMI),
            ),
            *self._offsite_key("OffsiteKeyForRds", RDS_KEY, "rds"),
            *self._offsite_key("OffsiteKeyGrantForRds", GRANT, "rds"),
            *self._offsite_key("OffsiteKeyForEc2", EC2_DESTINATION_KEY, "ec2"),
            *self._offsite_key("OffsiteKeyGrantForEc2", GRANT, "ec2"),
            self._home_keys("OriginalKeysForRds", RDS_SOURCE_KEY, "rds"),
            home_grant,
            self._home_keys("OriginalKeysForEc2", EC2_SOURCE_KEY, "ec2"),
            home_ebs_grant,
        ]

    def _function(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        region = "<AWS::Region>"
        home_rds = f"arn:<AWS::Partition>:rds:{region}:<AWS::AccountId>"
        off_rds = f"arn:<AWS::Partition>:rds:{self.offsite}:<AWS::AccountId>"
        off_ec2 = f"arn:<AWS::Partition>:ec2:{self.offsite}"
        listing = (
            "Listing snapshots (read only) is checked on db:* and snapshot:*; the job keeps only sb-* ones."
        )
        return factory.job(
            "offsite_copy",
            description="copies the newest usable RDS snapshot and AMI of each source into the offsite region",
            environment=self.settings.to_env(),
            statements=self.statements(),
            wildcards={
                "*": "rds:DescribeAccountAttributes (the offsite snapshot quota) and ec2:DescribeImages/"
                "DescribeSnapshots support no resource-level permissions.",
                f"{home_rds}:db:*": listing,
                f"{home_rds}:snapshot:*": listing,
                f"{off_rds}:db:*": listing,
                f"{off_rds}:snapshot:*": listing,
                f"{home_rds}:snapshot:{NAME_PREFIX}*": "Originals are named sb-<db>-<time>; only those are copied.",
                f"{off_rds}:snapshot:{NAME_PREFIX}*": (
                    "Copies keep the original's name sb-<db>-<time>; tags only as the schoolbackup tags "
                    "plus CopiedFrom."
                ),
                f"arn:<AWS::Partition>:ec2:{region}::image/*": (
                    "CopyImage checks the source image; CopyImage has no tag condition on it, so it is limited to "
                    "this region's images and the job picks only schoolbackup's own."
                ),
                f"arn:<AWS::Partition>:ec2:{region}::snapshot/*": (
                    "CopyImage checks the source image's EBS snapshots too; limited to this region's snapshots, "
                    "and only CopyImage (no deletion or sharing)."
                ),
                f"{off_ec2}::image/*": (
                    "Image ids of copies are unknown before CopyImage; tags only as the schoolbackup tags plus "
                    "CopiedFrom (aws:RequestTag and aws:TagKeys conditions)."
                ),
                f"{off_ec2}::snapshot/*": (
                    "The copy's EBS snapshot ids are unknown before CopyImage; tags only as the schoolbackup tags "
                    "plus CopiedFrom (aws:RequestTag and aws:TagKeys conditions)."
                ),
                f"arn:<AWS::Partition>:kms:{self.offsite}:<AWS::AccountId>:key/*": (
                    "The offsite key lives in the offsite stack; key/* is narrowed to it by kms:ResourceAliases "
                    "(alias/schoolbackup-offsite) and usable only through RDS and EC2 of the offsite region."
                ),
                f"arn:<AWS::Partition>:kms:{region}:<AWS::AccountId>:key/*": (
                    "The originals' keys (the default keys aws/rds and aws/ebs, or the school's own) cannot be "
                    "named at synth; usable only through RDS and EC2 of this region (kms:ViaService), grants "
                    "only for AWS resources."
                ),
            },
            schedules=schedules,
            timeout=Duration.minutes(5),
        )
