"""Configuration validation: every bad value is named with its key, the value and what is allowed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.config import DEFAULT_SCHEDULES, ConfigError, load_config
from infra.cron import clock_changes, parse_cron
from tests.iam.stack import context_with

REPO = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]["schoolbackup"]


def with_changes(**changes: Any) -> dict[str, Any]:
    """The shipped example with nested keys changed: with_changes(dump__engine="oracle")."""
    config = copy.deepcopy(EXAMPLE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return config


def problems_of(config: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(config)
    return info.value.problems


def test_shipped_example_is_valid_and_uses_the_design_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.timezone == "Europe/Zurich"
    assert dict(config.schedules) == DEFAULT_SCHEDULES
    assert str(config.selection.tag) == "Backup=true"
    assert config.retention.min_keep == 3
    assert config.dump.paths == ("/etc", "/var/www")
    assert config.bucket.object_lock_days == 30


def test_missing_values_take_the_documented_defaults() -> None:
    minimal = {
        "notification_emails": ["admin@school.ch", "deputy@school.ch"],
        "dump": {
            "db_host": "db.internal",
            "db_secret_arn": "arn:aws:secretsmanager:eu-central-2:123456789012:secret:dump-AbCdEf",
            "server_role_name": "web-role",
        },
    }
    config = load_config(minimal)
    assert config.schedules["ami_backup"] == "cron(0 3 ? * SUN *)"
    assert config.targets.ami_max_age_hours == 192
    assert config.dump.db_port == 3306
    assert config.dump.mysql_consistency == "single-transaction"
    assert config.dump.max_part_mib == 64
    assert load_config({**minimal, "dump": {**minimal["dump"], "engine": "postgres"}}).dump.db_port == 5432


BAD_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (name, changes, key named in the message, words from "what is allowed")
    (
        "email not an address",
        {"notification_emails": ["admin", "deputy@school.ch"]},
        "notification_emails[0]",
        "e-mail",
    ),
    ("only one address", {"notification_emails": ["admin@school.ch"]}, "notification_emails", "deputy"),
    ("no address", {"notification_emails": []}, "notification_emails", "at least one"),
    (
        "duplicate address",
        {"notification_emails": ["a@school.ch", "a@school.ch"]},
        "notification_emails",
        "duplicates",
    ),
    ("timezone", {"timezone": "Europe/Zurch"}, "schoolbackup.timezone", "IANA"),
    ("timezone path", {"timezone": "../../etc/passwd"}, "schoolbackup.timezone", "IANA"),
    ("language", {"language": "fr"}, "schoolbackup.language", "en or de"),
    ("cron five fields", {"schedules__dump": "cron(0 2 * * *)"}, "schedules.dump", "6"),
    ("cron not cron", {"schedules__prune": "every day"}, "schedules.prune", "cron("),
    ("cron both days", {"schedules__verify": "cron(0 2 * * * *)"}, "schedules.verify", "'?'"),
    ("cron hour 25", {"schedules__report": "cron(0 25 ? * MON *)"}, "schedules.report", "0-23"),
    (
        "unknown job",
        {"schedules__backup_everything": "cron(0 2 * * ? *)"},
        "schedules.backup_everything",
        "known settings",
    ),
    ("selection tag empty", {"selection__tag_key": ""}, "selection.tag_key", "tag key"),
    (
        "bad ec2 id",
        {"selection__ec2_instance_ids": ["web-1"]},
        "selection.ec2_instance_ids[0]",
        "i-0123456789abcdef0",
    ),
    ("keep_daily negative", {"retention__keep_daily": -1}, "retention.keep_daily", "0 to"),
    ("keep as text", {"retention__keep_weekly": "4"}, "retention.keep_weekly", "whole number"),
    ("min_keep zero", {"retention__min_keep": 0}, "retention.min_keep", "1 to"),
    ("max_age zero", {"retention__max_age_days": 0}, "retention.max_age_days", "1 to"),
    (
        "all keep rules zero",
        {"retention__keep_daily": 0, "retention__keep_weekly": 0, "retention__keep_monthly": 0},
        "keep_daily/keep_weekly/keep_monthly",
        "above 0",
    ),
    ("relative path", {"dump__paths": ["var/www"]}, "dump.paths[0]", "absolute"),
    ("path with shell", {"dump__paths": ["/var/www; rm -rf /"]}, "dump.paths[0]", "absolute"),
    ("engine", {"dump__engine": "oracle"}, "dump.engine", "mysql or postgres"),
    ("db host", {"dump__db_host": "db host!"}, "dump.db_host", "host name"),
    ("db name", {"dump__db_name": "school; drop"}, "dump.db_name", "database name"),
    ("secret arn", {"dump__db_secret_arn": "my-secret"}, "dump.db_secret_arn", "Secrets Manager"),
    (
        "secret arn wrong service",
        {"dump__db_secret_arn": "arn:aws:ssm:eu-central-2:123456789012:parameter/x"},
        "dump.db_secret_arn",
        "Secrets Manager",
    ),
    (
        "role arn instead of name",
        {"dump__server_role_name": "arn:aws:iam::123456789012:role/web"},
        "dump.server_role_name",
        "name (not the ARN)",
    ),
    ("compression", {"dump__compression": "bzip2"}, "dump.compression", "gzip or zstd"),
    ("port", {"dump__db_port": 70000}, "dump.db_port", "1 to 65535"),
    (
        "consistency",
        {"dump__mysql_consistency": "snapshot"},
        "dump.mysql_consistency",
        "single-transaction or lock-tables",
    ),
    ("part size below S3's minimum", {"dump__max_part_mib": 4}, "dump.max_part_mib", "5 to 5120"),
    ("part size above S3's maximum", {"dump__max_part_mib": 6000}, "dump.max_part_mib", "5 to 5120"),
    (
        "expiry before transition",
        {"bucket__expiry_days": 30},
        "bucket.expiry_days",
        "more days than transition",
    ),
    (
        "lock longer than expiry",
        {"bucket__object_lock_days": 200, "bucket__expiry_days": 100},
        "bucket.expiry_days",
        "object_lock_days",
    ),
    ("ia too early", {"bucket__transition_to_ia_days": 10}, "bucket.transition_to_ia_days", "30 to"),
    ("lock days zero", {"bucket__object_lock_days": 0}, "bucket.object_lock_days", "1 to"),
    (
        "drill subnet",
        {"restore_drill__subnet_id": "subnet-0123abcd"},
        "restore_drill.subnet_id",
        "isolated VPC",
    ),
    (
        "drill app url off the server",
        {"restore_drill__app_url": "https://www.school.example.org/"},
        "restore_drill.app_url",
        "on the restored server itself",
    ),
    (
        "drill sql of two lines",
        {"restore_drill__db_check_sql": "SELECT 1;\nDROP TABLE pupils"},
        "restore_drill.db_check_sql",
        "one SQL query",
    ),
    (
        "drill runtime below rto",
        {"restore_drill__max_runtime_minutes": 60},
        "restore_drill.max_runtime_minutes",
        "rto_target_minutes",
    ),
    ("log retention", {"log_retention_days": 42}, "log_retention_days", "retention periods"),
    ("tracing as text", {"tracing": "yes"}, "schoolbackup.tracing", "true or false"),
    ("block not an object", {"retention": [7, 4, 3]}, "schoolbackup.retention", "JSON object"),
    ("typo in key", {"retention__keep_dayly": 7}, "retention.keep_dayly", "unknown setting"),
    (
        "offsite on without a region",
        {"offsite__enabled": True, "offsite__region": ""},
        "offsite.region",
        "like eu-central-1",
    ),
    ("offsite region by name", {"offsite__region": "Frankfurt"}, "offsite.region", "like eu-central-1"),
    (
        "offsite account not 12 digits",
        {"offsite__enabled": True, "offsite__account": "21098765432"},
        "offsite.account",
        "12-digit id of the target account",
    ),
    (
        "offsite account as a number",
        {"offsite__enabled": True, "offsite__account": 210987654321, "offsite__home_account": "123456789012"},
        "offsite.account",
        "as a string",
    ),
    (
        "offsite account without home account",
        {"offsite__enabled": True, "offsite__account": "210987654321"},
        "offsite.home_account",
        "both stacks name each other's principals",
    ),
    (
        "offsite account is the home account",
        {
            "offsite__enabled": True,
            "offsite__account": "210987654321",
            "offsite__home_account": "210987654321",
        },
        "offsite.account",
        "set account to null",
    ),
    (
        "offsite home account without account",
        {"offsite__enabled": True, "offsite__home_account": "210987654321"},
        "offsite.home_account",
        "null without offsite.account",
    ),
    (
        "offsite role prefix too long",
        {"offsite__enabled": True, "offsite__role_name": "r" * 51},
        "offsite.role_name",
        "at most 50",
    ),
    ("offsite kind unknown", {"offsite__kinds": ["dump", "tapes"]}, "offsite.kinds[1]", "dump or rds or ami"),
    ("offsite no kind", {"offsite__kinds": []}, "offsite.kinds", "at least one"),
    ("offsite frequency", {"offsite__ami_frequency": "monthly"}, "offsite.ami_frequency", "daily or weekly"),
    (
        "offsite copies expire before their lock",
        {"offsite__enabled": True, "offsite__retention__max_age_days": 20},
        "offsite.retention.max_age_days",
        "object_lock_days (30)",
    ),
    (
        "offsite keeps nothing",
        {
            "offsite__retention__keep_daily": 0,
            "offsite__retention__keep_weekly": 0,
            "offsite__retention__keep_monthly": 0,
        },
        "offsite.retention.keep_daily/keep_weekly/keep_monthly",
        "above 0",
    ),
    ("offsite typo", {"offsite__regoin": "eu-central-1"}, "offsite.regoin", "unknown setting"),
    (
        "offsite replication alarm too eager",
        {"offsite__replication_alarm_minutes": 5},
        "offsite.replication_alarm_minutes",
        "15 to 1440",
    ),
]


@pytest.mark.parametrize(
    ("changes", "key", "allowed"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_value_is_reported_with_key_value_and_what_is_allowed(
    changes: dict[str, Any], key: str, allowed: str
) -> None:
    problems = problems_of(with_changes(**changes))
    matching = [p for p in problems if key in p and allowed in p]
    assert matching, f"no problem names {key!r} with {allowed!r}: {problems}"
    assert "is not allowed; expected" in matching[0] or "unknown setting" in matching[0]


def test_all_problems_are_reported_at_once_not_only_the_first() -> None:
    problems = problems_of(
        with_changes(
            timezone="Mars/Olympus", dump__engine="oracle", retention__min_keep=0, bucket__expiry_days=10
        )
    )
    assert len(problems) >= 4
    for key in ("timezone", "dump.engine", "retention.min_keep", "bucket.expiry_days"):
        assert any(key in p for p in problems), (key, problems)


def test_bad_value_is_quoted_in_the_message() -> None:
    (problem,) = problems_of(with_changes(dump__engine="oracle"))
    assert problem.startswith("schoolbackup.dump.engine: 'oracle' is not allowed; expected mysql or postgres")


def test_missing_context_block_is_a_clear_error() -> None:
    assert problems_of(None) == ["schoolbackup: missing; cdk.json needs a context block named 'schoolbackup'"]


def test_example_addresses_are_recognised_for_deploy_refusal() -> None:
    assert load_config(EXAMPLE).example_addresses() == ["it-admin@example.org", "it-deputy@example.org"]
    real = load_config(with_changes(notification_emails=["it@school-x.ch", "deputy@school-x.ch"]))
    assert real.example_addresses() == []


def _run_app(context: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path / "out"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_synth_stops_with_exit_code_1_and_one_line_per_problem(tmp_path: Path) -> None:
    bad = with_changes(timezone="Nowhere/City", retention__min_keep=0, dump__paths=["relative/path"])
    result = _run_app({"schoolbackup": bad}, tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == 3, result.stderr
    assert any("schoolbackup.timezone: 'Nowhere/City'" in line for line in lines)
    assert any("schoolbackup.retention.min_keep: 0" in line for line in lines)
    assert any("schoolbackup.dump.paths[0]: 'relative/path'" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "SchoolBackup.template.json").exists()


def test_synth_with_offsite_copies_writes_both_stacks_the_offsite_one_in_its_region(tmp_path: Path) -> None:
    """app.py itself (cdk-nag on): one synth, both stacks, the home one depending on the offsite one."""
    result = _run_app(context_with(with_changes(offsite__enabled=True)), tmp_path)  # cdk.json's flags too
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())["artifacts"]
    assert manifest["SchoolBackup-Offsite"]["environment"].endswith("/eu-central-1")
    assert "SchoolBackup-Offsite" in manifest["SchoolBackup"]["dependencies"]
    home = json.loads((out / "SchoolBackup.template.json").read_text())["Resources"]
    rules = [
        r["Properties"].get("ReplicationConfiguration")
        for r in home.values()
        if r["Type"] == "AWS::S3::Bucket"
    ]
    assert [rule["Id"] for c in rules if c for rule in c["Rules"]] == ["offsite-dumps"]


def test_server_settings_may_be_left_out_when_the_dump_is_off() -> None:
    minimal = {"notification_emails": ["admin@school.ch", "deputy@school.ch"], "dump": {"enabled": False}}
    config = load_config(minimal)
    assert config.dump.enabled is False
    assert config.dump.db_secret_arn == ""
    # ... but with the dump on, each one missing is named
    problems = problems_of({**minimal, "dump": {"enabled": True}})
    for key in ("dump.db_host", "dump.db_secret_arn", "dump.server_role_name"):
        assert any(key in p for p in problems), (key, problems)


DST_CASES = [
    ("dump at 02:00", {"schedules__dump": "cron(0 2 * * ? *)"}, "schedules.dump"),
    (
        "weekly AMI at 02:30 on Sundays",
        {"schedules__ami_backup": "cron(30 2 ? * SUN *)"},
        "schedules.ami_backup",
    ),
    ("prune every 15 minutes", {"schedules__prune": "cron(0/15 * * * ? *)"}, "schedules.prune"),
]


@pytest.mark.parametrize(("changes", "key"), [c[1:] for c in DST_CASES], ids=[c[0] for c in DST_CASES])
def test_a_time_in_the_spring_gap_is_refused_naming_the_job_and_the_nights_it_would_miss(
    changes: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(with_changes(**changes), today=date(2026, 12, 1))
    gap = [p for p in info.value.problems if key in p and "clocks go forward" in p]
    assert gap, info.value.problems
    assert "is not allowed; expected a time that exists exactly once every day in Europe/Zurich" in gap[0]
    assert "(02:00-02:59 is skipped)" in gap[0]
    # the next last Sundays of March, when Europe/Zurich skips 02:00-02:59
    assert "2027-03-28, 2028-03-26, 2029-03-25" in gap[0]


def test_a_time_in_the_autumn_fold_is_refused_naming_the_nights_it_would_double() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(with_changes(schedules__prune="cron(45 2 * * ? *)"), today=date(2026, 12, 1))
    fold = [p for p in info.value.problems if "schedules.prune" in p and "clocks go back" in p]
    assert fold and "2027-10-31, 2028-10-29, 2029-10-28" in fold[0], info.value.problems
    assert "02:45 happens twice" in fold[0]


def test_the_dst_check_follows_the_configured_timezone() -> None:
    # New York changes its clocks at 02:00 on other Sundays: 01:30 (fine in Zurich) happens twice there
    # in November, and 02:15 is skipped in March.
    with pytest.raises(ConfigError) as info:
        load_config(
            with_changes(timezone="America/New_York", schedules__rds_snapshot="cron(15 2 * * ? *)"),
            today=date(2026, 12, 1),
        )
    problems = info.value.problems
    assert any("schedules.dump" in p and "clocks go back" in p and "2027-11-07" in p for p in problems), (
        problems
    )
    assert any(
        "schedules.rds_snapshot" in p and "clocks go forward" in p and "2027-03-14" in p for p in problems
    )
    fine = with_changes(timezone="America/New_York", schedules__dump="cron(30 0 * * ? *)")
    assert load_config(fine, today=date(2026, 12, 1)).timezone == "America/New_York"


def test_no_default_schedule_falls_in_a_gap_or_fold_for_the_next_decades() -> None:
    for year in (2026, 2036, 2046):
        config = load_config(EXAMPLE, today=date(year, 1, 1))
        assert dict(config.schedules) == DEFAULT_SCHEDULES
        found = {
            job: clock_changes(config.cron(job), config.zone, date(year, 1, 1), years=10)
            for job in config.schedules
        }
        assert found == {job: [] for job in DEFAULT_SCHEDULES}
    # ... and the same look does see a run in the spring gap (02:00-02:59 in Zurich).
    [gap, *_] = clock_changes(parse_cron("cron(30 2 * * ? *)"), ZoneInfo("Europe/Zurich"), date(2026, 1, 1))
    assert (gap.kind, gap.day) == ("gap", date(2026, 3, 29))


@pytest.mark.parametrize(
    ("changes", "check", "job"),
    [
        ({"schedules__verify": "cron(0 1 * * ? *)"}, "verify", "dump"),
        ({"schedules__verify": "cron(0 3 * * ? *)"}, "verify", "rds_snapshot"),
        (
            {"schedules__verify": "cron(15 2 * * ? *)", "schedules__ami_backup": "cron(0 4 ? * SUN *)"},
            "verify",
            "ami_backup",
        ),
        ({"schedules__restore_test": "cron(0 1 ? * MON *)"}, "restore_test", "dump"),
        ({"schedules__dump": "cron(0 7 * * ? *)"}, "verify", "dump"),
    ],
    ids=[
        "verify before dump",
        "verify before rds",
        "verify before the sunday ami",
        "restore test before dump",
        "dump moved after verify",
    ],
)
def test_a_check_scheduled_before_what_it_checks_is_named(
    changes: dict[str, Any], check: str, job: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(with_changes(**changes), today=date(2026, 12, 1))
    named = [p for p in info.value.problems if f"schedules.{check}:" in p and f"after {job} (" in p]
    assert named, info.value.problems
    assert f"runs before {job} on the same day" in named[0]


def test_offsite_copies_are_off_by_default_and_take_the_documented_defaults() -> None:
    config = load_config(EXAMPLE)
    assert not config.offsite.enabled
    assert "offsite_copy" in config.switched_off()
    minimal = with_changes(offsite={"enabled": True, "region": "eu-west-1"})
    offsite = load_config(minimal).offsite
    assert (offsite.region, offsite.kinds) == ("eu-west-1", ("dump", "rds", "ami"))
    assert (offsite.rds_frequency, offsite.ami_frequency) == ("daily", "weekly")
    assert (offsite.retention.keep_daily, offsite.retention.max_age_days, offsite.retention.min_keep) == (
        7,
        35,
        2,
    )
    assert offsite.targets.rds_max_age_hours == 50
    assert "offsite_copy" not in load_config(minimal).switched_off()
    # only dumps: S3 replicates them; the copy job has nothing to do and is not deployed
    dumps_only = with_changes(offsite={"enabled": True, "region": "eu-west-1", "kinds": ["dump"]})
    assert "offsite_copy" in load_config(dumps_only).switched_off()


def test_copies_into_another_account_name_the_roles_there_and_arrive_a_day_later() -> None:
    cross = with_changes(
        offsite={
            "enabled": True,
            "region": "eu-west-1",
            "account": "210987654321",
            "home_account": "123456789012",
        }
    )
    offsite = load_config(cross).offsite
    assert offsite.cross_account and offsite.role_name == "schoolbackup-offsite"
    assert offsite.role_arn("prune") == "arn:aws:iam::210987654321:role/schoolbackup-offsite-prune"
    assert offsite.role_arn("read", "aws-cn") == "arn:aws-cn:iam::210987654321:role/schoolbackup-offsite-read"
    # through a staging copy an RDS snapshot or AMI arrives a run later: the default age targets allow it
    assert (offsite.targets.rds_max_age_hours, offsite.targets.ami_max_age_hours) == (74, 240)
    same = load_config(with_changes(offsite={"enabled": True, "region": "eu-west-1"})).offsite
    assert not same.cross_account and same.role_arn("copy") is None


def test_verify_before_the_offsite_copy_is_refused_only_when_the_copies_are_on() -> None:
    early = {"schedules__offsite_copy": "cron(0 7 * * ? *)"}
    load_config(with_changes(**early), today=date(2026, 12, 1))  # off: the copy job is not deployed
    with pytest.raises(ConfigError) as info:
        load_config(with_changes(**early, offsite__enabled=True), today=date(2026, 12, 1))
    assert any("schedules.verify:" in p and "after offsite_copy (07:00)" in p for p in info.value.problems)


def test_a_dump_late_in_the_evening_is_checked_the_next_morning_without_complaint() -> None:
    config = load_config(with_changes(schedules__dump="cron(30 23 * * ? *)"), today=date(2026, 12, 1))
    assert config.schedules["dump"] == "cron(30 23 * * ? *)"


def test_postgres_without_db_port_uses_5432_and_the_mysql_port_is_refused() -> None:
    example = with_changes(dump__engine="postgres")
    assert "db_port" not in example["dump"], "the example leaves the port to the engine"
    assert load_config(example).dump.db_port == 5432
    problems = problems_of(with_changes(dump__engine="postgres", dump__db_port=3306))
    assert any(
        "dump.db_port: 3306 is not allowed" in p and "leave db_port out for 5432" in p for p in problems
    )
    assert load_config(with_changes(dump__engine="postgres", dump__db_port=5433)).dump.db_port == 5433
