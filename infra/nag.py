"""cdk-nag (AwsSolutions) on every synth; acknowledgements always carry a written reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct


def enable_nag(app: Construct) -> None:
    """Register the AwsSolutions pack: an unacknowledged finding fails synth and Template.from_stack."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one rule (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct`` and its children."""
    if len(reason) < 40:
        raise ValueError(
            f"nag acknowledgement {rule_id} needs a reason a reviewer would accept, got {reason!r}"
        )
    for found in _as_named(construct, rule_id):
        Validations.of(construct).acknowledge(Acknowledgment(id=found, reason=reason))


ACCOUNT_ID = "<AWS::AccountId>"


def _as_named(construct: IConstruct, rule_id: str) -> list[str]:
    """``rule_id`` and, in a stack pinned to an account, the same with that account's id for
    ``<AWS::AccountId>``: cdk-nag names the account as the stack has it (the pseudo parameter, or the
    literal id when the stack's environment names one, e.g. the stacks of copies into another account)."""
    if ACCOUNT_ID not in rule_id:
        return [rule_id]
    account = Stack.of(construct).account
    if Token.is_unresolved(account):
        return [rule_id]
    return [rule_id, rule_id.replace(ACCOUNT_ID, account)]
