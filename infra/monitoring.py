"""The one alarm topic: KMS-encrypted, TLS-only, every configured address subscribed."""

from __future__ import annotations

from aws_cdk import CfnOutput
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct


class AlarmTopic(Construct):
    """Every alarm and the weekly health message (when SES is not configured) go to this topic."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, emails: tuple[str, ...]
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="schoolbackup alarms",
            master_key=key,
            enforce_ssl=True,
        )
        for address in emails:
            self.topic.add_subscription(subs.EmailSubscription(address))
        # CloudWatch alarms and EventBridge publish to the encrypted topic: they need the key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic.grant_publish(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        CfnOutput(
            self, "AlarmTopicArn", value=self.topic.topic_arn, description="Alarms are mailed from here"
        )
