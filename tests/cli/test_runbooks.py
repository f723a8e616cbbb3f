"""Every command of the README's runbooks, run as the admin runs it: the installed ``backupctl`` against a
moto server (``--endpoint-url``), each asserted on what it did. The commands are read from the README, so
a runbook that changes without its test (or the other way round) fails here."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from lambdas.common.contracts import backup_name, backup_tags, restore_test_record_key
from tests.cli.conftest import BUCKET, FILES, NIGHT, REGION, School, build_school, write_dump
from tests.integration.conftest import free_port, unavailable, wait_for_port

REPO = Path(__file__).resolve().parents[2]
BACKUPCTL = Path(sys.executable).parent / "backupctl"
NIGHT_DATE = "2026-11-26"  # NIGHT in Zurich


def runbook_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Runbooks", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith("backupctl "):
                commands.append(command)
    return commands


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    moto_server = Path(sys.executable).parent / "moto_server"
    if not moto_server.exists() or not BACKUPCTL.exists():
        unavailable(f"{moto_server} or {BACKUPCTL} not found (make setup)")
    port = free_port()
    proc = subprocess.Popen(
        [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port):
            unavailable("moto_server did not start")
        url = f"http://127.0.0.1:{port}"
        config = json.dumps({"lambda": {"use_docker": False}}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/config", data=config, method="POST"))  # noqa: S310 - local moto
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def deployed(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A school as after a few good nights, in the moto server: what `status` calls all good."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))  # noqa: S310
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    school: School = build_school()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    write_dump(school.server, NIGHT)
    write_dump(school.server, now - timedelta(hours=7))
    tags = lambda job, source: [{"Key": k, "Value": v} for k, v in backup_tags(job, source).items()]  # noqa: E731
    boto3.client("rds").create_db_snapshot(
        DBInstanceIdentifier=school.database,
        DBSnapshotIdentifier=backup_name(school.database, now),
        Tags=tags("rds-daily", school.database),
    )
    ec2 = boto3.client("ec2")
    image = ec2.create_image(InstanceId=school.server, Name=backup_name(school.server, now), NoReboot=True)[
        "ImageId"
    ]
    ec2.create_tags(Resources=[image], Tags=tags("ami-weekly", school.server))
    boto3.client("cloudwatch").put_metric_data(
        Namespace="schoolbackup",
        MetricData=[
            {"MetricName": "VerificationFailures", "Value": 0, "Timestamp": now - timedelta(hours=1)}
        ],
    )
    record = {
        "started_at": f"{now - timedelta(days=2):%Y-%m-%dT%H:%M:%SZ}",
        "passed": True,
        "duration_seconds": 9.0,
    }
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=restore_test_record_key(now - timedelta(days=2)), Body=json.dumps(record)
    )
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="SchoolBackup-alarms")["TopicArn"]
    for address in ("it-admin@example.org", "it-deputy@example.org"):
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)
    role = boto3.client("iam").create_role(RoleName="verify-role", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    boto3.client("lambda").create_function(
        FunctionName="SchoolBackup-verify",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    return {"server": school.server, "database": school.database, "ami": image}


def _run(endpoint: str, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = shlex.split(command)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    return subprocess.run(
        [str(BACKUPCTL), "--endpoint-url", endpoint, "--config", str(REPO / "cdk.json"), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_readme_has_the_five_runbooks() -> None:
    commands = runbook_commands()
    readme = (REPO / "README.md").read_text()
    for title in (
        "The server is gone",
        "The database is corrupt",
        "A teacher deleted a folder",
        "Ransomware on the server",
        "The admin is away and the deputy takes over",
    ):
        assert f"**{title}" in readme
    assert len(commands) >= 12


def test_every_runbook_command_works_against_a_moto_server(
    endpoint: str, deployed: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    substitutions = {"<an AMI from before it>": deployed["ami"], "<a night before it>": NIGHT_DATE}
    for n, written in enumerate(runbook_commands()):
        command = written
        for placeholder, value in substitutions.items():
            command = command.replace(placeholder, value)
        cwd = tmp_path / f"step-{n}"
        cwd.mkdir()
        result = _run(endpoint, command, cwd)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        _assert_outcome(command, cwd, endpoint, deployed, monkeypatch)


def _assert_outcome(
    command: str, cwd: Path, endpoint: str, deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        args = shlex.split(command)
        if args[1:3] == ["restore", "files"]:
            target = cwd / args[args.index("--to") + 1]
            wanted = args[args.index("--path") + 1]
            restored = {
                p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()
            }
            assert restored == {k: v for k, v in FILES.items() if k.startswith(wanted + "/")}
        elif args[1:3] == ["restore", "dump"]:
            assert (
                (cwd / args[args.index("--to") + 1])
                .read_bytes()
                .endswith(b"-- Dump completed on 2026-11-27  1:04:41\n")
            )
        elif args[1:3] == ["restore", "db"]:
            new = args[args.index("--as") + 1]
            [db] = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=new)["DBInstances"]
            assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "school-db-subnets"
        elif args[1:3] == ["restore", "server"]:
            reservations = boto3.client("ec2").describe_instances(
                Filters=[{"Name": "image-id", "Values": [deployed["ami"]]}]
            )["Reservations"]
            launched = [i for r in reservations for i in r["Instances"]]
            assert launched and all(i["MetadataOptions"]["HttpTokens"] == "required" for i in launched)
            if "--isolated" in args:
                groups = boto3.client("ec2").describe_security_groups(
                    Filters=[
                        {"Name": "group-name", "Values": [f"schoolbackup-isolated-{deployed['server']}"]}
                    ]
                )["SecurityGroups"]
                assert groups and groups[0]["IpPermissions"] == [] and groups[0]["IpPermissionsEgress"] == []
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
