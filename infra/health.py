"""Knowing that backups work: verify (daily), restore_test and report (weekly), the alarms and a dashboard.

Every alarm goes to the one SNS topic and tells the admin in its description what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import Config
from infra.functions import FunctionFactory
from infra.nag import acknowledge
from infra.prune import retention_environment
from infra.schedules import JobSchedules
from lambdas.common import metric_names as m
from lambdas.common.naming import DUMP_PREFIX
from lambdas.restore_test.restore import RECORD_PREFIX

QUOTA_ALARM_PERCENT: Final = 80
DESCRIBE_ONLY: Final = "EC2 and RDS Describe* calls cannot be limited to resources; these roles only read, never change anything."


class Health(Construct):
    """``functions`` are the functions whose errors raise an alarm (the three here plus those passed in)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        factory: FunctionFactory,
        schedules: JobSchedules,
        bucket: s3.IBucket,
        key: kms.IKey,
        topic: sns.ITopic,
        functions: Sequence[lambda_.IFunction] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.prefix = f"{stack.stack_name}-"
        self.topic = topic
        t = config.targets
        checks_env = {
            "BACKUP_BUCKET": bucket.bucket_name,
            "SELECTION_TAG": config.selection.tag,
            "EC2_INSTANCE_IDS": ",".join(config.selection.ec2_instance_ids),
            "RDS_INSTANCE_IDS": ",".join(config.selection.rds_instance_ids),
            "DUMP_ENABLED": "true" if config.dump.enabled else "false",
            "DUMP_MAX_AGE_HOURS": str(t.dump_max_age_hours),
            "RDS_MAX_AGE_HOURS": str(t.rds_max_age_hours),
            "AMI_MAX_AGE_HOURS": str(t.ami_max_age_hours),
            # verify checks that prune removed what the policy no longer keeps (DESIGN.md's table)
            **retention_environment(config),
        }
        self.verify = factory.function(
            "verify", description="daily freshness and integrity of every backup", environment=checks_env
        )
        self.restore_test = factory.function(
            "restore_test",
            description="weekly spot restore of a dump: checksums and content",
            environment={"BACKUP_BUCKET": bucket.bucket_name, "RESTORE_TEST_PICK": "newest"},
            timeout=Duration.minutes(15),
            memory_mb=1024,
        )
        self.report = factory.function(
            "report",
            description="weekly health mail",
            environment={
                **checks_env,
                "LANGUAGE": config.language,
                "SES_SENDER": config.ses_sender or "",
                "NOTIFICATION_EMAILS": ",".join(config.notification_emails),
                "ALARM_TOPIC_ARN": topic.topic_arn,
                "ALARM_PREFIX": self.prefix,
            },
            timeout=Duration.minutes(5),
        )
        self._grant(config, bucket, key, topic)
        schedules.lambda_job("verify", self.verify)
        schedules.lambda_job("restore_test", self.restore_test)
        schedules.lambda_job("report", self.report)

        self.alarms: list[cw.Alarm] = []
        for fn in (*functions, self.verify, self.restore_test, self.report):
            self._function_error_alarm(fn)
        self._age_alarms(config)
        self._alarm(
            "RestoreTestFailed",
            cw.Metric(
                namespace=m.NAMESPACE,
                metric_name=m.RESTORE_TEST_PASSED,
                statistic="Minimum",
                period=Duration.days(1),
            ),
            threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=(
                "The weekly restore test found a dump that could not be restored (checksum mismatch, truncated "
                "or unreadable file). Read the record under reports/restore-tests/ in the backup bucket, then "
                "make a fresh dump (Systems Manager > Run Command > the schoolbackup dump document) and run the "
                "restore_test function again (Lambda console > Test with the event {}) to check it."
            ),
        )
        self._alarm(
            "VerificationFailed",
            cw.Metric(
                namespace=m.NAMESPACE,
                metric_name=m.VERIFY_FAILURES,
                statistic="Maximum",
                period=Duration.days(1),
            ),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=(
                "The daily backup check found a missing, stale or damaged backup. Open the verify function's "
                "log in CloudWatch: each problem names the server or database and what is wrong."
            ),
        )
        self._alarm(
            "RdsSnapshotQuota",
            cw.Metric(
                namespace=m.NAMESPACE,
                metric_name=m.RDS_SNAPSHOTS_PERCENT,
                statistic="Maximum",
                period=Duration.days(1),
            ),
            threshold=QUOTA_ALARM_PERCENT,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=(
                f"More than {QUOTA_ALARM_PERCENT} % of the RDS manual snapshot quota is used; when it is full, "
                "no database snapshot can be made. Check that the prune job runs, delete old manual snapshots "
                "that schoolbackup did not make, or ask AWS (Service Quotas) for a higher limit."
            ),
        )
        self.dashboard = self._dashboard(functions)

    # --- permissions ------------------------------------------------------------------------------

    def _grant(self, config: Config, bucket: s3.IBucket, key: kms.IKey, topic: sns.ITopic) -> None:
        dumps, reports = f"{DUMP_PREFIX}/", f"{RECORD_PREFIX}/"
        describe = iam.PolicyStatement(
            actions=[
                "ec2:DescribeInstances",
                "ec2:DescribeImages",
                "ec2:DescribeSnapshots",
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
            ],
            resources=["*"],
        )
        # Read access follows the code: restore_test lists and reads dumps only (it writes its record, below,
        # but never reads one back); report also lists and reads the restore-test records.
        for fn, prefixes in (
            (self.verify, [dumps]),
            (self.restore_test, [dumps]),
            (self.report, [dumps, reports]),
        ):
            role = fn.role
            assert role is not None
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes]
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn])
            )
            acknowledge(
                role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::<StorageBackupBucketF1474890.Arn>/dumps/*]",
                "Reads every dump object under dumps/ to check or restore it; nothing else in the bucket.",
            )
        for fn in (self.verify, self.report):
            assert fn.role is not None
            fn.role.add_to_principal_policy(describe)
            acknowledge(
                fn.role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                DESCRIBE_ONLY + " report also reads alarm history.",
            )
        for fn, reason in (
            (self.restore_test, "restore_test writes one record file per run under reports/restore-tests/."),
            (
                self.report,
                "report reads the restore-test records (one file per run) under reports/restore-tests/.",
            ),
        ):
            assert fn.role is not None
            acknowledge(
                fn.role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::<StorageBackupBucketF1474890.Arn>/reports/restore-tests/*]",
                reason,
            )
        assert self.restore_test.role is not None
        self.restore_test.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{RECORD_PREFIX}/*")]
            )
        )
        self.restore_test.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[key.key_arn])
        )
        role = self.report.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudwatch:GetMetricData",
                    "cloudwatch:DescribeAlarmHistory",
                    "rds:DescribeAccountAttributes",
                ],
                resources=["*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[key.key_arn])
        )
        if config.ses_sender:
            stack = Stack.of(self)
            domain = config.ses_sender.rsplit("@", 1)[1]
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["ses:SendEmail"],
                    resources=[
                        stack.format_arn(service="ses", resource="identity", resource_name=config.ses_sender),
                        stack.format_arn(service="ses", resource="identity", resource_name=domain),
                    ],
                )
            )

    # --- alarms -----------------------------------------------------------------------------------

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        comparison: cw.ComparisonOperator,
        missing: cw.TreatMissingData,
        description: str,
        periods: int = 1,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            name,
            alarm_name=f"{self.prefix}{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def _function_error_alarm(self, fn: lambda_.IFunction) -> None:
        job = fn.node.scope.node.id if fn.node.scope is not None else fn.node.id
        self._alarm(
            f"{job}-errors",
            fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=(
                f"The schoolbackup job {job} failed. Open its log group in CloudWatch (the error names what went "
                f"wrong and which server or database), fix the cause, then run it again from the Lambda console: "
                'Test with the event {"scheduled_time": "<the missed run, e.g. 2026-11-27T02:30:00Z>"} repeats '
                "that run and never creates a backup twice."
            ),
        )

    def _age_alarms(self, config: Config) -> None:
        targets = {
            m.KIND_DUMP: config.targets.dump_max_age_hours,
            m.KIND_RDS: config.targets.rds_max_age_hours,
            m.KIND_AMI: config.targets.ami_max_age_hours,
        }
        what = {
            m.KIND_DUMP: "files and database dump",
            m.KIND_RDS: "database snapshot",
            m.KIND_AMI: "server image (AMI)",
        }
        stack_name = Stack.of(self).stack_name
        lambda_rerun = "Check the log of the job that makes it, then run that job again from the Lambda console (Test with {})."
        rerun = {
            m.KIND_DUMP: (
                "The dump runs on the server through Systems Manager: open Systems "
                "Manager, Run Command, Command history, and the last run of the schoolbackup dump document; its "
                f"output is in the CloudWatch log group /schoolbackup/{stack_name}/dump and its last line names the "
                "failed step. After fixing the cause, run the document again (Run command, target the server, "
                "leave ScheduledTime empty)."
            ),
            m.KIND_RDS: lambda_rerun,
            m.KIND_AMI: lambda_rerun,
        }
        for kind, hours in targets.items():
            if kind == m.KIND_DUMP and not config.dump.enabled:
                continue
            self._alarm(
                f"{kind}-backup-age",
                cw.Metric(
                    namespace=m.NAMESPACE,
                    metric_name=m.WORST_BACKUP_AGE_HOURS,
                    dimensions_map={m.KIND: kind},
                    statistic="Maximum",
                    period=Duration.days(1),
                ),
                threshold=hours,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                missing=cw.TreatMissingData.BREACHING,
                # verify publishes once a day. Two daily periods, both breaching, so that the minutes
                # around a run (yesterday's point just out of the window, today's not yet in) can never
                # raise a false alarm; a stale backup is also reported at once by VerificationFailed.
                periods=2,
                description=(
                    f"The newest good {what[kind]} of some server or database is older than {hours} hours, or the "
                    "daily check did not run for two days. The verify function's log names which one. "
                    + rerun[kind]
                ),
            )

    # --- dashboard --------------------------------------------------------------------------------

    def _dashboard(self, functions: Sequence[lambda_.IFunction]) -> cw.Dashboard:
        stack = Stack.of(self)
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{stack.stack_name}-health")
        age = cw.GraphWidget(
            title="Age of the newest good backup per source (hours)",
            width=24,
            left=[
                cw.MathExpression(
                    expression=(
                        f"SEARCH('{{{m.NAMESPACE},{m.SOURCE},{m.KIND}}} MetricName=\"{m.BACKUP_AGE_HOURS}\"', "
                        "'Maximum', 86400)"
                    ),
                    label="",
                    period=Duration.days(1),
                )
            ],
        )
        outcomes = cw.GraphWidget(
            title="Job outcomes",
            width=12,
            left=[
                cw.Metric(
                    namespace=m.NAMESPACE,
                    metric_name=m.VERIFY_FAILURES,
                    statistic="Maximum",
                    period=Duration.days(1),
                    label="verification failures",
                ),
                cw.Metric(
                    namespace=m.NAMESPACE,
                    metric_name=m.RESTORE_TEST_PASSED,
                    statistic="Minimum",
                    period=Duration.days(1),
                    label="restore test passed",
                ),
                *[
                    fn.metric_errors(
                        period=Duration.days(1),
                        statistic="Sum",
                        label=f"{fn.node.scope.node.id if fn.node.scope else fn.node.id} errors",
                    )
                    for fn in (*functions, self.verify, self.restore_test, self.report)
                ],
            ],
        )
        restore = cw.GraphWidget(
            title="Restore test duration (seconds)",
            width=12,
            left=[
                cw.Metric(
                    namespace=m.NAMESPACE,
                    metric_name=m.RESTORE_TEST_SECONDS,
                    statistic="Maximum",
                    period=Duration.days(7),
                )
            ],
        )
        dashboard.add_widgets(age)
        dashboard.add_widgets(outcomes, restore)
        return dashboard
