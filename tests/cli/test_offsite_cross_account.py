"""backupctl with the offsite copies in a target account (``offsite.account``), against moto's accounts:
the home account 123456789012 (moto's default credentials) and the target account 222222222222 (what
sts.assume_role into it hands out). status and prune --dry-run read the copies there through the
``-read`` role (or directly with the target account's credentials), a role that cannot be assumed is a
problem saying why, and restore --from-region runs only with the target account's credentials."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse
from moto.sts.models import sts_backends

from cli.backupctl.context import Aws
from cli.backupctl.dumpwriter import write_dump_slot
from cli.backupctl.rehearsal import create_database, launch_server
from lambdas.common.contracts import backup_name, offsite_bucket_name
from lambdas.common.messages import CATALOGUE
from tests.cli.conftest import (
    ACCOUNT,
    COPY_BUCKET,
    DB,
    FILES,
    MYSQL_DUMP,
    NIGHT,
    OFFSITE,
    Result,
    School,
    offsite_config,
    tar_gz,
)
from tests.cli.test_restore_aws import make_ami, make_db_snapshot
from tests.cli.test_status import NOW, _healthy
from tests.cli.test_status_offsite import copy_ami, copy_rds
from tests.unit.test_messages import _placeholders, english_words

TARGET = "222222222222"
TARGET_BUCKET = offsite_bucket_name(TARGET, OFFSITE)
READ_ROLE = f"arn:aws:iam::{TARGET}:role/schoolbackup-offsite-read"
DAY = "2026-11-26"  # NIGHT (00:30 UTC) is 01:30 on this day in Zurich
DENIED = (
    f"User: arn:aws:iam::{ACCOUNT}:user/moto is not authorized to perform: sts:AssumeRole on resource: "
    f"{READ_ROLE}"
)

Cli = Callable[..., Result]


@pytest.fixture
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def cross_cli(cli: Cli, tmp_path: Path) -> Cli:
    """backupctl with offsite copies of every kind in eu-central-1 of the target account."""
    path = offsite_config(tmp_path, enabled=True, region=OFFSITE, account=TARGET, home_account=ACCOUNT)
    return lambda *args: cli("--config", str(path), *args)


def target_credentials() -> dict[str, str]:
    """Credentials of the target account (an administrator role there, as moto hands them out)."""
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{TARGET}:role/admin", RoleSessionName="test-setup"
    )["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def in_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on the environment's credentials (what backupctl runs with) are the target account's."""
    creds = target_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["aws_secret_access_key"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["aws_session_token"])
    monkeypatch.setenv("AWS_SECURITY_TOKEN", creds["aws_session_token"])


def offsite_region(session: boto3.Session, bucket: str) -> dict[str, Any]:
    """The clients of the offsite region of ``session``'s account, with its copy bucket ``bucket``."""
    s3 = session.client("s3", region_name=OFFSITE)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": OFFSITE})
    return {
        "s3": s3,
        "ec2": session.client("ec2", region_name=OFFSITE),
        "rds": session.client("rds", region_name=OFFSITE),
        "bucket": bucket,
    }


@pytest.fixture
def target(aws: None) -> dict[str, Any]:
    """The offsite region of the target account: its copy bucket, and the clients there."""
    return offsite_region(boto3.Session(**target_credentials()), TARGET_BUCKET)


def copies(school: School, there: dict[str, Any], *, rds_age: timedelta) -> str:
    """Copies of the school's backups in ``there``: a dump (as S3 replication leaves it), an RDS snapshot
    ``rds_age`` old and an AMI; the name of the RDS copy."""
    launched = launch_server(there["ec2"], {"Name": "offsite-stand-in"})
    create_database(there["rds"], school.database, {"Name": "offsite-stand-in"})
    contents = {"files.tar.gz": tar_gz(FILES), "db-school.sql.gz": gzip.compress(MYSQL_DUMP)}
    write_dump_slot(
        there["s3"], there["bucket"], school.server, NOW - timedelta(hours=7, minutes=30), contents,
        create_only=False,
    )  # fmt: skip
    copy_ami({**there, "instance": launched}, school.server, NOW - timedelta(days=5, hours=-1))
    return copy_rds(there, school.database, NOW - rds_age)


