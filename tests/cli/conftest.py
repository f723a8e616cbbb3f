"""backupctl against moto: a school (web server, database, backup bucket), dumps written the way the
dump script writes them, and the command line run in process (``cli``)."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from cli.backupctl.app import app
from cli.backupctl.dumpwriter import WrittenDump, tar_gz, write_dump_slot
from cli.backupctl.rehearsal import create_database, launch_server
from lambdas.common.contracts import bucket_name, offsite_bucket_name

REPO_ROOT = Path(__file__).resolve().parents[2]

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-central-2"
BUCKET = bucket_name(ACCOUNT, REGION)
DB = "school-db"
OFFSITE = "eu-central-1"  # the offsite region of the shipped cdk.json
COPY_BUCKET = offsite_bucket_name(ACCOUNT, OFFSITE)


_LOADER = botocore.loaders.create_loader()


@pytest.fixture(autouse=True)
def one_model_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every boto3 session (moto hands each test a new default one, and each backupctl run makes its own)
    parses the service models again, a few tenths of a second each; here they share one loader."""
    monkeypatch.setattr(botocore.session, "create_loader", lambda *_: _LOADER)


@pytest.fixture(autouse=True)
def domain_logger_as_it_was() -> Iterator[None]:
    """backupctl sends the jobs' log lines to stderr and quiets them (one command per process in real use);
    the next test in this worker gets the logger back as it was."""
    from lambdas.common.observability import logger

    handler = logger.registered_handler
    level, handler_level = logger.log_level, handler.level
    stream = handler.stream if isinstance(handler, logging.StreamHandler) else None
    yield
    logger.setLevel(level)
    handler.setLevel(handler_level)
    if stream is not None and isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run ``backupctl <args>`` in this process (inside the test's mock_aws)."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield


@dataclass(frozen=True)
class School:
    server: str  # instance id, tagged Backup=true, Name=web
    database: str
    vpc: str
    subnet: str
    security_group: str
    instance_profile_arn: str
    db_subnet_group: str
    db_security_group: str
    db_parameter_group: str


@pytest.fixture
def school(aws: None) -> School:
    return build_school()


def build_school() -> School:
    """The school's servers in whatever AWS boto3 talks to (moto in process, or a moto server)."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{REGION}b")["Subnet"][
        "SubnetId"
    ]
    web_sg = ec2.create_security_group(GroupName="web", Description="web server", VpcId=vpc)["GroupId"]
    db_sg = ec2.create_security_group(GroupName="db", Description="database", VpcId=vpc)["GroupId"]
    iam = boto3.client("iam")
    iam.create_role(RoleName="web-server", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="web-server")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-server", RoleName="web-server")
    server = launch_server(
        ec2,
        {"Backup": "true", "Name": "web"},
        SubnetId=subnet,
        SecurityGroupIds=[web_sg],
        IamInstanceProfile={"Arn": profile},
    )
    rds = boto3.client("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="school-db-subnets", DBSubnetGroupDescription="db", SubnetIds=[subnet, subnet_b]
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="school-mysql8", DBParameterGroupFamily="mysql8.0", Description="school"
    )
    create_database(
        rds,
        DB,
        {"Backup": "true", "Name": "school database"},
        DBSubnetGroupName="school-db-subnets",
        VpcSecurityGroupIds=[db_sg],
        DBParameterGroupName="school-mysql8",
        PubliclyAccessible=False,
    )
    return School(server, DB, vpc, subnet, web_sg, profile, "school-db-subnets", db_sg, "school-mysql8")


FILES = {
    "etc/hostname": b"web\n",
    "var/www/index.php": b"<?php echo 'hi';\n",
    "var/www/uploads/class-5a/timetable.pdf": b"%PDF-1.4 timetable\n",
    "var/www/uploads/class-5b/notes.txt": b"notes\n",
}
MYSQL_DUMP = (
    b"-- MariaDB dump 10.19\n--\n-- Host: db    Database: school\n"
    + b"INSERT INTO pupils VALUES (1,'Anna'),(2,'Ben');\n" * 200
    + b"-- Dump completed on 2026-11-27  1:04:41\n"
)


Dump = WrittenDump


def write_dump(
    source: str,
    when: datetime,
    *,
    files: dict[str, bytes] | None = None,
    sql: bytes = MYSQL_DUMP,
    status: str = "ok",
    manifest: bool = True,
) -> Dump:
    """A dump slot as the script writes it: every object create-only, the manifest last."""
    contents = {
        "files.tar.gz": tar_gz(files if files is not None else FILES),
        "db-school.sql.gz": gzip.compress(sql),
    }
    return write_dump_slot(
        boto3.client("s3"), BUCKET, source, when, contents, status=status, manifest=manifest
    )


def replace_object(key: str, data: bytes) -> None:
    """What a corrupted or tampered object looks like to a reader (tests only: the server cannot do this)."""
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)


NIGHT = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # 01:30 in Zurich on 26.11.2026, the dump's default time


@pytest.fixture
def german_config(tmp_path: Path) -> Path:
    """The repository's cdk.json with ``language: de``: pass ``--config <it>`` before the command."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    for block in context["context"].values():
        if isinstance(block, dict) and "language" in block:
            block["language"] = "de"
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(context), encoding="utf-8")
    return path


def offsite_config(tmp_path: Path, *, language: str = "en", **offsite: Any) -> Path:
    """The shipped cdk.json with its ``offsite`` block updated by ``offsite`` (and ``language``)."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    block = context["context"]["schoolbackup"]
    block["offsite"].update(offsite)
    block["language"] = language
    path = tmp_path / f"cdk-{language}.json"
    path.write_text(json.dumps(context), encoding="utf-8")
    return path


@pytest.fixture
def offsite_cli(cli: Callable[..., Result], tmp_path: Path) -> Callable[..., Result]:
    """backupctl with the shipped configuration, offsite copies of every kind switched on (eu-central-1)."""
    path = offsite_config(tmp_path, enabled=True, region=OFFSITE)
    return lambda *args: cli("--config", str(path), *args)
