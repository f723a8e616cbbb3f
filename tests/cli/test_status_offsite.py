"""backupctl status and prune --dry-run with offsite copies (moto: home eu-central-2, offsite eu-central-1):
the offsite column and JSON, a stale copy as a problem, the copy job's schedule, prune's offsite plan."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine

from cli.backupctl.dumpwriter import write_dump_slot
from cli.backupctl.rehearsal import create_database, launch_server
from lambdas.common.contracts import COPIED_FROM_KEY, backup_name, backup_tags
from tests.cli.conftest import (
    ACCOUNT,
    COPY_BUCKET,
    FILES,
    MYSQL_DUMP,
    OFFSITE,
    Result,
    School,
    offsite_config,
    tar_gz,
)
from tests.cli.test_status import NOW, _healthy
from tests.unit.test_messages import english_words

DUMP_AT = NOW - timedelta(hours=7, minutes=30)  # the home dump of _healthy()

Cli = Callable[..., Result]


@pytest.fixture
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def there(school: School) -> dict[str, Any]:
    """The offsite region: the copy bucket, and an instance and a database there to make copies from."""
    s3 = boto3.client("s3", region_name=OFFSITE)
    s3.create_bucket(Bucket=COPY_BUCKET, CreateBucketConfiguration={"LocationConstraint": OFFSITE})
    ec2, rds = boto3.client("ec2", region_name=OFFSITE), boto3.client("rds", region_name=OFFSITE)
    return {
        "s3": s3,
        "ec2": ec2,
        "rds": rds,
        "instance": launch_server(ec2, {"Name": "offsite-stand-in"}),
        "db": create_database(rds, school.database, {"Name": "offsite-stand-in"}),
    }


def _copy_tags(job: str, source: str, arn: str) -> list[dict[str, str]]:
    tags = {**backup_tags(job, source), COPIED_FROM_KEY: arn}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def copy_rds(there: dict[str, Any], database: str, when: datetime) -> str:
    """An offsite copy of the RDS snapshot of ``when``: the original's name and tags, made at ``when``."""
    name = backup_name(database, when)
    arn = f"arn:aws:rds:eu-central-2:{ACCOUNT}:snapshot:{name}"
    with time_machine.travel(when, tick=False):
        there["rds"].create_db_snapshot(
            DBInstanceIdentifier=database,
            DBSnapshotIdentifier=name,
            Tags=_copy_tags("rds-daily", database, arn),
        )
    return name


def copy_ami(there: dict[str, Any], server: str, when: datetime) -> str:
    ec2 = there["ec2"]
    with time_machine.travel(when, tick=False):
        image = ec2.create_image(InstanceId=there["instance"], Name=backup_name(server, when), NoReboot=True)[
            "ImageId"
        ]
    ec2.create_tags(
        Resources=[image], Tags=_copy_tags("ami-weekly", server, "arn:aws:ec2:eu-central-2::image/ami-0")
    )
    return str(image)


def copy_dump(there: dict[str, Any], server: str, when: datetime) -> None:
    """What S3 replication leaves in the copy bucket: the home dump's keys and bytes."""
    contents = {"files.tar.gz": tar_gz(FILES), "db-school.sql.gz": gzip.compress(MYSQL_DUMP)}
    write_dump_slot(there["s3"], COPY_BUCKET, server, when, contents, create_only=False)


def fresh_copies(school: School, there: dict[str, Any], *, rds_age: timedelta = timedelta(hours=4)) -> None:
    """A healthy school at home and its copies offsite: dump, RDS snapshot (``rds_age`` old) and AMI."""
    _healthy(school)
    copy_dump(there, school.server, DUMP_AT)
    copy_rds(there, school.database, NOW - rds_age)
    copy_ami(there, school.server, NOW - timedelta(days=5, hours=-1))


def _backups(status: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["id"], b["kind"]): b for s in status["sources"] for b in s["backups"]}


