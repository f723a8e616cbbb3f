"""The alarms and the dashboard of schoolbackup: every alarm goes to the one SNS topic and tells the
admin in its description what to do.

Built inside the Health construct, the restore drill's inside its own (their construct paths, so their logical ids and alarm names, stay
where they have always been: a renamed alarm would be a new alarm with the same name, which
CloudFormation cannot create).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import Config
from lambdas.common import contracts as m
from lambdas.common.messages import QUOTA_ALARM_PERCENT, alarm_description, msg, say


class HealthAlarms:
    """Creates the alarms (``alarms``) and the dashboard in ``scope``; names start with ``prefix``."""

    def __init__(self, scope: Construct, *, prefix: str, topic: sns.ITopic, config: Config) -> None:
        self.scope, self.prefix, self.topic, self.config = scope, prefix, topic, config
        self.alarms: list[cw.Alarm] = []

    def describe(self, base: str) -> str:
        """The alarm's description in the configured language, from the catalogue (the weekly mail
        shows the same words as the next step of an alarm)."""
        text = alarm_description(
            base,
            self.config.language,
            stack=Stack.of(self.scope).stack_name,
            hours=self.config.targets.by_kind(),
            quota_percent=QUOTA_ALARM_PERCENT,
            rto_target_minutes=self.config.restore_drill.rto_target_minutes,
        )
        if text is None:
            raise ValueError(f"no alarm description for {base!r} in lambdas/common/messages.py")
        return text

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
            description=self.describe("RestoreTestFailed"),
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
            description=self.describe("VerificationFailed"),
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
            description=self.describe("RdsSnapshotQuota"),
        )

    def iam_findings(self) -> None:
        """A high finding of the monthly IAM review that last month's did not have. The review publishes once
        a month: no datapoint is no news (its own failure raises iam_review-errors), never an alarm."""
        self.alarm(
            "IamNewHighFindings",
            cw.Metric(
                namespace=m.NAMESPACE,
                metric_name=m.IAM_NEW_HIGH_FINDINGS,
                statistic="Maximum",
                period=Duration.days(1),
            ),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=self.describe("IamNewHighFindings"),
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
            description=self.describe(f"{job}-errors"),
        )

    def backup_ages(self, config: Config) -> None:
        for kind, hours in config.targets.by_kind().items():
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
                description=self.describe(f"{kind}-backup-age"),
            )

    def offsite_backup_ages(self, config: Config) -> None:
        """The same dead-man alarms for the offsite copies: per copied kind, the worst age in the offsite
        region (dimension Region), missing data breaching (a check that never looked at the copies fails)."""
        off = config.offsite
        if not off.enabled:
            return
        for kind, hours in off.targets.by_kind().items():
            if not off.copies(kind) or (kind == m.KIND_DUMP and not config.dump.enabled):
                continue
            self.alarm(
                f"{kind}-backup-age-offsite",
                cw.Metric(
                    namespace=m.NAMESPACE,
                    metric_name=m.WORST_BACKUP_AGE_HOURS,
                    dimensions_map={m.KIND: kind, m.REGION: off.region},
                    statistic="Maximum",
                    period=Duration.days(1),
                ),
                threshold=hours,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                missing=cw.TreatMissingData.BREACHING,
                periods=2,  # as at home: verify publishes once a day
                description=say(
                    "alarm.offsite_backup_age",
                    self.config.language,
                    what=msg(f"alarm.what.{kind}"),
                    region=off.region,
                    hours=hours,
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
