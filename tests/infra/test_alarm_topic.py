"""The alarm topic: KMS-encrypted, TLS-only, every configured address subscribed."""

from __future__ import annotations

from aws_cdk.assertions import Template

from tests.infra.conftest import resources_of, synth


def test_topic_is_encrypted_with_the_customer_managed_key(template: Template) -> None:
    topics = resources_of(template, "AWS::SNS::Topic")
    assert len(topics) == 1
    key_ref = next(iter(topics.values()))["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert key_ref in resources_of(template, "AWS::KMS::Key")


def test_topic_denies_publishing_without_tls(template: Template) -> None:
    policies = resources_of(template, "AWS::SNS::TopicPolicy")
    statements = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_every_configured_address_is_subscribed() -> None:
    addresses = ["admin@school-a.ch", "deputy@school-a.ch", "head@school-a.ch"]
    template = synth({"notification_emails": addresses})
    subscriptions = resources_of(template, "AWS::SNS::Subscription").values()
    assert sorted(
        s["Properties"]["Endpoint"] for s in subscriptions if s["Properties"]["Protocol"] == "email"
    ) == (sorted(addresses))


def test_dead_letter_alarm_mails_the_topic(template: Template) -> None:
    topic_id = next(iter(resources_of(template, "AWS::SNS::Topic")))
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    dlq = [
        a
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(dlq) == 1
    props = dlq[0]["Properties"]
    assert props["AlarmActions"] == [{"Ref": topic_id}]
    assert props["Threshold"] == 0
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
