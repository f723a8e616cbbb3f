"""Offsite copies: the second stack in the offsite region (the copy bucket and the offsite key), and the
names by which home-stack roles reach them.

The offsite region is another region of the SAME account and its names are deterministic (the bucket is
``offsite_bucket_name(account, region)``, the key has the alias ``OFFSITE_KEY_ALIAS``), so the home stack
names them without any cross-region reference: it deploys after the offsite stack (``add_dependency``).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from lambdas.common.contracts import OFFSITE_KEY_ALIAS, offsite_bucket_name


def offsite_bucket_arn(stack: Stack, region: str) -> str:
    """The copy bucket's ARN, ``arn:<partition>:s3:::schoolbackup-offsite-<account>-<region>``."""
    return f"arn:{stack.partition}:s3:::{offsite_bucket_name(stack.account, region)}"


def offsite_key_arn_pattern(stack: Stack, region: str) -> str:
    """Every key of this account in ``region``: ``arn:<partition>:kms:<region>:<account>:key/*``. Only
    with the alias condition of :func:`offsite_key_statements` does it mean the offsite key."""
    return f"arn:{stack.partition}:kms:{region}:{stack.account}:key/*"


def offsite_alias_arn(stack: Stack, region: str) -> str:
    """The offsite key's alias as an ARN (what S3 replication accepts as the replica key)."""
    return f"arn:{stack.partition}:kms:{region}:{stack.account}:{OFFSITE_KEY_ALIAS}"


def offsite_key_statements(
    stack: Stack,
    region: str,
    actions: Sequence[str],
    sid: str,
    via_service: str | None = None,
) -> list[iam.PolicyStatement]:
    """``actions`` on the offsite key, for a role of the home stack.

    The key lives in another stack, so it is named as ``key/*`` in the offsite region, narrowed to the
    one key whose alias is ``alias/schoolbackup-offsite`` (``kms:ResourceAliases``). With
    ``via_service`` (e.g. ``"s3"``, ``"rds"``, ``"ec2"``) the key is usable only through that service
    in the offsite region (``kms:ViaService <service>.<region>.amazonaws.com``); a full endpoint
    name (``"s3.eu-central-1.amazonaws.com"``) is taken as given.
    """
    conditions: dict[str, dict[str, str]] = {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": OFFSITE_KEY_ALIAS},
    }
    if via_service is not None:
        endpoint = via_service if "." in via_service else f"{via_service}.{region}.amazonaws.com"
        conditions["StringEquals"] = {"kms:ViaService": endpoint}
    return [
        iam.PolicyStatement(
            sid=sid,
            actions=list(actions),
            resources=[offsite_key_arn_pattern(stack, region)],
            conditions=conditions,
        )
    ]
