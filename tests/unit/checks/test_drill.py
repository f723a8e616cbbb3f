"""The restore drill's steps against moto: what it restores, how, the checks, teardown, report, cleanup.

Every AWS request the steps make is judged against the synthesized drill role (tests/unit/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from lambdas.common.contracts import DRILL_PHASES, EventError, drill_record_key
from lambdas.common.jobs import drill
from lambdas.common.settings import DrillSettings
from lambdas.drill.handler import handler
from tests.unit.checks.conftest import BUCKET, NOW, Dump, make_ami, make_rds_snapshot

DRILL_TIME = datetime(2027, 1, 2, 5, 0, tzinfo=UTC)  # the first Saturday of January, 06:00 in Zurich
PROD_DB_TAGS = {"Backup": "true"}


@dataclass
class Net:
    env: dict[str, str]
    topic: str
    queue: str

    def settings(self) -> DrillSettings:
        return DrillSettings.from_env()


@pytest.fixture
def net(aws: None, monkeypatch: pytest.MonkeyPatch) -> Net:
    """The isolated network, instance profile, check document and topic that the stack builds."""
    ec2, rds, iam = boto3.client("ec2"), boto3.client("rds"), boto3.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.254.0.0/24")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.254.0.0/26", "eu-central-2a"), ("10.254.0.64/26", "eu-central-2b"))
    ]
    groups = [
        ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
        for n in ("server", "db", "endpoint")
    ]
    rds.create_db_subnet_group(
        DBSubnetGroupName="drill-subnets", DBSubnetGroupDescription="drill", SubnetIds=subnets
    )
    iam.create_role(RoleName="drill-instance", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="drill-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="drill-profile", RoleName="drill-instance")
    boto3.client("ssm").create_document(
        Name="SchoolBackup-DrillCheck-test",
        DocumentType="Command",
        Content=json.dumps(
            {
                "schemaVersion": "2.2",
                "description": "test",
                "parameters": {
                    p: {"type": "String", "default": ""}
                    for p in ("DbHost", "DbPort", "DbSecretArn", "DumpFolder")
                },
                "mainSteps": [
                    {"action": "aws:runShellScript", "name": "checks", "inputs": {"runCommand": ["true"]}}
                ],
            }
        ),
    )
    topic = boto3.client("sns").create_topic(Name="SchoolBackup-alarms")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="mails")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    env = {
        "BACKUP_BUCKET": BUCKET,
        "SELECTION_TAG": "Backup=true",
        "DRILL_VPC_ID": vpc,
        "DRILL_SUBNET_IDS": ",".join(subnets),
        "DRILL_SERVER_SG": groups[0],
        "DRILL_DB_SG": groups[1],
        "DRILL_ENDPOINT_SG": groups[2],
        "DRILL_DB_SUBNET_GROUP": "drill-subnets",
        "DRILL_INSTANCE_PROFILE": "drill-profile",
        "DRILL_CHECK_DOCUMENT": "SchoolBackup-DrillCheck-test",
        "ALARM_TOPIC_ARN": topic,
        "DRILL_INSTANCE_TYPE": "t3.micro",
        "DRILL_DB_CLASS": "db.t3.micro",
        "DRILL_RTO_TARGET_MINUTES": "240",
        "DRILL_MAX_RUNTIME_MINUTES": "360",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Net(env, topic, queue)


def mails(net: Net) -> list[dict[str, str]]:
    sqs = boto3.client("sqs")
    got = sqs.receive_message(QueueUrl=net.queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


@dataclass
class School:
    server: str
    database: str
    ami: str
    snapshot: str
    dump: Dump


@pytest.fixture
def school(net: Net, server: str, database: str, make_dump: Callable[..., Dump]) -> School:
    """A week of backups before the drill: an older and a newer AMI and snapshot, dumps with the newest
    one broken (no manifest)."""
    make_ami(server, NOW - timedelta(days=7))
    ami = make_ami(server, NOW - timedelta(days=1))
    make_rds_snapshot(database, NOW - timedelta(days=2))
    snap = make_rds_snapshot(database, NOW - timedelta(hours=3))
    good = make_dump(server, NOW - timedelta(hours=5))
    make_dump(server, NOW - timedelta(hours=1), manifest=False)
    return School(server, database, ami, snap, good)


def invoke(step: str, state: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler({"step": step, "drill": state}, lambda_context)
    return result


def test_plan_picks_the_newest_usable_backup_of_each_source(school: School, lambda_context: Any) -> None:
    state = invoke("plan", {"scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    assert "failed" not in state, state.get("error")
    assert state["slot"] == "20261127T0630Z"
    (server,) = state["servers"]
    assert server["source"] == school.server and server["ami"] == school.ami
    assert server["dump"] == school.dump.folder  # the newer dump has no manifest: not usable
    (db,) = state["databases"]
    assert db == {
        "source": school.database,
        "snapshot": school.snapshot,
        "instance": "sb-drill-20261127t0630z-0",
    }


def test_plan_without_a_usable_backup_fails_and_names_what_is_missing(
    net: Net, server: str, database: str, lambda_context: Any
) -> None:
    make_ami(server, NOW - timedelta(days=1))
    state = invoke("plan", {"scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    assert state["failed"] is True
    cause = state["error"]["Cause"]
    assert f"database {database} has no usable snapshot" in cause
    assert f"server {server} has no usable dump" in cause
    assert state["slot"] == "20261127T0630Z"  # the teardown and the report still know which drill


class Capture:
    """The parameters of the requests a client sends (what AWS sees, where moto ignores a value)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.params: list[dict[str, Any]] = []
        client.meta.events.register(f"provide-client-params.*.{operation}", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(dict(params))


@pytest.fixture
def launched(
    school: School, net: Net, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, Any], Capture]]:
    settings = net.settings()
    ec2, rds, s3 = boto3.client("ec2"), boto3.client("rds"), boto3.client("s3")
    restores = Capture(rds, "RestoreDBInstanceFromDBSnapshot")
    state = drill.plan(ec2, rds, s3, settings, NOW)
    state = drill.launch(ec2, rds, settings, state, NOW + timedelta(seconds=5))
    return state, restores


