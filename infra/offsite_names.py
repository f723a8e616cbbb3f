"""The names by which roles reach the offsite copies: the copy bucket, the offsite key and (copies into
another account) the staging key, as ARNs of the account they are in.

No construct here: the home stack's constructs, the offsite stack and the roles in the target account all
build their statements with these, so the offsite stack (infra.offsite) can use the statement builders of
infra.prune, infra.health and infra.offsite_copy without an import cycle.

``account`` is where the resource is: None means the stack's own account (the offsite region of the same
account, as before copies into another account existed).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from lambdas.common.contracts import OFFSITE_KEY_ALIAS, offsite_bucket_name


def _account(stack: Stack, account: str | None) -> str:
    return stack.account if account is None else account


def offsite_bucket_arn(stack: Stack, region: str, account: str | None = None) -> str:
    """The copy bucket's ARN, ``arn:<partition>:s3:::schoolbackup-offsite-<account>-<region>``."""
    return f"arn:{stack.partition}:s3:::{offsite_bucket_name(_account(stack, account), region)}"


def offsite_key_arn_pattern(stack: Stack, region: str, account: str | None = None) -> str:
    """Every key of ``account`` in ``region``: ``arn:<partition>:kms:<region>:<account>:key/*``. Only
    with the alias condition of :func:`offsite_key_statements` does it mean one key."""
    return f"arn:{stack.partition}:kms:{region}:{_account(stack, account)}:key/*"


def offsite_alias_arn(
    stack: Stack, region: str, account: str | None = None, alias: str = OFFSITE_KEY_ALIAS
) -> str:
    """A key's alias as an ARN (what S3 replication accepts as the replica key)."""
    return f"arn:{stack.partition}:kms:{region}:{_account(stack, account)}:{alias}"


def via(service: str, region: str) -> str:
    """``kms:ViaService`` of ``service`` in ``region`` (``"s3"`` -> ``s3.<region>.amazonaws.com``); a full
    endpoint name (``"s3.eu-central-1.amazonaws.com"``) is taken as given."""
    return service if "." in service else f"{service}.{region}.amazonaws.com"


def offsite_key_statements(
    stack: Stack,
    region: str,
    actions: Sequence[str],
    sid: str,
    via_service: str | None = None,
    *,
    account: str | None = None,
    alias: str = OFFSITE_KEY_ALIAS,
    key_arn: str | None = None,
) -> list[iam.PolicyStatement]:
    """``actions`` on the offsite key (or, with ``alias``, another key of schoolbackup).

    A key of another stack is named as ``key/*`` of ``account`` in ``region``, narrowed to the one key
    whose alias is ``alias`` (``kms:ResourceAliases``). ``key_arn``: the key is in the caller's own stack,
    named by its ARN (no alias condition). With ``via_service`` (e.g. ``"s3"``, ``"rds"``, ``"ec2"``)
    the key is usable only through that service in ``region`` (``kms:ViaService``).
    """
    conditions: dict[str, dict[str, str]] = {}
    if key_arn is None:
        conditions["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": alias}
    if via_service is not None:
        conditions["StringEquals"] = {"kms:ViaService": via(via_service, region)}
    return [
        iam.PolicyStatement(
            sid=sid,
            actions=list(actions),
            resources=[key_arn if key_arn is not None else offsite_key_arn_pattern(stack, region, account)],
            conditions=conditions or None,
        )
    ]