def assumed(account: str) -> list[tuple[str, str]]:
    """The roles assumed into ``account`` (moto's record): (role ARN, session name)."""
    return [(r.role_arn, r.session_name) for r in sts_backends[account]["aws"].assumed_roles]


def deny_assume_role(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every STS client backupctl makes refuses AssumeRole as AWS does for a role whose trust policy (or
    the caller's IAM) does not allow it; the refused requests are returned."""
    refused: list[dict[str, Any]] = []
    made = Aws.client

    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        refused.append(params["body"])  # the request as sent (STS speaks the query protocol)
        error = {"Error": {"Type": "Sender", "Code": "AccessDenied", "Message": DENIED}}
        return AWSResponse("https://sts.amazonaws.com/", 403, {}, None), error

    def client(self: Aws, service: str, *args: Any, **kwargs: Any) -> Any:
        found = made(self, service, *args, **kwargs)
        if service == "sts":
            found.meta.events.register("before-call.sts.AssumeRole", refuse)
        return found

    monkeypatch.setattr(Aws, "client", client)
    return refused


def _backups(status: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["id"], b["kind"]): b for s in status["sources"] for b in s["backups"]}


def test_status_reads_the_copies_in_the_target_account_through_its_read_role(
    school: School, target: dict[str, Any], clock: None, cross_cli: Cli
) -> None:
    _healthy(school)
    fresh = copies(school, target, rds_age=timedelta(hours=4))
    # the same-account offsite region of the home account holds a stale copy: it must not be what is read
    home_there = offsite_region(boto3.Session(), COPY_BUCKET)
    copies(school, home_there, rds_age=timedelta(hours=60))

    result = cross_cli("status", "--json")

    status = result.json()
    assert status["problems"] == [], status["problems"]
    assert result.exit_code == 0
    assert status["offsite"] == {"region": OFFSITE, "account": TARGET, "readable": True, "problem": None}
    backups = _backups(status)
    rds = backups[(school.database, "rds")]["offsite"]
    assert (rds["account"], rds["region"], rds["ok"], rds["age_hours"]) == (TARGET, OFFSITE, True, 4.0)
    assert rds["newest"]["id"] == fresh
    dump = backups[(school.server, "dump")]["offsite"]
    assert (dump["account"], dump["ok"], dump["state"]) == (TARGET, True, "usable")
    assert backups[(school.server, "ami")]["offsite"]["account"] == TARGET
    assert (READ_ROLE, "backupctl-status-moto") in assumed(TARGET)  # who and what, in T's CloudTrail

    human = cross_cli("status")
    assert human.exit_code == 0
    assert f"offsite ({OFFSITE}, account" in human.stdout and f"{TARGET})" in human.stdout  # may wrap
    assert "usable, 4 h / 50 h" in human.stdout


def test_a_role_that_cannot_be_assumed_is_a_problem_naming_it_and_the_home_backups_still_show(
    school: School,
    target: dict[str, Any],
    clock: None,
    cross_cli: Cli,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _healthy(school)
    copies(school, target, rds_age=timedelta(hours=4))
    refused = deny_assume_role(monkeypatch)

    result = cross_cli("status", "--json")

    assert result.exit_code == 1
    status = result.json()
    assert [r["RoleArn"] for r in refused] == [READ_ROLE]
    offsite = status["offsite"]
    assert (offsite["account"], offsite["readable"]) == (TARGET, False)
    problem = offsite["problem"]
    for part in (
        f"The offsite copies in account {TARGET} ({OFFSITE}) cannot be read",
        f"arn:aws:sts::{ACCOUNT}:user/moto",  # who asked
        f"assume the role {READ_ROLE}",
        "The offsite stack SchoolBackup-Offsite must be deployed in account 222222222222",
        f"needs sts:AssumeRole on {READ_ROLE} (an IAM policy in account {ACCOUNT})",
        DENIED,  # AWS's own reason
    ):
        assert part in problem, problem
    assert problem in status["problems"]
    assert any("were not checked" in p for p in status["problems"])  # verify's own, as in the weekly mail
    backups = _backups(status)
    assert all(b["ok"] for b in backups.values())  # the home column as usual
    assert backups[(school.database, "rds")]["age_hours"] == 5.0
    assert all(b["offsite"] is None for b in backups.values())

    human = cross_cli("status")
    assert human.exit_code == 1
    [rds_row] = [line for line in human.stdout.splitlines() if "Database snapshot" in line]
    assert "could not be read" in rds_row and "OK" in rds_row, rds_row
    assert "sts:AssumeRole" in human.stdout.replace("\n", "")

    path = offsite_config(
        tmp_path, language="de", enabled=True, region=OFFSITE, account=TARGET, home_account=ACCOUNT
    )
    german = cli("--config", str(path), "status")
    assert german.exit_code == 1
    [rds_row] = [line for line in german.stdout.splitlines() if "Datenbank-Snapshot" in line]
    assert "nicht lesbar" in rds_row, rds_row
    said = german.stdout.replace("\n", "")
    assert f"Die Kopien ausser Haus im Konto {TARGET} ({OFFSITE}) können nicht gelesen werden" in said


def test_copies_the_read_role_may_not_describe_show_as_not_read_with_verifys_reason(
    school: School, target: dict[str, Any], clock: None, cross_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _healthy(school)
    copies(school, target, rds_age=timedelta(hours=4))
    made = Aws.client

    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: rds:Describe"}}
        return AWSResponse("https://rds.amazonaws.com/", 403, {}, None), error

    def client(self: Aws, service: str, *args: Any, **kwargs: Any) -> Any:
        found = made(self, service, *args, **kwargs)
        if service == "rds" and self.region_name == OFFSITE:  # the role's RDS reads there are refused
            found.meta.events.register("before-call.rds", refuse)
        return found

    monkeypatch.setattr(Aws, "client", client)

    result = cross_cli("status", "--json")

    assert result.exit_code == 1
    status = result.json()
    assert (status["offsite"]["readable"], status["offsite"]["problem"]) == (False, None)
    assert any("not authorized to perform: rds:Describe" in p for p in status["problems"]), status["problems"]
    backups = _backups(status)
    assert all(b["ok"] for b in backups.values())  # the home column as usual
    [rds_row] = [line for line in cross_cli("status").stdout.splitlines() if "Database snapshot" in line]
    assert "could not be read" in rds_row, rds_row


def test_prune_dry_run_plans_the_copies_of_the_target_account_and_names_a_refused_role(
    school: School, target: dict[str, Any], clock: None, cross_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    there = copies(school, target, rds_age=timedelta(hours=4))
    copies(school, offsite_region(boto3.Session(), COPY_BUCKET), rds_age=timedelta(hours=30))
    home_copy = backup_name(school.database, NOW - timedelta(hours=30))

    result = cross_cli("prune", "--dry-run", "--json")

    assert result.exit_code == 0, result.stderr
    plan = result.json()["offsite"]
    assert (plan["region"], plan["account"]) == (OFFSITE, TARGET)
    ids = {i["id"] for i in plan["items"] if i["kind"] == "rds"}
    assert there in ids and home_copy not in ids
    human = cross_cli("prune", "--dry-run")
    assert f"offsite copies in {OFFSITE}, account {TARGET} (" in human.stdout.replace("\n", ""), human.stdout
    assert (READ_ROLE, "backupctl-prune-dry-run-moto") in assumed(TARGET)

    deny_assume_role(monkeypatch)
    refused = cross_cli("prune", "--dry-run")
    assert refused.exit_code == 1
    assert f"assume the role {READ_ROLE}" in refused.stderr.replace("\n", "")


def test_with_the_target_accounts_credentials_the_copies_are_read_without_assuming_a_role(
    school: School, target: dict[str, Any], clock: None, cross_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    there = copies(school, target, rds_age=timedelta(hours=4))
    in_target(monkeypatch)
    refused = deny_assume_role(monkeypatch)  # an AssumeRole would fail the command

    result = cross_cli("prune", "--dry-run", "--json")

    assert result.exit_code == 0, result.stderr
    assert refused == []
    assert there in {i["id"] for i in result.json()["offsite"]["items"]}


@pytest.mark.parametrize(
    "command",
    [
        ("db", "--as", "school-db-offsite"),
        ("server", "--instance-type", "t3.micro"),
        ("files", "--date", DAY, "--to", "{tmp}/files"),
        ("dump", "--date", DAY, "--to", "{tmp}/school.sql"),
    ],
    ids=lambda c: c[0],
)
def test_restore_from_region_with_home_credentials_refuses_naming_both_accounts(
    target: dict[str, Any], cross_cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    rds = target["rds"]
    create_database(rds, DB, {"Name": "offsite-stand-in"})
    make_db_snapshot(rds, DB, NIGHT)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]

    result = cross_cli("restore", *args, "--from-region", OFFSITE)

    assert result.exit_code == 2
    said = result.stderr.replace("\n", "")
    assert f"the offsite copies are in account {TARGET} (offsite.account in cdk.json)" in said, said
    assert f"these credentials are of account {ACCOUNT}" in said
    assert f"AWS_PROFILE=<a profile of account {TARGET}>" in said
    assert not (tmp_path / "files").exists() and not (tmp_path / "school.sql").exists()
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]] == [DB]
    for ec2 in (target["ec2"], boto3.client("ec2", region_name=OFFSITE), boto3.client("ec2")):
        assert ec2.describe_instances()["Reservations"] == []  # nothing launched anywhere


def test_restore_from_region_with_target_credentials_restores_there(
    target: dict[str, Any], cross_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = {"files.tar.gz": tar_gz(FILES), "db-school.sql.gz": gzip.compress(MYSQL_DUMP)}
    write_dump_slot(target["s3"], TARGET_BUCKET, "i-0abc1234def567890", NIGHT, contents)
    rds, ec2 = target["rds"], target["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{OFFSITE}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="restore", Description="restore", VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(
        DBSubnetGroupName="restore-subnets", DBSubnetGroupDescription="restore", SubnetIds=subnets
    )
    create_database(rds, DB, {"Name": "offsite-stand-in"}, DBSubnetGroupName="restore-subnets")
    snapshot = make_db_snapshot(rds, DB, NIGHT)
    rds.delete_db_instance(DBInstanceIdentifier=DB, SkipFinalSnapshot=True)
    original = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnets[0])
    instance = original["Instances"][0]["InstanceId"]
    ami = make_ami(ec2, instance, NIGHT)
    ec2.terminate_instances(InstanceIds=[instance])
    home_rds, home_ec2 = boto3.client("rds", region_name=OFFSITE), boto3.client("ec2", region_name=OFFSITE)
    in_target(monkeypatch)

    files = cross_cli(
        "restore", "files", "--date", DAY, "--to", str(tmp_path / "files"), "--from-region", OFFSITE
    )
    db = cross_cli(
        "restore", "db", "--as", "school-db-offsite", "--subnet-group", "restore-subnets",
        "--security-group", sg, "--from-region", OFFSITE, "--json",
    )  # fmt: skip
    server = cross_cli(
        "restore", "server", "--source", instance, "--subnet-id", subnets[0], "--instance-type",
        "t3.micro", "--security-group", sg, "--from-region", OFFSITE, "--json",
    )  # fmt: skip

    assert files.exit_code == 0, files.stderr
    restored = {
        p.relative_to(tmp_path / "files").as_posix(): p.read_bytes()
        for p in (tmp_path / "files").rglob("*")
        if p.is_file()
    }
    assert restored == FILES
    assert db.exit_code == 0, db.stderr
    assert db.json()["from"] == snapshot
    assert rds.describe_db_instances(DBInstanceIdentifier="school-db-offsite")["DBInstances"]
    assert server.exit_code == 0, server.stderr
    launched = [
        i
        for r in ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [ami]}])["Reservations"]
        for i in r["Instances"]
    ]
    assert len(launched) == 1 and launched[0]["SubnetId"] == subnets[0]
    # nothing was made in the offsite region of the home account
    assert home_rds.describe_db_instances()["DBInstances"] == []
    assert home_ec2.describe_instances()["Reservations"] == []


CROSS_ACCOUNT_KEYS = (
    "cli.offsite.role_denied",
    "cli.offsite.unreadable",
    "cli.offsite.column_account",
    "cli.offsite.restore_other_account",
)


@pytest.mark.parametrize("key", CROSS_ACCOUNT_KEYS)
def test_the_cross_account_sentences_are_complete_in_both_languages(key: str) -> None:
    en, de = CATALOGUE[key]
    assert en.strip() and de.strip() and en != de
    assert _placeholders(en) == _placeholders(de)
    assert "ß" not in de
    assert english_words(de) == [], de