def test_launch_starts_the_server_from_its_ami_isolated_and_without_a_public_ip(
    launched: tuple[dict[str, Any], Capture], school: School, net: Net
) -> None:
    state, _ = launched
    instance_id = state["servers"][0]["instance"]
    ec2 = boto3.client("ec2")
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["ImageId"] == school.ami
    assert instance["InstanceType"] == state["servers"][0]["instance_type"] == "t3.micro"  # an x86_64 AMI
    assert instance["SubnetId"] == net.env["DRILL_SUBNET_IDS"].split(",")[0]
    (interface,) = instance["NetworkInterfaces"]
    assert [g["GroupId"] for g in interface["Groups"]] == [net.env["DRILL_SERVER_SG"]]
    assert "PublicIpAddress" not in instance and not interface.get("Association", {}).get("PublicIp")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["IamInstanceProfile"]["Arn"].endswith("instance-profile/drill-profile")
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["BackupJob"] == "drill" and tags["ManagedBy"] == "schoolbackup"
    assert tags["DrillSlot"] == state["slot"] and "Backup" not in tags
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag:DrillSlot", "Values": [state["slot"]]}])
    services = sorted(e["ServiceName"].rsplit(".", 1)[1] for e in endpoints["VpcEndpoints"])
    assert services == sorted(drill.ENDPOINT_SERVICES)


def test_launch_restores_the_database_non_public_single_az_without_backups(
    launched: tuple[dict[str, Any], Capture], school: School, net: Net
) -> None:
    state, restores = launched
    (request,) = restores.params
    assert request["DBSnapshotIdentifier"] == school.snapshot
    assert request["PubliclyAccessible"] is False and request["MultiAZ"] is False
    assert request["BackupRetentionPeriod"] == 0  # no baseline backup holding it in backing-up
    assert request["DBInstanceClass"] == "db.t3.micro" and request["DeletionProtection"] is False
    assert request["VpcSecurityGroupIds"] == [net.env["DRILL_DB_SG"]]
    assert request["ManageMasterUserPassword"] is True
    db = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=state["databases"][0]["instance"])[
        "DBInstances"
    ][0]
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "drill-subnets"
    assert {t["Key"]: t["Value"] for t in db["TagList"]}["BackupJob"] == "drill"


