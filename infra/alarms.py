"""The alarms and the dashboard of schoolbackup: every alarm goes to the one SNS topic and tells the
admin in its description what to do.

Built inside the Health construct (their construct paths, so their logical ids and alarm names, stay
where they have always been: a renamed alarm would be a new alarm with the same name, which
CloudFormation cannot create).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import Config
from lambdas.common import contracts as m

QUOTA_ALARM_PERCENT: Final = 80


class HealthAlarms:
    """Creates the alarms (``alarms``) and the dashboard in ``scope``; names start with ``prefix``."""

    def __init__(self, scope: Construct, *, prefix: str, topic: sns.ITopic) -> None:
        self.scope, self.prefix, self.topic = scope, prefix, topic
        self.alarms: list[cw.Alarm] = []

    def check_results(self) -> None:
        """The restore test, the daily verification and the RDS snapshot quota."""
        self.alarm(
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
        self.alarm(
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
        self.alarm(
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

    def alarm(
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
            self.scope,
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

    def function_errors(self, fn: lambda_.IFunction) -> None:
        job = fn.node.scope.node.id if fn.node.scope is not None else fn.node.id
        self.alarm(
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

    def backup_ages(self, config: Config) -> None:
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
        stack_name = Stack.of(self.scope).stack_name
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
            self.alarm(
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

    def dashboard(self, functions: Sequence[lambda_.IFunction]) -> cw.Dashboard:
        stack = Stack.of(self.scope)
        dashboard = cw.Dashboard(self.scope, "Dashboard", dashboard_name=f"{stack.stack_name}-health")
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
                    for fn in functions
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
