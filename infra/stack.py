"""BackupStack: one construct per concern, composed here."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from infra.backup_jobs import BackupJobs
from infra.config import Config
from infra.drill import RestoreDrill
from infra.dump import DumpJob
from infra.functions import FunctionFactory
from infra.health import Health
from infra.iam_review import IamReview
from infra.job_settings import job_settings
from infra.monitoring import AlarmTopic
from infra.offsite import OffsiteHome, home_environment
from infra.offsite_copy import OffsiteCopy
from infra.prune import Prune
from infra.schedules import JobSchedules
from infra.storage import BackupStorage
from lambdas.common.contracts import alarm_prefix


class BackupStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any) -> None:
        # copies into another account: pinned to the home account (infra.offsite.home_environment)
        kwargs.setdefault("env", home_environment(config))
        super().__init__(
            scope, construct_id, description="schoolbackup: backups, checks and alarms", **kwargs
        )
        self.config = config
        Tags.of(self).add("Application", "schoolbackup")

        self.storage = BackupStorage(self, "Storage", config=config.bucket)
        self.alarms = AlarmTopic(self, "Alarms", key=self.storage.key, emails=config.notification_emails)
        # offsite copies: the region check and the dumps' S3 replication into the offsite stack's bucket
        self.offsite = None
        if config.offsite.enabled:
            self.offsite = OffsiteHome(
                self, "Offsite", config=config, storage=self.storage, topic=self.alarms.topic
            )
        self.factory = FunctionFactory(self, "Functions", config=config)
        self.schedules = JobSchedules(
            self, "Schedules", config=config, key=self.storage.key, topic=self.alarms.topic
        )
        settings = job_settings(
            config,
            bucket=self.storage.bucket.bucket_name,
            topic_arn=self.alarms.topic.topic_arn,
            alarm_prefix=alarm_prefix(self.stack_name),
            account=self.account,
            partition=self.partition,
        )

        # Jobs: one construct per concern; each builds its functions through self.factory.
        # rds_snapshot (daily) and ami_backup (weekly)
        self.backup_jobs = BackupJobs(
            self,
            "BackupJobs",
            config=config,
            settings=settings,
            factory=self.factory,
            schedules=self.schedules,
        )
        # retention: prune (daily)
        self.prune = Prune(self, "Prune", settings=settings, factory=self.factory, schedules=self.schedules)
        # offsite copies of the RDS snapshots and AMIs (daily, after the backups, before prune)
        self.offsite_copy = None
        if settings.offsite_copy is not None:
            self.offsite_copy = OffsiteCopy(
                self,
                "OffsiteCopy",
                settings=settings.offsite_copy,
                factory=self.factory,
                schedules=self.schedules,
            )
        # the dump on the server: SSM document, schedule, the server role's add-only policy
        self.dump = DumpJob(
            self,
            "Dump",
            config=config,
            storage=self.storage,
            schedules=self.schedules,
            alarms=self.alarms,
        )
        # the monthly IAM review (before Health, which alarms on its errors and its new high findings)
        self.iam_review = IamReview(
            self,
            "IamReview",
            settings=settings,
            factory=self.factory,
            schedules=self.schedules,
            bucket=self.storage.bucket,
            key=self.storage.key,
            prune_role=self.prune.function.role,
        )
        # the twice-yearly restore drill (state machine) and its daily cleanup
        self.drill = None
        if config.restore_drill.enabled:
            self.drill = RestoreDrill(
                self,
                "Drill",
                config=config,
                verify=settings.verify,
                factory=self.factory,
                schedules=self.schedules,
                bucket=self.storage.bucket,
                key=self.storage.key,
                topic=self.alarms.topic,
            )
        # verify, restore_test, report, alarms, dashboard (last: it alarms on every function built above)
        self.health = Health(
            self,
            "Health",
            config=config,
            settings=settings,
            factory=self.factory,
            schedules=self.schedules,
            bucket=self.storage.bucket,
            key=self.storage.key,
            topic=self.alarms.topic,
            functions=list(self.factory.functions),
        )
