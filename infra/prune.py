"""The prune function, its daily schedule and its least-privilege role.

What the role may do (IAM service authorization reference, EC2 and RDS):
- List: ``ec2:DescribeImages``/``ec2:DescribeSnapshots`` support no resource-level permissions (``*``);
  ``rds:DescribeDBSnapshots`` on instances and snapshots of this account and region (read only);
  ``rds:DescribeAccountAttributes`` (the manual-snapshot quota) is account-wide (``*``).
- Delete: ``ec2:DeregisterImage`` and ``ec2:DeleteSnapshot`` only on resources tagged
  ``ManagedBy=schoolbackup`` (``aws:ResourceTag``); ``rds:DeleteDBSnapshot`` only on snapshots named
  ``sb-*`` *and* tagged ``ManagedBy=schoolbackup`` (``rds:snapshot-tag``). Even a bug in prune cannot
  delete the school's own images or snapshots.
- Offsite (only with offsite copies of rds and/or ami): the same deletions, under the same conditions,
  on the ARNs of the offsite region, for the copied kinds only (the copies keep the originals' tags); the
  listings above are ``*`` or named per region below.
- Copies in another account (``offsite.account``): none of the offsite statements here; instead only
  ``sts:AssumeRole`` on that account's role ``<prefix>-prune``, which has them there
  (:func:`target_prune_statements`, built in the offsite stack).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.functions import FunctionFactory
from infra.job_settings import JobSettings
from infra.schedules import JobSchedules
from lambdas.common.contracts import (
    KIND_AMI,
    KIND_RDS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    PRUNED_KINDS,
)

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
        offsite = settings.prune.offsite
        # what prune handles there (lambdas.common.jobs.prune.offsite_kinds): the copied kinds
        kinds = tuple(k for k in PRUNED_KINDS if offsite is not None and offsite.copies(k))
        statements, wildcards = self._statements(), dict(WILDCARD_REASONS)
        if offsite is not None and kinds and offsite.role_arn is not None:
            # copies in another account: the deletions there are the role <prefix>-prune's
            statements.append(
                iam.PolicyStatement(
                    sid="AssumeTargetPruneRole", actions=["sts:AssumeRole"], resources=[offsite.role_arn]
                )
            )
        elif offsite is not None and kinds:
            statements += self._offsite_statements(offsite.region, kinds)
            wildcards |= offsite_wildcard_reasons(offsite.region, kinds)
        self.function = factory.job(
            JOB,
            description="apply the retention policy to AMIs (+ their EBS snapshots) and RDS snapshots",
            environment=settings.prune.to_env(),
            statements=statements,
            wildcards=wildcards,
            schedules=schedules,
            timeout=TIMEOUT,
        )

    def _offsite_statements(self, region: str, kinds: tuple[str, ...]) -> list[iam.PolicyStatement]:
        """The home deletions' twins in the offsite region, for the copied kinds (ids differ per region:
        a copy is a new image or snapshot there)."""
        return offsite_statements(Stack.of(self), region, kinds)

    def _statements(self) -> list[iam.PolicyStatement]:
        stack = Stack.of(self)
        return [
            iam.PolicyStatement(
                sid="ListImagesAndSnapshots",
                actions=["ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
            ),
            *_deletions(stack, stack.region, PRUNED_KINDS, where=""),
        ]


def offsite_statements(stack: Stack, region: str, kinds: tuple[str, ...]) -> list[iam.PolicyStatement]:
    """Prune's deletions in the offsite region of ``stack``'s account, for the copied ``kinds``: the home
    deletions' twins, under the same conditions (the copies keep the originals' tags)."""
    return _deletions(stack, region, kinds, where="Offsite")


def target_prune_statements(stack: Stack, region: str, kinds: tuple[str, ...]) -> list[iam.PolicyStatement]:
    """The role ``<prefix>-prune`` of the target account (in its offsite stack): what prune does in the
    offsite region there, for the copied ``kinds``: list (``*``: no resource-level permissions) and read
    the snapshot quota, then :func:`offsite_statements` in that account."""
    listings: list[iam.PolicyStatement] = []
    if KIND_AMI in kinds:
        listings.append(
            iam.PolicyStatement(
                sid="ListImagesAndSnapshots",
                actions=["ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            )
        )
    if KIND_RDS in kinds:
        listings.append(
            iam.PolicyStatement(
                sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
            )
        )
    return [*listings, *offsite_statements(stack, region, kinds)]


def _deletions(stack: Stack, region: str, kinds: tuple[str, ...], *, where: str) -> list[iam.PolicyStatement]:
    """Deleting schoolbackup's AMIs (+ EBS snapshots) and listing and deleting its RDS snapshots in
    ``region``, for ``kinds``; ``where`` ("" at home, "Offsite") is
    part of each statement's Sid."""
    ec2_arn = f"arn:{stack.partition}:ec2:{region}"
    rds_arn = f"arn:{stack.partition}:rds:{region}:{stack.account}"
    out: list[iam.PolicyStatement] = []
    if KIND_AMI in kinds:
        out += [
            iam.PolicyStatement(
                sid=f"DeregisterOwn{where}Images",
                actions=["ec2:DeregisterImage"],
                resources=[f"{ec2_arn}::image/*"],
                conditions=_MANAGED,
            ),
            iam.PolicyStatement(
                sid=f"DeleteOwn{where}EbsSnapshots",
                actions=["ec2:DeleteSnapshot"],
                resources=[f"{ec2_arn}::snapshot/*"],
                conditions=_MANAGED,
            ),
        ]
    if KIND_RDS in kinds:
        out += [
            iam.PolicyStatement(
                sid=f"List{where}DbSnapshots",
                actions=["rds:DescribeDBSnapshots"],
                resources=[f"{rds_arn}:db:*", f"{rds_arn}:snapshot:*"],
            ),
            iam.PolicyStatement(
                sid=f"DeleteOwn{where}DbSnapshots",
                actions=["rds:DeleteDBSnapshot"],
                resources=[f"{rds_arn}:snapshot:{NAME_PREFIX}*"],
                conditions=_RDS_MANAGED,
            ),
        ]
    return out


_MANAGED: Final = {"StringEquals": {f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}
_RDS_MANAGED: Final = {"StringEquals": {f"rds:snapshot-tag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}


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


def offsite_wildcard_reasons(
    region: str, kinds: tuple[str, ...], *, listings: bool = False
) -> dict[str, str]:
    """The reasons of the offsite statements' wildcards (the same as at home, in ``region``); with
    ``listings`` also of the ``*`` listings (:func:`target_prune_statements`)."""
    home = "<AWS::Region>"
    mapped = {key.replace(home, region): reason for key, reason in WILDCARD_REASONS.items() if home in key}
    wanted = [":ec2:"] * (KIND_AMI in kinds) + [":rds:"] * (KIND_RDS in kinds)
    reasons = {
        key: f"In the offsite region (the copies): {reason}"
        for key, reason in mapped.items()
        if any(w in key for w in wanted)
    }
    if listings:
        reasons["*"] = WILDCARD_REASONS["*"]
    return reasons
