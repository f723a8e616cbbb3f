"""Every job's settings survive the trip stack -> environment -> Lambda unchanged: ``from_env(to_env(s)) == s``.

The values are deliberately not the defaults (a default would survive a variable that is never written)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lambdas.common.retention import RetentionPolicy
from lambdas.common.settings import (
    AmiBackupSettings,
    DrillNetwork,
    DrillSettings,
    FunctionSettings,
    IamReviewSettings,
    Offsite,
    OffsiteCopySettings,
    PruneSettings,
    RdsSnapshotSettings,
    ReportSettings,
    RestoreTestSettings,
    Selection,
    SelectionTag,
    SettingsError,
    Targets,
    VerifySettings,
)

TAG = SelectionTag("Sicherung", "ja")
POLICY = RetentionPolicy(keep_daily=5, keep_weekly=2, keep_monthly=6, max_age_days=200, min_keep=4)
OFFSITE = Offsite(
    region="eu-central-1",
    bucket="schoolbackup-offsite-123456789012-eu-central-1",
    kinds=("dump", "ami"),
    rds_frequency="weekly",
    ami_frequency="daily",
    policy=RetentionPolicy(keep_daily=3, keep_weekly=1, keep_monthly=2, max_age_days=40, min_keep=1),
    targets=Targets(dump_max_age_hours=28, rds_max_age_hours=60, ami_max_age_hours=230),
    key_alias="alias/schoolbackup-offsite-test",
)
VERIFY = VerifySettings(
    bucket="schoolbackup-123456789012-eu-central-2",
    selection=Selection(TAG, ("i-0123456789abcdef0", "i-0fedcba9876543210"), ("school-db",)),
    retention=POLICY,
    dump_enabled=False,
    targets=Targets(dump_max_age_hours=30, rds_max_age_hours=50, ami_max_age_hours=200),
    timezone="Europe/Berlin",
    language="de",
    offsite=OFFSITE,
)
EVERY_JOB: dict[str, Any] = {
    "rds_snapshot": RdsSnapshotSettings(TAG, ("school-db", "moodle-db")),
    "ami_backup": AmiBackupSettings(TAG, ("i-0123456789abcdef0",), no_reboot=False),
    "prune": PruneSettings(POLICY, dry_run=True, offsite=OFFSITE),
    "offsite_copy": OffsiteCopySettings(OFFSITE),
    "verify": VERIFY,
    "restore_test": RestoreTestSettings("schoolbackup-123456789012-eu-central-2", pick="random"),
    "report": ReportSettings(
        verify=VERIFY,
        topic_arn="arn:aws:sns:eu-central-2:123456789012:SchoolBackup-alarms",
        alarm_prefix="SchoolBackup-",
        ses_sender="backup@school.ch",
        recipients=("it-admin@school.ch", "it-deputy@school.ch"),
    ),
    "iam_review": IamReviewSettings(
        bucket="schoolbackup-123456789012-eu-central-2",
        key_arn="arn:aws:kms:eu-central-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        stack_name="SchoolBackupTest",
        prune_role="SchoolBackupTest-FunctionspruneRole-ABC123",
    ),
    "drill": DrillSettings(
        verify=VERIFY,
        network=DrillNetwork(
            vpc_id="vpc-0123456789abcdef0",
            subnet_ids=("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"),
            server_security_group="sg-0123456789abcdef0",
            db_security_group="sg-0123456789abcdef1",
            endpoint_security_group="sg-0123456789abcdef2",
            db_subnet_group="schoolbackup-drill-subnets",
        ),
        instance_profile="SchoolBackup-DrillInstanceProfile-ABC",
        check_document="SchoolBackup-DrillCheck-0123456789",
        topic_arn="arn:aws:sns:eu-central-2:123456789012:SchoolBackup-alarms",
        instance_type="t3.small",
        db_instance_class="db.t4g.micro",
        rto_target_minutes=120,
        max_runtime_minutes=300,
    ),
    "function": FunctionSettings(name="verify", tracing=True),
}


@pytest.mark.parametrize("job", sorted(EVERY_JOB))
def test_from_env_of_to_env_is_the_same_settings(job: str) -> None:
    settings = EVERY_JOB[job]
    environment = settings.to_env()
    assert all(isinstance(v, str) for v in environment.values())
    assert type(settings).from_env(environment) == settings


@pytest.mark.parametrize("job", sorted(set(EVERY_JOB) - {"function"}))
def test_every_variable_written_is_read(job: str) -> None:
    """Changing any one variable that to_env() writes changes what from_env() reads (none is ignored)."""
    settings = EVERY_JOB[job]
    environment = settings.to_env()
    for name in environment:
        changed = dict(environment)
        changed[name] = _another_value(name, environment[name])
        assert type(settings).from_env(changed) != settings, f"{job}: {name} is written but not read"


def _another_value(name: str, value: str) -> str:
    if value in ("true", "false"):
        return "false" if value == "true" else "true"
    if value.isdigit():
        return str(int(value) + 1)
    if name == "SELECTION_TAG":
        return "Backup=true"
    if name == "TIMEZONE":
        return "UTC"
    if name == "LANGUAGE":
        return "en"
    if name == "RESTORE_TEST_PICK":
        return "newest"
    if name == "OFFSITE_REGION":
        return "eu-west-3"
    if name == "OFFSITE_KINDS":
        return "dump,rds,ami"
    if name.endswith("_FREQUENCY"):
        return "daily" if value == "weekly" else "weekly"
    if name.endswith("_INSTANCE_IDS"):
        return ""  # every example lists at least one id
    if name == "NOTIFICATION_EMAILS":
        return "someone@school.ch"
    return value + "x"


@pytest.mark.parametrize("job", ["prune", "verify"])
def test_without_offsite_copies_the_settings_say_so(job: str) -> None:
    """No offsite region: an empty OFFSITE_REGION is written, and read back as no offsite copies."""
    settings = EVERY_JOB[job]
    without = type(settings)(**{**settings.__dict__, "offsite": None})
    environment = without.to_env()
    assert environment["OFFSITE_REGION"] == ""
    assert not any(name.startswith("OFFSITE_") and name != "OFFSITE_REGION" for name in environment)
    assert type(settings).from_env(environment) == without


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("OFFSITE_REGION", "Frankfurt", "OFFSITE_REGION='Frankfurt' is not an AWS region"),
        ("OFFSITE_KINDS", "dump,tapes", "OFFSITE_KINDS='dump,tapes' must be a comma-separated list"),
        ("OFFSITE_KINDS", "", "OFFSITE_KINDS='' must be"),
        ("OFFSITE_BUCKET", "", "OFFSITE_BUCKET is missing"),
        ("OFFSITE_KEEP_DAILY", "seven", "OFFSITE_KEEP_DAILY='seven' is not a whole number"),
        ("OFFSITE_RDS_FREQUENCY", "hourly", "OFFSITE_RDS_FREQUENCY='hourly' must be daily or weekly"),
    ],
)
def test_a_bad_offsite_variable_is_named(name: str, value: str, named: str) -> None:
    environment = {**OffsiteCopySettings(OFFSITE).to_env(), name: value}
    with pytest.raises(SettingsError, match=named):
        OffsiteCopySettings.from_env(environment)


CROSS = replace(
    OFFSITE,
    account="210987654321",
    role_arn="arn:aws:iam::210987654321:role/schoolbackup-offsite-copy",
)


def test_copies_into_another_account_round_trip_and_same_account_writes_no_account_variables() -> None:
    environment = OffsiteCopySettings(CROSS).to_env()
    assert environment["OFFSITE_ACCOUNT"] == "210987654321"
    assert OffsiteCopySettings.from_env(environment) == OffsiteCopySettings(CROSS)
    assert "OFFSITE_ACCOUNT" not in OffsiteCopySettings(OFFSITE).to_env()
    assert OffsiteCopySettings.from_env(OffsiteCopySettings(OFFSITE).to_env()).offsite.role_arn is None


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("OFFSITE_ACCOUNT", "2109876543", "OFFSITE_ACCOUNT='2109876543' is not a 12-digit AWS account id"),
        ("OFFSITE_ROLE_ARN", "", "OFFSITE_ROLE_ARN='' is not the ARN of a role in the target account"),
        (
            "OFFSITE_ROLE_ARN",
            "arn:aws:iam::123456789012:role/schoolbackup-offsite-copy",
            "not the ARN of a role in the target account 210987654321",
        ),
        ("OFFSITE_STAGING_KEY_ALIAS", "", "OFFSITE_STAGING_KEY_ALIAS is missing"),
    ],
)
def test_a_bad_target_account_variable_is_named(name: str, value: str, named: str) -> None:
    environment = {**OffsiteCopySettings(CROSS).to_env(), name: value}
    with pytest.raises(SettingsError, match=named):
        OffsiteCopySettings.from_env(environment)


def test_the_copy_job_without_an_offsite_region_says_which_variable() -> None:
    with pytest.raises(SettingsError, match="OFFSITE_REGION is missing"):
        OffsiteCopySettings.from_env({"OFFSITE_REGION": ""})


def test_the_drill_without_its_subnets_says_which_variable() -> None:
    environment = {**EVERY_JOB["drill"].to_env(), "DRILL_SUBNET_IDS": ""}
    with pytest.raises(SettingsError, match="DRILL_SUBNET_IDS is missing or empty"):
        DrillSettings.from_env(environment)


def test_a_missing_variable_is_named() -> None:
    environment = EVERY_JOB["report"].to_env()
    for name in ("BACKUP_BUCKET", "SELECTION_TAG", "MIN_KEEP", "ALARM_TOPIC_ARN"):
        without = {k: v for k, v in environment.items() if k != name}
        with pytest.raises(SettingsError, match=name):
            ReportSettings.from_env(without)


def test_a_timezone_that_does_not_exist_is_named() -> None:
    environment = {**EVERY_JOB["verify"].to_env(), "TIMEZONE": "Europe/Zürich"}
    with pytest.raises(SettingsError, match="TIMEZONE='Europe/Zürich' is not an IANA timezone"):
        VerifySettings.from_env(environment)


def test_the_iam_review_refuses_a_key_arn_that_is_not_one_and_reads_partition_region_account() -> None:
    environment = {**EVERY_JOB["iam_review"].to_env(), "BACKUP_KEY_ARN": "alias/schoolbackup"}
    with pytest.raises(SettingsError, match=r"BACKUP_KEY_ARN='alias/schoolbackup' is not a KMS key ARN"):
        _ = IamReviewSettings.from_env(environment).region
    settings = EVERY_JOB["iam_review"]
    assert (settings.partition, settings.region, settings.account) == ("aws", "eu-central-2", "123456789012")
