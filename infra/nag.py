"""cdk-nag (AwsSolutions) on every synth; acknowledgements always carry a written reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
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
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))
