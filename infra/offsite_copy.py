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

Copies into another account (``offsite.account``): the copies in this account's offsite region are the
staging copies (the staging key instead of the offsite key; the tag ``OffsiteStage=staging`` allowed too).
This role may also share them with the target account and delete them, only those tagged
``OffsiteStage=staging``, and assume the one role ``<prefix>-copy`` of the target account, whose
statements (:func:`target_copy_statements`) copy the shared staging copies there.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.functions import FunctionFactory
from infra.offsite_names import offsite_key_statements
from infra.schedules import JobSchedules
from lambdas.common.contracts import (
    COPY_TAG_KEYS,
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    OFFSITE_KEY_ALIAS,
    STAGE_KEY,
    STAGE_STAGING,
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
# A staging copy (copies into another account) carries the stage tag besides the copy tags.
STAGING_TAG_KEYS = (*COPY_TAG_KEYS, STAGE_KEY)


def _copy_tag_conditions(
    job: str, tag_keys: tuple[str, ...] = COPY_TAG_KEYS, *, on_create: bool = False
) -> dict[str, dict[str, object]]:
    """Only schoolbackup's copy tags. ``on_create``: only on the copy being made (EC2: tag-on-create of
    CopyImage; RDS: a snapshot without a ManagedBy tag yet, the new copy), never on an existing image,
    snapshot or DB snapshot: a role that could tag any of them as a copy (or as a staging copy) could
    hand it to a deletion that trusts those tags."""
    equals: dict[str, object] = {
        f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
        f"aws:RequestTag/{JOB_KEY}": job,
    }
    conditions: dict[str, dict[str, object]] = {
        "StringEquals": equals,
        "ForAllValues:StringEquals": {"aws:TagKeys": list(tag_keys)},
    }
    if on_create and job == JOB_AMI:
        equals["ec2:CreateAction"] = "CopyImage"
    elif on_create:
        conditions["Null"] = {f"rds:snapshot-tag/{MANAGED_BY_KEY}": "true"}
    return conditions


def rds_arn(stack: Stack, region: str, account: str | None = None) -> str:
    """``arn:<partition>:rds:<region>:<account>`` (``account`` None: the stack's)."""
    return f"arn:{stack.partition}:rds:{region}:{stack.account if account is None else account}"


def ec2_arn(stack: Stack, region: str) -> str:
    """``arn:<partition>:ec2:<region>`` (images and snapshots have no account in their ARN)."""
    return f"arn:{stack.partition}:ec2:{region}"


def destination_key_statements(
    stack: Stack,
    region: str,
    prefix: str,
    *,
    account: str | None = None,
    alias: str = OFFSITE_KEY_ALIAS,
    key_arn: str | None = None,
) -> list[iam.PolicyStatement]:
    """The key that encrypts the copies in ``region``, through RDS and EC2 there: ``<prefix>KeyForRds``,
    ``<prefix>KeyGrantForRds``, ``<prefix>KeyForEc2``, ``<prefix>KeyGrantForEc2``. The key is named
    by ``key_arn`` (in this stack) or by its ``alias`` in ``account``."""
    out: list[iam.PolicyStatement] = []
    for service, actions in (("rds", RDS_KEY), ("ec2", EC2_DESTINATION_KEY)):
        name = service.capitalize()
        for sid, acts in ((f"{prefix}KeyFor{name}", actions), (f"{prefix}KeyGrantFor{name}", GRANT)):
            [statement] = offsite_key_statements(
                stack, region, acts, sid, service, account=account, alias=alias, key_arn=key_arn
            )
            if acts == GRANT:
                statement.add_conditions(GRANT_FOR_AWS)
            out.append(statement)
    return out


def source_key_statements(
    stack: Stack, region: str, prefix: str, *, account: str | None = None, alias: str | None = None
) -> list[iam.PolicyStatement]:
    """The keys of the copied originals in ``region``, through RDS and EC2 there: ``<prefix>KeysForRds``,
    ``<prefix>KeysGrantForRds``, ``<prefix>KeysForEc2``, ``<prefix>KeysGrantForEc2``. Without
    ``alias`` every key of ``account`` there (the originals' keys are unknown at synth)."""
    out: list[iam.PolicyStatement] = []
    for service, actions in (("rds", RDS_SOURCE_KEY), ("ec2", EC2_SOURCE_KEY)):
        name = service.capitalize()
        for sid, acts in ((f"{prefix}KeysFor{name}", actions), (f"{prefix}KeysGrantFor{name}", GRANT)):
            if alias is None:
                account_id = stack.account if account is None else account
                statement = iam.PolicyStatement(
                    sid=sid,
                    actions=list(acts),
                    resources=[f"arn:{stack.partition}:kms:{region}:{account_id}:key/*"],
                    conditions={"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}},
                )
            else:
                [statement] = offsite_key_statements(
                    stack, region, acts, sid, service, account=account, alias=alias
                )
            if acts == GRANT:
                statement.add_conditions(GRANT_FOR_AWS)
            out.append(statement)
    return out


def target_copy_statements(
    stack: Stack, region: str, *, home_account: str, key_arn: str, staging_alias: str
) -> list[iam.PolicyStatement]:
    """The target account's side of the copy job (the role ``<prefix>-copy`` there): list its copies and
    its snapshot quota, copy the staging copies that the home account shared (same region) into ``sb-*``
    copies under its offsite key (``key_arn``), tag them only with the copy tags; use the staging key
    (``staging_alias`` in the home account) only through RDS and EC2 there. No deletion, no sharing."""
    rds, staged = rds_arn(stack, region), rds_arn(stack, region, home_account)
    ec2 = ec2_arn(stack, region)
    images, snapshots = f"{ec2}::image/*", f"{ec2}::snapshot/*"
    return [
        iam.PolicyStatement(
            sid="ListSnapshotCopies",
            actions=["rds:DescribeDBSnapshots"],
            resources=[f"{rds}:db:*", f"{rds}:snapshot:*"],
        ),
        iam.PolicyStatement(
            sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
        ),
        iam.PolicyStatement(
            sid="CopySharedStagingSnapshots",
            actions=["rds:CopyDBSnapshot"],
            resources=[f"{staged}:snapshot:{NAME_PREFIX}*", f"{rds}:snapshot:{NAME_PREFIX}*"],
        ),
        iam.PolicyStatement(
            sid="TagSnapshotCopiesOnCopy",
            actions=["rds:AddTagsToResource"],
            resources=[f"{rds}:snapshot:{NAME_PREFIX}*"],
            conditions=_copy_tag_conditions(JOB_RDS, on_create=True),
        ),
        iam.PolicyStatement(
            sid="FindImagesAndSnapshots",
            actions=["ec2:DescribeImages", "ec2:DescribeSnapshots"],
            resources=["*"],
        ),
        # The source (the shared staging image and its snapshots) and the copy are in the same region.
        iam.PolicyStatement(
            sid="CopySharedStagingImages", actions=["ec2:CopyImage"], resources=[images, snapshots]
        ),
        iam.PolicyStatement(
            sid="TagImageCopies",
            actions=["ec2:CreateTags"],
            resources=[images, snapshots],
            conditions=_copy_tag_conditions(JOB_AMI, on_create=True),
        ),
        *destination_key_statements(stack, region, "Offsite", key_arn=key_arn),
        *source_key_statements(stack, region, "SharedStaging", account=home_account, alias=staging_alias),
    ]


def target_copy_wildcards(region: str, home_account: str) -> dict[str, str]:
    """The reasons of :func:`target_copy_statements`' wildcards, as cdk-nag names them in the offsite
    stack (its account and region are literal there)."""
    rds = f"arn:<AWS::Partition>:rds:{region}:<AWS::AccountId>"
    ec2 = f"arn:<AWS::Partition>:ec2:{region}"
    listing = "Listing snapshots (read only) is checked on db:* and snapshot:*; the job keeps only sb-* ones."
    return {
        "*": "rds:DescribeAccountAttributes (the snapshot quota) and ec2:DescribeImages/DescribeSnapshots "
        "support no resource-level permissions.",
        f"{rds}:db:*": listing,
        f"{rds}:snapshot:*": listing,
        f"arn:<AWS::Partition>:rds:{region}:{home_account}:snapshot:{NAME_PREFIX}*": (
            "The home account's staging copies are named sb-<db>-<time> and shared with this account; only "
            "those are copied (CopyDBSnapshot only, nothing else on them)."
        ),
        f"{rds}:snapshot:{NAME_PREFIX}*": (
            "Copies keep the original's name sb-<db>-<time>; tags only as the schoolbackup tags plus CopiedFrom."
        ),
        f"{ec2}::image/*": (
            "Image ids of the shared staging images and of their copies are unknown before CopyImage; tags "
            "only as the schoolbackup tags plus CopiedFrom (aws:RequestTag and aws:TagKeys conditions)."
        ),
        f"{ec2}::snapshot/*": (
            "CopyImage checks the staging image's EBS snapshots, and the copy's snapshot ids are unknown "
            "before it; tags only as the schoolbackup tags plus CopiedFrom."
        ),
        f"arn:<AWS::Partition>:kms:{region}:{home_account}:key/*": (
            "The staging key is in the home account's staging stack; key/* is narrowed to it by "
            "kms:ResourceAliases and usable only through RDS and EC2 of this region, grants only for AWS "
            "resources."
        ),
    }


class OffsiteCopy(Construct):
    """``offsite_copy`` (daily, after rds_snapshot and ami_backup, before prune), ``{"scheduled_time": ...}``.

    Copies into another account (``settings.offsite.cross_account``): this function copies the originals
    into the offsite region of THIS account under the staging key (the staging copies, tagged
    ``OffsiteStage=staging``), shares them with the target account, assumes the role ``<prefix>-copy``
    there (which copies them, :func:`target_copy_statements`) and deletes the staging copies afterwards.
    """

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
        self.cross_account = settings.offsite.cross_account
        self.function = self._function(factory, schedules)

    def _rds(self, region: str) -> str:
        return rds_arn(self.stack, region)

    def _ec2(self, region: str) -> str:
        return ec2_arn(self.stack, region)

    def statements(self) -> list[iam.PolicyStatement]:
        home_rds, off_rds = self._rds(self.home), self._rds(self.offsite)
        home_ec2, off_ec2 = self._ec2(self.home), self._ec2(self.offsite)
        off_images, off_snapshots = f"{off_ec2}::image/*", f"{off_ec2}::snapshot/*"
        tag_keys = STAGING_TAG_KEYS if self.cross_account else COPY_TAG_KEYS
        if self.cross_account:  # the copies in this account's offsite region are the staging copies
            keys = destination_key_statements(
                self.stack, self.offsite, "Staging", alias=self.settings.offsite.staging_key_alias
            )
        else:
            keys = destination_key_statements(self.stack, self.offsite, "Offsite")
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
                conditions=_copy_tag_conditions(JOB_RDS, tag_keys, on_create=self.cross_account),
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
            # Tag-on-create of CopyImage (ec2:CreateTags with ec2:CreateAction=CopyImage) and, in the same
            # account, where those tags did not arrive, the same tags afterwards; into another account
            # only on create: the staging tag is what the staging cleanup's deletions trust.
            iam.PolicyStatement(
                sid="TagImageCopies",
                actions=["ec2:CreateTags"],
                resources=[off_images, off_snapshots],
                conditions=_copy_tag_conditions(JOB_AMI, tag_keys, on_create=self.cross_account),
            ),
            *keys,
            *source_key_statements(self.stack, self.home, "Original"),
            *(self._staging_statements(off_rds, off_images, off_snapshots) if self.cross_account else []),
        ]

    def _staging_statements(self, off_rds: str, images: str, snapshots: str) -> list[iam.PolicyStatement]:
        """Share the staging copies with the target account and delete them once copied there: only
        those tagged ``OffsiteStage=staging``; and assume the one role there that copies them."""
        rds_stage = {"StringEquals": {f"rds:snapshot-tag/{STAGE_KEY}": STAGE_STAGING}}
        ec2_stage = {"StringEquals": {f"ec2:ResourceTag/{STAGE_KEY}": STAGE_STAGING}}
        role_arn = self.settings.offsite.role_arn
        assert role_arn is not None, "a target account's settings name the role the copy job assumes"
        staged = f"{off_rds}:snapshot:{NAME_PREFIX}*"
        return [
            iam.PolicyStatement(
                sid="ShareStagingDbSnapshots",
                actions=["rds:ModifyDBSnapshotAttribute"],
                resources=[staged],
                conditions=rds_stage,
            ),
            iam.PolicyStatement(
                sid="DeleteStagingDbSnapshots",
                actions=["rds:DeleteDBSnapshot"],
                resources=[staged],
                conditions=rds_stage,
            ),
            iam.PolicyStatement(
                sid="ShareStagingImages",
                actions=["ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"],
                resources=[images, snapshots],
                conditions=ec2_stage,
            ),
            iam.PolicyStatement(
                sid="DeleteStagingImages",
                actions=["ec2:DeregisterImage", "ec2:DeleteSnapshot"],
                resources=[images, snapshots],
                conditions=ec2_stage,
            ),
            iam.PolicyStatement(sid="AssumeTargetCopyRole", actions=["sts:AssumeRole"], resources=[role_arn]),
        ]

    def _function(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        region = "<AWS::Region>"
        home_rds = f"arn:<AWS::Partition>:rds:{region}:<AWS::AccountId>"
        off_rds = f"arn:<AWS::Partition>:rds:{self.offsite}:<AWS::AccountId>"
        off_ec2 = f"arn:<AWS::Partition>:ec2:{self.offsite}"
        listing = (
            "Listing snapshots (read only) is checked on db:* and snapshot:*; the job keeps only sb-* ones."
        )
        staging = (
            " Sharing and deleting only staging copies (ec2:ResourceTag/OffsiteStage=staging)."
            if self.cross_account
            else ""
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
                    "plus CopiedFrom"
                    + (
                        " (and OffsiteStage); sharing and deleting only staging copies (tagged "
                        "OffsiteStage=staging)."
                        if self.cross_account
                        else "."
                    )
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
                    "CopiedFrom (aws:RequestTag and aws:TagKeys conditions)." + staging
                ),
                f"{off_ec2}::snapshot/*": (
                    "The copy's EBS snapshot ids are unknown before CopyImage; tags only as the schoolbackup tags "
                    "plus CopiedFrom (aws:RequestTag and aws:TagKeys conditions)." + staging
                ),
                f"arn:<AWS::Partition>:kms:{self.offsite}:<AWS::AccountId>:key/*": (
                    "The staging key lives in the staging stack; key/* is narrowed to it by kms:ResourceAliases "
                    "(alias/schoolbackup-offsite-staging) and usable only through RDS and EC2 of the offsite region."
                    if self.cross_account
                    else "The offsite key lives in the offsite stack; key/* is narrowed to it by kms:ResourceAliases "
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