def test_a_repeated_launch_creates_nothing_twice(launched: tuple[dict[str, Any], Capture], net: Net) -> None:
    state, _ = launched
    again = drill.launch(boto3.client("ec2"), boto3.client("rds"), net.settings(), dict(state), NOW)
    assert again["servers"][0]["instance"] == state["servers"][0]["instance"]
    reservations = boto3.client("ec2").describe_instances(
        Filters=[{"Name": "tag:DrillSlot", "Values": [state["slot"]]}]
    )["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 1
    assert len(boto3.client("rds").describe_db_instances()["DBInstances"]) == 2  # production + one drill DB


def test_poll_records_when_server_and_database_became_ready(
    launched: tuple[dict[str, Any], Capture], lambda_context: Any
) -> None:
    state, _ = launched
    state = drill.poll(boto3.client("ec2"), boto3.client("rds"), state, NOW + timedelta(minutes=7))
    assert state["ready"] is True
    phases = {p["name"]: p for p in state["phases"]}
    assert phases["instance-running"]["ok"] and phases["instance-running"]["seconds"] == 415
    assert phases["db-available"]["ok"]
    db = state["databases"][0]
    assert db["host"] and db["port"] == 3306 and db["secret"].startswith("arn:aws:secretsmanager:")


def test_poll_after_the_deadline_fails_the_drill(launched: tuple[dict[str, Any], Capture], net: Net) -> None:
    state, _ = launched
    ec2 = boto3.client("ec2")
    late = NOW + timedelta(minutes=360)
    with Stubber(ec2) as stub:  # the server is still pending
        stub.add_response(
            "describe_instances",
            {
                "Reservations": [
                    {
                        "Instances": [
                            {
                                "InstanceId": state["servers"][0]["instance"],
                                "State": {"Name": "pending", "Code": 0},
                            }
                        ]
                    }
                ]
            },
        )
        stub.add_response("describe_vpc_endpoints", {"VpcEndpoints": []})
        with pytest.raises(drill.DrillFailed, match="was not ready 360 minutes"):
            drill.poll(ec2, boto3.client("rds"), state, late)


OUTPUT_OK = "\n".join(
    [
        "SB-CHECK app ok 3 http://localhost/ answered HTTP 200",
        "SB-CHECK db ok 1 school answered 42",
        "SB-CHECK dump ok 95 2 object(s) match the manifest; the database dump loaded into sb_drill_check_4242 and answered 42",
    ]
)


@pytest.fixture
def every_client() -> Iterator[Callable[[str, Callable[..., Any]], None]]:
    """Register a botocore event handler on every client the code creates (the handler's own)."""
    import botocore.session

    session = botocore.session.get_session()
    boto3.setup_default_session(botocore_session=session)
    yield session.register
    boto3.DEFAULT_SESSION = None


def answer_invocations(ssm: Any, status: str, output: str) -> None:
    """moto reports every command as Success without output: answer with what the script printed
    (``ssm``: a client, or a ``register`` of every client)."""
    register = ssm if callable(ssm) else ssm.meta.events.register

    def reply(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        asked = json.loads(params["body"])
        body = {
            "CommandId": asked["CommandId"],
            "InstanceId": asked["InstanceId"],
            "Status": status,
            "StandardOutputContent": output,
            "StandardErrorContent": "",
        }
        return (AWSResponse("", 200, {}, None), body)

    register("before-call.ssm.GetCommandInvocation", reply)


def checked(state: dict[str, Any], output: str, status: str = "Success") -> dict[str, Any]:
    state = drill.poll(boto3.client("ec2"), boto3.client("rds"), state, NOW + timedelta(minutes=7))
    ssm = boto3.client("ssm")
    sends = Capture(ssm, "SendCommand")
    state = drill.check_start(ssm, drill_settings(), state, NOW + timedelta(minutes=8))
    assert state["sent"] is True
    (sent,) = sends.params
    assert sent["Parameters"]["DumpFolder"] == [state["servers"][0]["dump"]]
    assert sent["Parameters"]["DbSecretArn"] == [state["databases"][0]["secret"]]
    answer_invocations(ssm, status, output)
    return drill.check_poll(ssm, state, NOW + timedelta(minutes=11))


def drill_settings() -> DrillSettings:
    return DrillSettings.from_env()


def test_checks_that_passed_are_phases_with_their_seconds(launched: tuple[dict[str, Any], Capture]) -> None:
    state = checked(launched[0], OUTPUT_OK)
    assert state["checks_done"] is True
    phases = {p["name"]: p for p in state["phases"]}
    assert [phases[n]["ok"] for n in ("app-check", "db-check", "dump-check")] == [True, True, True]
    assert phases["dump-check"]["seconds"] == 95
    assert "answered 42" in phases["db-check"]["detail"]


def test_a_check_that_did_not_report_fails_instead_of_being_skipped(
    launched: tuple[dict[str, Any], Capture],
) -> None:
    only_app = "SB-CHECK app ok 2 http://localhost/ answered HTTP 200"
    state = checked(launched[0], only_app, status="TimedOut")
    phases = {p["name"]: p for p in state["phases"]}
    assert phases["app-check"]["ok"] is True
    for name in ("db-check", "dump-check"):
        assert phases[name]["ok"] is False
        assert "did not run (command TimedOut" in phases[name]["detail"]


def test_teardown_deletes_everything_of_the_drill_and_nothing_else(
    launched: tuple[dict[str, Any], Capture], school: School
) -> None:
    state, _ = launched
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    state = drill.teardown(ec2, rds, state, NOW + timedelta(minutes=20))
    for _ in range(3):
        if state["gone"]:
            break
        state = drill.teardown(ec2, rds, state, NOW + timedelta(minutes=21))
    assert state["gone"] is True and state["torn_down"] is True and state["leftovers"] == []
    restored = state["servers"][0]["instance"]
    found = ec2.describe_instances(InstanceIds=[restored])["Reservations"][0]["Instances"][0]
    assert found["State"]["Name"] == "terminated"
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]] == [
        school.database
    ]
    production = ec2.describe_instances(InstanceIds=[school.server])["Reservations"][0]["Instances"][0]
    assert production["State"]["Name"] == "running"
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag:BackupJob", "Values": ["drill"]}])[
        "VpcEndpoints"
    ]
    assert all(e["State"].lower() in ("deleted", "deleting") for e in endpoints)