def test_fresh_offsite_copies_are_ok_in_the_offsite_column_and_in_json(
    school: School, there: dict[str, Any], clock: None, offsite_cli: Cli, cli: Cli, tmp_path: Path
) -> None:
    fresh_copies(school, there)

    result = offsite_cli("status", "--json")

    status = result.json()
    assert status["problems"] == []
    assert result.exit_code == 0
    backups = _backups(status)
    assert set(backups) == {(school.server, "dump"), (school.server, "ami"), (school.database, "rds")}
    rds = backups[(school.database, "rds")]["offsite"]
    assert (rds["region"], rds["ok"], rds["state"], rds["age_hours"], rds["target_hours"]) == (
        OFFSITE, True, "usable", 4.0, 50,
    )  # fmt: skip
    assert rds["newest"]["id"] == backup_name(school.database, NOW - timedelta(hours=4))
    assert rds["newest_good"] == rds["newest"] and rds["problems"] == []
    assert backups[(school.database, "rds")]["age_hours"] == 5.0  # the home entry stays the home one
    ami = backups[(school.server, "ami")]["offsite"]
    assert (ami["region"], ami["ok"], ami["age_hours"], ami["target_hours"]) == (OFFSITE, True, 119.0, 216)
    dump = backups[(school.server, "dump")]["offsite"]
    assert (dump["region"], dump["ok"], dump["state"], dump["target_hours"]) == (OFFSITE, True, "usable", 27)

    human = offsite_cli("status")
    assert human.exit_code == 0
    assert "offsite (eu-central-1)" in human.stdout
    assert "usable, 4 h / 50 h" in human.stdout
    assert "usable, 5.0 days / 9.0 days" in human.stdout  # the AMI copy: 119 h of 216 h

    german = cli(
        "--config", str(offsite_config(tmp_path, language="de", enabled=True, region=OFFSITE)), "status"
    )
    assert german.exit_code == 0
    assert "ausser Haus (eu-central-1)" in german.stdout and "verwendbar, 4 h / 50 h" in german.stdout
    assert english_words(german.stdout) == [], german.stdout


def test_a_stale_offsite_copy_makes_status_exit_1_naming_it(
    school: School, there: dict[str, Any], clock: None, offsite_cli: Cli
) -> None:
    fresh_copies(school, there, rds_age=timedelta(hours=60))  # the offsite target is 50 hours
    stale = backup_name(school.database, NOW - timedelta(hours=60))

    result = offsite_cli("status", "--json")

    assert result.exit_code == 1
    status = result.json()
    named = f"RDS snapshot of school database ({school.database}), offsite copy in {OFFSITE}"
    [problem] = status["problems"]
    assert named in problem and stale in problem and "60 hours old" in problem
    [finding] = status["findings"]
    assert finding["cause"] == "offsite"
    rds = _backups(status)[(school.database, "rds")]
    assert rds["ok"] is True  # home is fine
    assert (rds["offsite"]["ok"], rds["offsite"]["age_hours"]) == (False, 60.0)
    assert any(named in p for p in rds["offsite"]["problems"])

    human = offsite_cli("status")
    assert human.exit_code == 1
    assert "usable, 60 h / 50 h, PROBLEM" in human.stdout
    assert f"Offsite copies in {OFFSITE}" in human.stdout


def test_without_offsite_copies_json_offsite_is_null_and_the_table_has_no_offsite_column(
    school: School, there: dict[str, Any], clock: None, cli: Cli
) -> None:
    fresh_copies(school, there, rds_age=timedelta(hours=60))  # a stale copy that nobody asked for

    result = cli("status", "--json")

    assert result.exit_code == 0, result.json()["problems"]
    backups = _backups(result.json())
    assert len(backups) == 3
    assert all(b["offsite"] is None for b in backups.values())
    [copy_job] = [s for s in result.json()["schedules"] if s["job"] == "offsite_copy"]
    assert (copy_job["deployed"], copy_job["next_run"]) == (False, None)
    human = cli("status")
    assert human.exit_code == 0
    assert "offsite" not in human.stdout.replace("offsite_copy", "")


def test_a_kind_that_is_not_copied_has_no_offsite_entry(
    school: School, there: dict[str, Any], clock: None, cli: Cli, tmp_path: Path
) -> None:
    fresh_copies(school, there)
    path = offsite_config(tmp_path, enabled=True, region=OFFSITE, kinds=["dump", "rds"])

    result = cli("--config", str(path), "status", "--json")

    assert result.exit_code == 0, result.json()["problems"]
    backups = _backups(result.json())
    assert backups[(school.server, "ami")]["offsite"] is None
    assert backups[(school.database, "rds")]["offsite"]["ok"] is True
    assert backups[(school.server, "dump")]["offsite"]["ok"] is True
    human = cli("--config", str(path), "status")
    [ami_row] = [line for line in human.stdout.splitlines() if "AMI" in line]
    assert ami_row.rstrip(" │|").endswith("-"), ami_row


