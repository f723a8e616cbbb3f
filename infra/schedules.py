"""EventBridge Scheduler schedules for every job: configured timezone, retries, and a shared DLQ.

Each schedule gets its own role that may invoke only its own target. An invocation that still fails
after the retries lands in the encrypted dead-letter queue, and a non-empty queue raises an alarm.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import Config
from infra.nag import acknowledge
from lambdas.common.contracts import job_resource_name
from lambdas.common.messages import say

SCHEDULED_TIME: Final = "<aws.scheduler.scheduled-time>"
MAX_RETRIES: Final = 3
MAX_EVENT_AGE: Final = Duration.hours(2)


class JobSchedules(Construct):
    """Creates the schedules; ``dead_letter_queue`` and ``dlq_alarm`` are shared by all of them."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, key: kms.IKey, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.key = key
        self.schedule_group_arn = Stack.of(self).format_arn(
            service="scheduler", resource="schedule-group", resource_name="default"
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the EventBridge Scheduler schedules; "
            "nothing consumes it, an alarm fires as soon as it holds a message.",
        )
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueNotEmpty",
            alarm_name=f"{Stack.of(self).stack_name}-schedule-dead-letters",
            alarm_description=say("alarm.schedule-dead-letters", config.language),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dlq_alarm.add_alarm_action(cw_actions.SnsAction(topic))
        self.schedules: dict[str, scheduler.CfnSchedule] = {}

    def _role(self, job: str, statements: list[iam.PolicyStatement]) -> iam.Role:
        role = iam.Role(
            self,
            f"{job}-role",
            # Confused deputy: only schedules of this account's default group may use the role.
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnEquals": {"aws:SourceArn": self.schedule_group_arn},
                },
            ),
            description=f"EventBridge Scheduler: start the schoolbackup {job} job, nothing else",
        )
        for statement in statements:
            role.add_to_policy(statement)
        # Explicit instead of grant_send_messages(), which adds kms:GenerateDataKey* and kms:ReEncrypt*.
        role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )
        return role

    def _schedule(
        self,
        job: str,
        target_arn: str,
        role: iam.Role,
        payload: dict[str, Any],
        expression: str | None = None,
    ) -> scheduler.CfnSchedule:
        schedule = scheduler.CfnSchedule(
            self,
            job,
            name=job_resource_name(Stack.of(self).stack_name, job),
            description=f"schoolbackup {job}",
            schedule_expression=expression or self.config.schedules[job],
            schedule_expression_timezone=self.config.timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=target_arn,
                role_arn=role.role_arn,
                input=json.dumps(payload),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=MAX_RETRIES,
                    maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.dead_letter_queue.queue_arn
                ),
            ),
        )
        schedule.node.add_dependency(role)
        self.schedules[job] = schedule
        return schedule

    def lambda_job(
        self,
        job: str,
        function: lambda_.IFunction,
        extra_input: dict[str, Any] | None = None,
        expression: str | None = None,
    ) -> scheduler.CfnSchedule:
        """Invoke ``function`` on the configured schedule (or ``expression``) with ``{"scheduled_time": ...}``."""
        role = self._role(
            job,
            [iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])],
        )
        return self._schedule(
            job,
            function.function_arn,
            role,
            {"scheduled_time": SCHEDULED_TIME, **(extra_input or {})},
            expression,
        )

    def state_machine_job(self, job: str, state_machine_arn: str) -> scheduler.CfnSchedule:
        """Start an execution of the state machine on the configured schedule, ``{"scheduled_time": ...}``."""
        role = self._role(
            job, [iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn])]
        )
        return self._schedule(job, state_machine_arn, role, {"scheduled_time": SCHEDULED_TIME})

    def sdk_job(
        self, job: str, service_action: str, payload: dict[str, Any], statements: list[iam.PolicyStatement]
    ) -> scheduler.CfnSchedule:
        """Call an AWS API through the Scheduler's universal target, e.g. ``ssm:sendCommand``."""
        service, action = service_action.split(":")
        target_arn = f"arn:{Stack.of(self).partition}:scheduler:::aws-sdk:{service}:{action}"
        return self._schedule(job, target_arn, self._role(job, statements), payload)