def _status_change(status: str, given: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's event for an execution of the drill that ended (its detail as Step Functions sends it)."""
    machine = "arn:aws:states:eu-central-2:123456789012:stateMachine:SchoolBackup-restore-drill"
    return {
        "version": "0",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "executionArn": machine.replace(":stateMachine:", ":execution:") + ":backupctl-20261127T0630Z",
            "stateMachineArn": machine,
            "name": "backupctl-20261127T0630Z",
            "status": status,
            "startDate": int(NOW.timestamp() * 1000) + 7_000,
            "stopDate": int(NOW.timestamp() * 1000) + 600_000,
            "input": json.dumps(given),
        },
    }


@pytest.mark.parametrize(
    ("status", "given"),
    [
        ("ABORTED", {"scheduled_time": "2026-11-27T06:30:00Z"}),  # a scheduled drill stopped by hand
        ("TIMED_OUT", {}),  # started without a scheduled time: plan named it after its start
    ],
)
def test_an_execution_that_ends_without_its_teardown_is_torn_down_at_once(
    launched: tuple[dict[str, Any], Capture],
    school: School,
    lambda_context: Any,
    status: str,
    given: dict[str, Any],
) -> None:
    state, _ = launched
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    assert not drill.find_drill_resources(ec2, rds, state["slot"]).empty
    result = handler(_status_change(status, given), lambda_context)
    assert result["slot"] == state["slot"] == "20261127T0630Z"
    left = drill.find_drill_resources(ec2, rds, state["slot"])
    assert left.instances == [] and left.databases == [] and left.endpoints == []
    production = ec2.describe_instances(InstanceIds=[school.server])["Reservations"][0]["Instances"][0]
    assert production["State"]["Name"] == "running"
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]] == [
        school.database
    ]


def test_a_status_change_without_any_time_is_refused_with_its_reason(lambda_context: Any) -> None:
    event = _status_change("ABORTED", {})
    del event["detail"]["startDate"]
    with pytest.raises(EventError, match="names neither a scheduled_time nor a startDate"):
        handler(event, lambda_context)


