"""cdk-nag runs on every synth: an unacknowledged finding fails it, an acknowledged one needs a reason."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from infra.nag import acknowledge, enable_nag


def _stack_with_plain_queue(ack: bool) -> cdk.Stack:
    app = cdk.App()
    stack = cdk.Stack(app, "NagProbe")
    queue = sqs.Queue(stack, "Plain", enforce_ssl=True, encryption=sqs.QueueEncryption.KMS_MANAGED)
    if ack:
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "A probe queue in a test; it only exists to show acknowledgements work.",
        )
    enable_nag(app)
    return stack


def test_unacknowledged_nag_finding_fails_synth() -> None:
    with pytest.raises(Exception, match=r"(?s)ValidationFailed.*AwsSolutions-SQS3"):
        Template.from_stack(_stack_with_plain_queue(ack=False))


def test_acknowledged_finding_passes() -> None:
    template = Template.from_stack(_stack_with_plain_queue(ack=True))
    assert len(template.find_resources("AWS::SQS::Queue")) == 1


def test_acknowledgement_without_a_real_reason_is_refused() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "NagReason")
    with pytest.raises(ValueError, match="needs a reason"):
        acknowledge(stack, "AwsSolutions-SQS3", "ok")


def test_full_stack_has_no_unacknowledged_findings(template: Template) -> None:
    # The session template was built with nag enabled; building it at all proves zero open findings.
    assert template.to_json()["Resources"]


def test_a_dependency_cycle_fails_synth_instead_of_the_deploy() -> None:
    """cdk.json turns on CDK's template validation: a key policy naming the topic the key encrypts is
    a cycle CloudFormation would refuse at deploy time; synth refuses it already."""
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_sns as sns

    from tests.infra.conftest import cdk_context

    app = cdk.App(context=cdk_context())
    stack = cdk.Stack(app, "CycleProbe")
    key = kms.Key(stack, "Key")
    topic = sns.Topic(stack, "Topic", master_key=key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            principals=[iam.AccountRootPrincipal()],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceArn": topic.topic_arn}},
        )
    )
    with pytest.raises(Exception, match=r"(?s)ValidationFailed"):
        app.synth()
