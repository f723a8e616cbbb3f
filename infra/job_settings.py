"""Every job's settings from the configuration: what the stack puts into each function's environment and
what ``backupctl simulate`` runs the real handlers with. No CDK: deploy-time values (the bucket name, the
topic ARN) come in as strings, which may be CDK tokens when the stack calls this."""

from __future__ import annotations

from dataclasses import dataclass, replace

from infra.config import Config
from lambdas.common.contracts import DEFAULT_STACK_NAME, offsite_bucket_name
from lambdas.common.settings import (
    AmiBackupSettings,
    IamReviewSettings,
    Offsite,
    OffsiteCopySettings,
    PruneSettings,
    RdsSnapshotSettings,
    ReportSettings,
    RestoreTestSettings,
    VerifySettings,
)

AnySettings = (
    RdsSnapshotSettings
    | AmiBackupSettings
    | PruneSettings
    | VerifySettings
    | RestoreTestSettings
    | ReportSettings
    | IamReviewSettings
    | OffsiteCopySettings
)


@dataclass(frozen=True)
class JobSettings:
    rds_snapshot: RdsSnapshotSettings
    ami_backup: AmiBackupSettings
    prune: PruneSettings
    verify: VerifySettings
    restore_test: RestoreTestSettings
    report: ReportSettings
    iam_review: IamReviewSettings
    offsite_copy: OffsiteCopySettings | None  # None: offsite copies are off

    def for_job(self, job: str) -> AnySettings:
        found: AnySettings = getattr(self, job)
        return found


def job_settings(
    config: Config,
    *,
    bucket: str,
    topic_arn: str,
    alarm_prefix: str,
    key_arn: str = "",
    stack_name: str = DEFAULT_STACK_NAME,
    prune_role: str = "",
    account: str = "",
    partition: str = "aws",
) -> JobSettings:
    """``key_arn`` and ``prune_role`` are only needed by the IAM review (the stack fills them in; the
    rehearsal does not run the review); ``account`` names the offsite bucket (in this account), and
    ``partition`` the roles in a target account."""
    selection = config.selection
    offsite = offsite_settings(config, account)

    def offsite_as(use: str) -> Offsite | None:  # with a target account: the role of that use there
        if offsite is None or not config.offsite.cross_account:
            return offsite
        return replace(offsite, role_arn=config.offsite.role_arn(use, partition))

    verify = VerifySettings(
        bucket=bucket,
        selection=selection,
        retention=config.retention,
        dump_enabled=config.dump.enabled,
        targets=config.targets,
        timezone=config.timezone,
        language=config.language,
        offsite=offsite_as("read"),
    )
    return JobSettings(
        rds_snapshot=RdsSnapshotSettings(selection.tag, selection.rds_instance_ids),
        ami_backup=AmiBackupSettings(
            selection.tag, selection.ec2_instance_ids, no_reboot=config.ami_no_reboot
        ),
        prune=PruneSettings(config.retention, offsite=offsite_as("prune")),
        verify=verify,
        restore_test=RestoreTestSettings(bucket),
        report=ReportSettings(
            verify=verify,
            topic_arn=topic_arn,
            alarm_prefix=alarm_prefix,
            ses_sender=config.ses_sender,
            recipients=config.notification_emails,
            drill_enabled=config.restore_drill.enabled,
        ),
        iam_review=IamReviewSettings(
            bucket=bucket, key_arn=key_arn, stack_name=stack_name, prune_role=prune_role
        ),
        offsite_copy=OffsiteCopySettings(offsite_as("copy") or offsite)
        if offsite and "offsite_copy" not in config.switched_off()
        else None,
    )


def offsite_settings(config: Config, account: str) -> Offsite | None:
    """Where the offsite copies are and their rules; None when they are off."""
    off = config.offsite
    if not off.enabled:
        return None
    return Offsite(
        region=off.region,
        bucket=offsite_bucket_name(off.account or account, off.region),
        account=off.account if off.cross_account else None,
        kinds=off.kinds,
        rds_frequency=off.rds_frequency,
        ami_frequency=off.ami_frequency,
        policy=off.retention,
        targets=off.targets,
    )