def test_the_report_lists_every_phase_the_rto_and_is_written_once(
    school: School, net: Net, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = net.settings()
    ec2, rds, s3, ssm, sns = (boto3.client(n) for n in ("ec2", "rds", "s3", "ssm", "sns"))
    state = drill.plan(ec2, rds, s3, settings, NOW)
    state = drill.launch(ec2, rds, settings, state, NOW + timedelta(seconds=20))
    state = drill.poll(ec2, rds, state, NOW + timedelta(minutes=9))
    state = drill.check_start(ssm, settings, state, NOW + timedelta(minutes=10))
    answer_invocations(ssm, "Success", OUTPUT_OK)
    state = drill.check_poll(ssm, state, NOW + timedelta(minutes=12))
    state = drill.teardown(ec2, rds, state, NOW + timedelta(minutes=13))
    while not state["gone"]:
        state = drill.teardown(ec2, rds, state, NOW + timedelta(minutes=14))
    done = drill.report(s3, sns, settings, state, NOW + timedelta(minutes=15))
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=drill_record_key(NOW))["Body"].read())
    assert done.mailed and record == done.record
    assert [p["name"] for p in record["phases"]] == list(DRILL_PHASES)
    assert record["result"] == "passed" and all(p["ok"] for p in record["phases"])
    # restored at 10 min (checks sent) + 3 + 1 + 95 s (the checks, one after the other) after the start
    assert record["rto_minutes"] == pytest.approx(11.65, abs=0.06)
    phases = {p["name"]: p for p in record["phases"]}
    assert phases["dump-check"]["started_at"] == "2026-11-27T06:40:04Z"
    assert record["rto_target_minutes"] == 240 and record["rto_met"] is True
    assert record["restored"] == {
        "ami": [state["servers"][0]["ami_name"]],
        "db_snapshot": [school.snapshot],
        "dump": [school.dump.folder],
    }
    assert record["torn_down"] is True and record["leftovers"] == []
    assert 0 < record["cost_estimate_usd"] < 1
    assert {c["name"] for c in record["checks"]} == {"app", "db", "dump"}
    (mail,) = mails(net)
    assert "passed" in mail["Subject"] and f"{record['rto_minutes']} minutes" in mail["Subject"]
    again = drill.report(s3, sns, settings, state, NOW + timedelta(minutes=30))
    assert not again.mailed and again.record == record and mails(net) == []


