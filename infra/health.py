"""Knowing that backups work: verify (daily), restore_test and report (weekly), with their roles.

The alarms and the dashboard (infra/alarms.py) are built in this construct as well, for every
function of the stack.

With offsite copies, verify (and report, which runs verify's checks) also read the copies: the EC2/RDS
listings are ``*`` already (any region); the copied dumps are listed and read in the copy bucket under
``dumps/`` only, decrypted with the offsite key only through S3 in the offsite region. Copies in another
account: instead of those reads, only ``sts:AssumeRole`` on that account's role ``<prefix>-read``, whose
statements (:func:`target_read_statements`, built in the offsite stack) read the copies there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alarms import HealthAlarms
from infra.config import Config
from infra.functions import FunctionFactory
from infra.job_settings import JobSettings
from infra.offsite_names import offsite_bucket_arn, offsite_key_statements
from infra.schedules import JobSchedules
from infra.storage import read_statements, write_once_statements
from lambdas.common.contracts import (
    DRILL_PREFIX,
    DUMP_PREFIX,
    IAM_REVIEW_PREFIX,
    KIND_AMI,
    KIND_DUMP,
    KIND_RDS,
    RESTORE_TEST_PREFIX,
    WEEKLY_REPORT_PREFIX,
    alarm_prefix,
)

DESCRIBE_ONLY: Final = "EC2 and RDS Describe* calls cannot be limited to resources; these roles only read, never change anything."
DUMPS_READ: Final = "Reads every dump object under dumps/ to check or restore it; nothing else in the bucket."
BUCKET_ARN: Final = "<StorageBackupBucketF1474890.Arn>"


def offsite_dump_reads(
    stack: Stack, region: str, *, key_arn: str | None = None
) -> tuple[list[iam.PolicyStatement], dict[str, str]]:
    """List and read the copied dumps in the copy bucket of ``stack``'s account in ``region``, decrypt
    them with the offsite key only through S3 there (the key by ``key_arn`` when it is in ``stack``,
    else by its alias); with the reasons of the wildcards as cdk-nag names them."""
    bucket = offsite_bucket_arn(stack, region)
    statements = [
        iam.PolicyStatement(
            sid="ListOffsiteDumps",
            actions=["s3:ListBucket"],
            resources=[bucket],
            conditions={"StringLike": {"s3:prefix": [f"{DUMP_PREFIX}/*"]}},
        ),
        iam.PolicyStatement(
            sid="ReadOffsiteDumps", actions=["s3:GetObject"], resources=[f"{bucket}/{DUMP_PREFIX}/*"]
        ),
        *offsite_key_statements(
            stack,
            region,
            ["kms:Decrypt"],
            "DecryptOffsiteDumps",
            via_service=f"s3.{region}.amazonaws.com",
            key_arn=key_arn,
        ),
    ]
    copy_bucket = f"arn:<AWS::Partition>:s3:::schoolbackup-offsite-<AWS::AccountId>-{region}"
    reasons = {
        f"{copy_bucket}/{DUMP_PREFIX}/*": (
            "Reads the copied dumps under dumps/ in the offsite copy bucket to check that each copy is "
            "complete (its manifest); nothing else there."
        ),
    }
    if key_arn is None:
        reasons[f"arn:<AWS::Partition>:kms:{region}:<AWS::AccountId>:key/*"] = (
            "The offsite key lives in the offsite stack (another region), so it is named as key/* "
            "there, narrowed by kms:ResourceAliases to alias/schoolbackup-offsite and by "
            "kms:ViaService to S3 in that region (decrypting the copied manifests)."
        )
    return statements, reasons


def target_read_statements(
    stack: Stack, region: str, kinds: Sequence[str], *, dumps: bool, key_arn: str
) -> tuple[list[iam.PolicyStatement], dict[str, str]]:
    """The role ``<prefix>-read`` of the target account (in its offsite stack): what verify, report,
    ``backupctl status`` and ``backupctl prune --dry-run`` read in the offsite region there, for the
    copied ``kinds``: the copies' listings (``*``: EC2 has no resource-level permissions for them; RDS
    snapshots of that account and region) and the snapshot quota (the dry run shows it), and with
    ``dumps`` the copied dumps (:func:`offsite_dump_reads`, the key by ``key_arn``). Nothing that writes,
    copies or deletes."""
    rds = f"arn:{stack.partition}:rds:{region}:{stack.account}"
    statements: list[iam.PolicyStatement] = []
    reasons: dict[str, str] = {}
    if KIND_AMI in kinds:
        statements.append(
            iam.PolicyStatement(
                sid="DescribeImageCopies",
                actions=["ec2:DescribeImages", "ec2:DescribeSnapshots"],
                resources=["*"],
            )
        )
    if KIND_RDS in kinds:
        statements += [
            iam.PolicyStatement(
                sid="DescribeDbSnapshotCopies",
                actions=["rds:DescribeDBSnapshots"],
                resources=[f"{rds}:db:*", f"{rds}:snapshot:*"],
            ),
            iam.PolicyStatement(
                sid="ReadSnapshotQuota", actions=["rds:DescribeAccountAttributes"], resources=["*"]
            ),
        ]
        listing = "Listing the snapshot copies (read only) is checked on db:* and snapshot:* of this account."
        reasons |= {
            f"arn:<AWS::Partition>:rds:{region}:<AWS::AccountId>:db:*": listing,
            f"arn:<AWS::Partition>:rds:{region}:<AWS::AccountId>:snapshot:*": listing,
        }
    if statements:
        reasons["*"] = DESCRIBE_ONLY + " rds:DescribeAccountAttributes (the snapshot quota) is account-wide."
    if dumps:
        more, more_reasons = offsite_dump_reads(stack, region, key_arn=key_arn)
        statements += more
        reasons |= more_reasons
    return statements, reasons


class Health(Construct):
    """``functions`` are the functions whose errors raise an alarm (the three here plus those passed in)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        settings: JobSettings,
        factory: FunctionFactory,
        schedules: JobSchedules,
        bucket: s3.IBucket,
        key: kms.IKey,
        topic: sns.ITopic,
        functions: Sequence[lambda_.IFunction] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = alarm_prefix(Stack.of(self).stack_name)
        self.config, self.settings, self.bucket, self.key, self.topic = config, settings, bucket, key, topic
        self.verify = self._verify(factory, schedules)
        self.restore_test = self._restore_test(factory, schedules)
        self.report = self._report(factory, schedules)

        alarms = HealthAlarms(self, prefix=self.prefix, topic=topic, config=config)
        checked = (*functions, self.verify, self.restore_test, self.report)
        for fn in checked:
            alarms.function_errors(fn)
        alarms.backup_ages(config)
        alarms.offsite_backup_ages(config)
        alarms.check_results()
        alarms.iam_findings()
        self.alarms = alarms.alarms
        self.dashboard = alarms.dashboard(checked)

    def _describe(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=[
                "ec2:DescribeInstances",
                "ec2:DescribeImages",
                "ec2:DescribeSnapshots",
                "rds:DescribeDBInstances",
                "rds:DescribeDBClusters",
                "rds:DescribeDBSnapshots",
            ],
            resources=["*"],
        )

    def _offsite_reads(self) -> tuple[list[iam.PolicyStatement], dict[str, str]]:
        """The copied dumps in the copy bucket (list, read, decrypt), with the reasons of the wildcards;
        nothing without offsite copies of dumps. Copies in another account: only ``sts:AssumeRole`` on
        the role ``<prefix>-read`` there (which reads the copies, :func:`target_read_statements`)."""
        offsite = self.settings.verify.offsite
        if offsite is not None and offsite.role_arn is not None:
            assume = iam.PolicyStatement(
                sid="AssumeTargetReadRole", actions=["sts:AssumeRole"], resources=[offsite.role_arn]
            )
            return [assume], {}
        if offsite is None or not offsite.copies(KIND_DUMP) or not self.config.dump.enabled:
            return [], {}
        return offsite_dump_reads(Stack.of(self), offsite.region)

    def _reads(self, prefixes: Sequence[str]) -> list[iam.PolicyStatement]:
        return read_statements(self.bucket, self.key, prefixes)

    def _writes(self, prefix: str) -> list[iam.PolicyStatement]:
        return write_once_statements(self.bucket, self.key, prefix)

    def _verify(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        offsite, offsite_reasons = self._offsite_reads()
        return factory.job(
            "verify",
            description="daily freshness and integrity of every backup",
            environment=self.settings.verify.to_env(),
            statements=[*self._reads([f"{DUMP_PREFIX}/"]), self._describe(), *offsite],
            wildcards={
                f"{BUCKET_ARN}/{DUMP_PREFIX}/*": DUMPS_READ,
                "*": DESCRIBE_ONLY,
                **offsite_reasons,
            },
            schedules=schedules,
        )

    def _restore_test(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        records = f"{RESTORE_TEST_PREFIX}/"
        return factory.job(
            "restore_test",
            description="weekly spot restore of a dump: checksums and content",
            environment=self.settings.restore_test.to_env(),
            statements=[*self._reads([f"{DUMP_PREFIX}/", records]), *self._writes(records)],
            wildcards={
                f"{BUCKET_ARN}/{DUMP_PREFIX}/*": DUMPS_READ,
                f"{BUCKET_ARN}/{RESTORE_TEST_PREFIX}/*": (
                    "restore_test writes one record per scheduled run under reports/restore-tests/ and reads it "
                    "back when the run is repeated."
                ),
            },
            schedules=schedules,
            timeout=Duration.minutes(15),
            memory_mb=1024,
        )

    def _report(self, factory: FunctionFactory, schedules: JobSchedules) -> lambda_.Function:
        config = self.config
        weekly = f"{WEEKLY_REPORT_PREFIX}/"
        offsite, offsite_reasons = self._offsite_reads()
        statements = [
            *self._reads(
                [
                    f"{DUMP_PREFIX}/",
                    f"{RESTORE_TEST_PREFIX}/",
                    weekly,
                    f"{IAM_REVIEW_PREFIX}/",
                    f"{DRILL_PREFIX}/",
                ]
            ),
            *self._writes(weekly),
            self._describe(),
            *offsite,  # the report runs verify's checks, the offsite copies' too
            iam.PolicyStatement(
                actions=[
                    "cloudwatch:GetMetricData",
                    "cloudwatch:DescribeAlarmHistory",
                    "cloudwatch:DescribeAlarms",  # alarms in ALARM now (since before the week)
                    "rds:DescribeAccountAttributes",
                ],
                resources=["*"],
            ),
            # Publish: the plain-text mail; ListSubscriptionsByTopic: whether every address confirmed.
            iam.PolicyStatement(
                actions=["sns:Publish", "sns:ListSubscriptionsByTopic"], resources=[self.topic.topic_arn]
            ),
        ]
        if config.ses_sender:
            stack = Stack.of(self)
            domain = config.ses_sender.rsplit("@", 1)[1]
            statements.append(
                iam.PolicyStatement(
                    actions=["ses:SendEmail"],
                    resources=[
                        stack.format_arn(service="ses", resource="identity", resource_name=config.ses_sender),
                        stack.format_arn(service="ses", resource="identity", resource_name=domain),
                    ],
                )
            )
        return factory.job(
            "report",
            description="weekly health mail",
            environment=self.settings.report.to_env(),
            statements=statements,
            wildcards={
                f"{BUCKET_ARN}/{DUMP_PREFIX}/*": DUMPS_READ,
                "*": DESCRIBE_ONLY + " report also reads alarm history.",
                f"{BUCKET_ARN}/{RESTORE_TEST_PREFIX}/*": (
                    "report reads the restore-test records (one file per run) under reports/restore-tests/."
                ),
                f"{BUCKET_ARN}/{DRILL_PREFIX}/*": (
                    "report reads the restore drill's records (one file per drill) under reports/drills/."
                ),
                f"{BUCKET_ARN}/{IAM_REVIEW_PREFIX}/*": (
                    "report reads the monthly IAM review's records (one file per month) under reports/iam/."
                ),
                f"{BUCKET_ARN}/{WEEKLY_REPORT_PREFIX}/*": (
                    "report writes one record per weekly mail under reports/weekly/, so a repeated run sends "
                    "no second mail."
                ),
                **offsite_reasons,
            },
            schedules=schedules,
            timeout=Duration.minutes(5),
        )
