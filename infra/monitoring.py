"""The one alarm topic: KMS-encrypted, TLS-only, every configured address subscribed."""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, CfnOutput, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

from lambdas.common.contracts import alarm_topic_name


class AlarmTopic(Construct):
    """Every alarm and the weekly health message (when SES is not configured) go to this topic."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, emails: tuple[str, ...]
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=alarm_topic_name(Stack.of(self).stack_name),
            display_name="schoolbackup alarms",
            master_key=key,
            enforce_ssl=True,
        )
        for address in emails:
            self.topic.add_subscription(subs.EmailSubscription(address))
        self.key = key
        stack = Stack.of(self)
        # CloudWatch alarms publish through the topic's policy and use the key through its policy, but
        # only for alarms of this account (confused deputy: aws:SourceAccount and aws:SourceArn).
        self.allow_service(
            "cloudwatch.amazonaws.com",
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name="*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
        )
        CfnOutput(
            self, "AlarmTopicArn", value=self.topic.topic_arn, description="Alarms are mailed from here"
        )

    def allow_service(self, service: str, source_arn: str) -> None:
        """Let ``service`` publish to the topic (and use the key for it) when it acts for a resource of
        this account matching ``source_arn``; a service acting for another account is denied."""
        conditions = {
            "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
            "ArnLike": {"aws:SourceArn": source_arn},
        }
        principal = iam.ServicePrincipal(service)
        sid = "Allow" + "".join(w.capitalize() for w in service.split(".", maxsplit=1)[0].split("-"))
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{sid}Publish",
                actions=["sns:Publish"],
                principals=[principal],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{sid}UseForAlarmTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[principal],
                resources=["*"],
                conditions=conditions,
            )
        )

    def rule_target(self, rule_name: str, message: events.RuleTargetInput) -> events.IRuleTarget:
        """A target for the EventBridge rule named ``rule_name`` that publishes ``message`` to the topic;
        the topic and key grant EventBridge for that rule only (CDK's SnsTopic target would grant
        EventBridge acting for any rule of any account). The rule's ARN is built from its name: a
        reference to the rule in the key policy would be a cycle (key -> rule -> topic -> key)."""
        rule_arn = Stack.of(self).format_arn(service="events", resource="rule", resource_name=rule_name)
        return _TopicTarget(self, rule_arn, message)


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    def __init__(self, alarms: AlarmTopic, rule_arn: str, message: events.RuleTargetInput) -> None:
        self.alarms = alarms
        self.rule_arn = rule_arn
        self.message = message

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        self.alarms.allow_service("events.amazonaws.com", self.rule_arn)
        return events.RuleTargetConfig(arn=self.alarms.topic.topic_arn, input=self.message)