def test_a_failed_drill_reports_the_phase_that_was_not_reached_and_the_reason_in_german(
    net: Net, server: str, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGUAGE", "de")
    settings = net.settings()
    state = {
        "slot": "20261127T0630Z",
        "scheduled_time": "2026-11-27T06:30:00Z",
        "started_at": "2026-11-27T06:30:00Z",
        "rto_target_minutes": 240,
        "max_runtime_minutes": 360,
        "servers": [],
        "databases": [],
        "phases": [],
        "failed": True,
        "error": {"Error": "DrillFailed", "Cause": f"database {database} has no usable snapshot"},
    }
    state = drill.teardown(boto3.client("ec2"), boto3.client("rds"), state, NOW)
    done = drill.report(boto3.client("s3"), boto3.client("sns"), settings, state, NOW + timedelta(minutes=1))
    assert done.record["result"] == "failed" and done.record["rto_minutes"] is None
    phases = {p["name"]: p for p in done.record["phases"]}
    assert phases["launch"]["ok"] is False
    assert f"not reached: database {database} has no usable snapshot" in phases["launch"]["detail"]
    assert phases["teardown"]["ok"] is True
    (mail,) = mails(net)
    assert "FEHLGESCHLAGEN" in mail["Subject"]
    assert "Warum sie abbrach" in mail["Message"]


def test_cleanup_removes_old_drill_leftovers_only(school: School, net: Net, lambda_context: Any) -> None:
    ec2, rds, s3 = boto3.client("ec2"), boto3.client("rds"), boto3.client("s3")
    settings = net.settings()
    old = drill.plan(ec2, rds, s3, settings, NOW)
    old["slot"] = "20261126T2230Z"  # an older drill, stopped by hand 8 hours ago
    old["databases"][0]["instance"] = "sb-drill-20261126t2230z-0"
    with time_machine.travel(NOW - timedelta(hours=8), tick=False):
        old = drill.launch(ec2, rds, settings, old, NOW - timedelta(hours=8))
    young = drill.launch(ec2, rds, settings, drill.plan(ec2, rds, s3, settings, NOW), NOW)  # running now
    result = handler({"step": "cleanup", "scheduled_time": "2026-11-27T06:30:00Z"}, lambda_context)
    removed = set(result["removed"])
    assert old["servers"][0]["instance"] in removed and old["databases"][0]["instance"] in removed
    assert young["servers"][0]["instance"] not in removed and young["databases"][0]["instance"] not in removed
    assert school.server not in removed and school.database not in removed
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert states[old["servers"][0]["instance"]] == "terminated"
    assert states[young["servers"][0]["instance"]] == "running" and states[school.server] == "running"
    (mail,) = mails(net)
    assert "leftover" in mail["Subject"] and old["servers"][0]["instance"] in mail["Message"]


def test_nothing_the_drill_creates_is_selected_for_backup(
    launched: tuple[dict[str, Any], Capture], school: School
) -> None:
    from lambdas.common.aws.selection import selected_databases, selected_servers
    from lambdas.common.settings import SelectionTag

    state, _ = launched
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    restored = state["servers"][0]["instance"]
    ec2.create_tags(Resources=[restored], Tags=[{"Key": "Backup", "Value": "true"}])  # as if copied
    rds.add_tags_to_resource(
        ResourceName=f"arn:aws:rds:eu-central-2:123456789012:db:{state['databases'][0]['instance']}",
        Tags=[{"Key": "Backup", "Value": "true"}],
    )
    tag = SelectionTag("Backup", "true")
    assert selected_servers(ec2, tag).ids == [school.server]
    assert selected_databases(rds, tag).ids == [school.database]


# --- the state machine as synthesized, run step by step against moto -------------------------------
# moto's Step Functions cannot run Lambda tasks; this runs the synthesized definition itself: Task
# states call the real handler with the state's Parameters, Catch, Choice and Wait behave as in Step
# Functions (a Choice on a missing path is a runtime error there, and here), Wait moves the clock.


class Interpreter:
    def __init__(self, definition: dict[str, Any], clock: time_machine.Coordinates, context: Any) -> None:
        self.states, self.start = definition["States"], definition["StartAt"]
        self.clock, self.context = clock, context
        self.visited: list[str] = []

    def run(self, data: dict[str, Any], limit: int = 400) -> tuple[str, dict[str, Any]]:
        name = self.start
        for _ in range(limit):
            self.visited.append(name)
            state = self.states[name]
            kind = state["Type"]
            if kind in ("Succeed", "Fail"):
                return name, data
            if kind == "Wait":
                self.clock.shift(timedelta(seconds=state["Seconds"]))
                name = state["Next"]
            elif kind == "Choice":
                name = next(
                    (c["Next"] for c in state["Choices"] if self._holds(c, data)), state.get("Default", "")
                )
            elif kind == "Task":
                assert state["TimeoutSeconds"] <= 300, name
                payload = {
                    k.removesuffix(".$"): (data if v == "$" else v) if k.endswith(".$") else v
                    for k, v in state["Parameters"].items()
                }
                try:
                    data = handler(json.loads(json.dumps(payload)), self.context)
                except Exception as err:  # Step Functions catches every error: States.ALL
                    catch = next(c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"])
                    cause = json.dumps({"errorMessage": str(err), "errorType": type(err).__name__})
                    data = {
                        **data,
                        catch["ResultPath"].removeprefix("$."): {"Error": type(err).__name__, "Cause": cause},
                    }
                    name = catch["Next"]
                    continue
                name = state["Next"]
            else:
                raise AssertionError(f"state type {kind} is not modelled")
        raise AssertionError(f"no end after {limit} states: {self.visited[-10:]}")

    def _holds(self, rule: dict[str, Any], data: dict[str, Any]) -> bool:
        if "And" in rule:
            return all(self._holds(r, data) for r in rule["And"])
        key = rule["Variable"].removeprefix("$.")
        if "IsPresent" in rule:
            return (key in data) is rule["IsPresent"]
        if key not in data:
            raise AssertionError(f"States.Runtime: Invalid path '{rule['Variable']}' in a Choice")
        if "BooleanEquals" in rule:
            return bool(data[key] is rule["BooleanEquals"])
        return bool(data[key] == rule["StringEquals"])


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    from tests.iam.stack import stack_for

    stack = stack_for()
    (machine,) = stack.of_type("AWS::StepFunctions::StateMachine")
    parsed: dict[str, Any] = json.loads(stack.resolve(machine.properties["DefinitionString"]))
    return parsed


@pytest.fixture
def machine(
    school: School, net: Net, definition: dict[str, Any], clock: time_machine.Coordinates, lambda_context: Any
) -> Interpreter:
    """The synthesized state machine, run against moto through the real handler: a school to restore."""
    return Interpreter(definition, clock, lambda_context)


def test_the_state_machine_restores_checks_tears_down_and_passes(
    machine: Interpreter, every_client: Callable[..., None]
) -> None:
    answer_invocations(every_client, "Success", OUTPUT_OK)
    end, data = machine.run({"scheduled_time": "2026-11-27T06:30:00Z"})
    assert end == "Passed", data.get("error")
    record = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=data["record"])["Body"].read())
    assert record["result"] == "passed" and record["torn_down"] is True
    assert record["rto_minutes"] is not None and record["rto_minutes"] >= 1  # the Waits moved the clock
    assert drill.find_drill_resources(boto3.client("ec2"), boto3.client("rds")).empty