def test_the_copy_job_is_deployed_with_its_next_run_when_it_copies_rds_or_ami(
    school: School, there: dict[str, Any], clock: None, offsite_cli: Cli, cli: Cli, tmp_path: Path
) -> None:
    status = offsite_cli("status", "--json").json()
    [copy_job] = [s for s in status["schedules"] if s["job"] == "offsite_copy"]
    assert copy_job["deployed"] is True
    assert copy_job["next_run"] == "2026-11-28T03:15:00Z"  # 04:15 in Zurich
    assert "Sat 28.11.2026 04:15" in offsite_cli("status").stdout

    dumps_only = offsite_config(
        tmp_path, enabled=True, region=OFFSITE, kinds=["dump"]
    )  # S3 replication copies them
    status = cli("--config", str(dumps_only), "status", "--json").json()
    [copy_job] = [s for s in status["schedules"] if s["job"] == "offsite_copy"]
    assert (copy_job["deployed"], copy_job["next_run"]) == (False, None)


def _snapshots(rds: Any) -> set[str]:
    return {
        s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def test_prune_dry_run_shows_the_offsite_plan_by_the_offsite_policy_and_deletes_nothing(
    school: School, there: dict[str, Any], clock: None, cli: Cli, tmp_path: Path
) -> None:
    home = boto3.client("rds")
    days = range(0, 120, 3)
    for day in days:
        when = NOW - timedelta(days=day, hours=5)
        with time_machine.travel(when, tick=False):
            home.create_db_snapshot(
                DBInstanceIdentifier=school.database,
                DBSnapshotIdentifier=backup_name(school.database, when),
                Tags=[{"Key": k, "Value": v} for k, v in backup_tags("rds-daily", school.database).items()],
            )
        copy_rds(there, school.database, when)
    uncopied_ami = copy_ami(there, school.server, NOW - timedelta(days=50))  # ami is not copied here
    before_home, before_there = _snapshots(home), _snapshots(there["rds"])
    path = offsite_config(tmp_path, enabled=True, region=OFFSITE, kinds=["dump", "rds"])

    result = cli("--config", str(path), "prune", "--dry-run", "--json")

    assert result.exit_code == 0, result.stderr
    plan = result.json()
    offsite = plan["offsite"]
    assert (offsite["region"], offsite["kinds"]) == (OFFSITE, ["rds"])
    assert offsite["policy"] == {
        "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 1, "max_age_days": 35, "min_keep": 2,
    }  # fmt: skip
    assert {i["kind"] for i in offsite["items"]} == {"rds"} and len(offsite["items"]) == len(days)
    assert uncopied_ami not in {i["id"] for i in offsite["items"]}
    name = {d: backup_name(school.database, NOW - timedelta(days=d, hours=5)) for d in days}
    # 7 daily (0..18 days), 4 weekly (+ 21 days: 06.11.), 1 monthly (November's newest): the rest goes
    kept_there = {i["id"] for i in offsite["items"] if i["action"] == "keep"}
    assert kept_there == {name[d] for d in (0, 3, 6, 9, 12, 15, 18, 21)}
    assert (offsite["keep"], offsite["delete"]) == (8, len(days) - 8)
    too_old = [i for i in offsite["items"] if i["id"] in {name[d] for d in days if d > 35}]
    assert too_old and all("35 days" in i["reason"] for i in too_old), too_old
    # at home the home policy (3 monthly, max 90 days) keeps some of what goes offsite
    kept_home = {i["id"] for i in plan["items"] if i["action"] == "keep"}
    assert kept_home - kept_there >= {name[27], name[60]}  # October's and September's newest
    assert _snapshots(home) == before_home and _snapshots(there["rds"]) == before_there  # nothing deleted

    human = cli("--config", str(path), "prune", "--dry-run")
    assert human.exit_code == 0
    title = (
        f"Retention plan of the offsite copies in {OFFSITE} (7 daily, 4 weekly, 1 monthly, max 35 days, "
        "at least 2 usable kept)"
    )
    assert title in human.stdout
    assert human.stdout.count("Nothing was deleted") == 2
    assert _snapshots(home) == before_home and _snapshots(there["rds"]) == before_there


def test_prune_dry_run_without_offsite_copies_has_no_offsite_plan(
    school: School, clock: None, cli: Cli
) -> None:
    result = cli("prune", "--dry-run", "--json")

    assert result.exit_code == 0
    assert result.json()["offsite"] is None
    assert "offsite" not in cli("prune", "--dry-run").stdout