def test_a_failed_check_ends_in_teardown_and_a_failed_execution(
    machine: Interpreter, every_client: Callable[..., None]
) -> None:
    answer_invocations(every_client, "Failed", OUTPUT_OK.replace("app ok", "app failed"))
    end, data = machine.run({"scheduled_time": "2026-11-27T06:30:00Z"})
    assert end == "Failed" and "Teardown" in machine.visited
    assert data["result"] == "failed"
    assert drill.find_drill_resources(boto3.client("ec2"), boto3.client("rds")).empty


def test_an_error_in_any_step_reaches_the_teardown(
    machine: Interpreter, every_client: Callable[..., None]
) -> None:
    """The restore of the database fails after the endpoints and the server were created."""

    def refuse(**_: Any) -> None:
        raise boto3.client("rds").exceptions.StorageQuotaExceededFault(
            {"Error": {"Code": "StorageQuotaExceeded", "Message": "quota"}}, "RestoreDBInstanceFromDBSnapshot"
        )

    every_client("before-call.rds.RestoreDBInstanceFromDBSnapshot", refuse)
    end, data = machine.run({"scheduled_time": "2026-11-27T06:30:00Z"})
    assert end == "Failed" and machine.visited[machine.visited.index("Launch") + 1] == "Teardown"
    assert "StorageQuotaExceeded" in data["error"]["Cause"] or "quota" in data["error"]["Cause"]
    assert drill.find_drill_resources(boto3.client("ec2"), boto3.client("rds")).empty
    record = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=data["record"])["Body"].read())
    assert record["result"] == "failed" and record["torn_down"] is True


def test_every_task_has_a_timeout_and_every_failure_path_reaches_the_teardown(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] == "Task":
            assert 0 < state["TimeoutSeconds"] <= 300, name
            catches = {c["Next"] for c in state.get("Catch", [])}
            if name in ("Teardown", "Report"):
                assert catches == {"Report" if name == "Teardown" else "ReportFailed"}, name
            else:
                assert catches == {"Teardown"}, name
                choice = states[state["Next"]]  # each step's "failed?" choice
                assert choice["Type"] == "Choice" and any(
                    c["Next"] == "Teardown" for c in choice["Choices"]
                ), name
        if state["Type"] == "Wait":
            assert 0 < state["Seconds"] <= 120, name
    assert definition["TimeoutSeconds"] == (360 + 60) * 60


@pytest.mark.parametrize(
    ("architecture", "configured", "launched"),
    [
        ("x86_64", "t3.micro", "t3.micro"),
        ("arm64", "t3.micro", "t4g.micro"),
        ("arm64", "t3a.small", "t4g.small"),
        ("x86_64", "t4g.medium", "t3.medium"),
        ("arm64", "m7g.large", "m7g.large"),
    ],
)
def test_the_instance_type_fits_the_amis_architecture(
    architecture: str, configured: str, launched: str
) -> None:
    assert drill.instance_type_for(architecture, configured) == launched
