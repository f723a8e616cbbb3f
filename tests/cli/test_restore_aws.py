"""``backupctl restore db`` and ``restore server`` against moto: what they create, and what they refuse."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
import time_machine

from cli.backupctl import restore_common
from cli.backupctl.context import Aws
from lambdas.common.contracts import aws_tags, backup_name, backup_tags, tag_dict
from tests.cli.conftest import DB, NIGHT, REGION, Result, School

Cli = Callable[..., Result]
OnCall = Callable[[str, str, Callable[..., None]], None]

NEW = "school-db-restored"


def make_db_snapshot(rds: Any, db: str, when: datetime, *, managed: bool = True) -> str:
    name = backup_name(db, when)
    tags = backup_tags("rds-daily", db) if managed else {"Owner": "someone"}
    with time_machine.travel(when, tick=False):
        rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=name, Tags=aws_tags(tags))
    return name


def make_ami(ec2: Any, instance: str, when: datetime, *, managed: bool = True) -> str:
    with time_machine.travel(when, tick=False):
        image = ec2.create_image(InstanceId=instance, Name=backup_name(instance, when), NoReboot=True)[
            "ImageId"
        ]
    if managed:  # moto cannot tag snapshots through TagSpecifications: tag the image afterwards
        ec2.create_tags(Resources=[image], Tags=aws_tags(backup_tags("ami-weekly", instance)))
    return image


def db_instance(rds: Any, db_id: str) -> dict[str, Any]:
    found: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
    return found


def db_ids(rds: Any) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


def db_tags(rds: Any, db_id: str) -> dict[str, str]:
    return tag_dict(
        rds.list_tags_for_resource(ResourceName=db_instance(rds, db_id)["DBInstanceArn"])["TagList"]
    )


def instances(ec2: Any, **filters: str) -> list[dict[str, Any]]:
    flt = [{"Name": k.replace("_", ":"), "Values": [v]} for k, v in filters.items()]
    return [i for r in ec2.describe_instances(Filters=flt)["Reservations"] for i in r["Instances"]]


def restored_instance(ec2: Any, ami: str) -> dict[str, Any]:
    found = instances(ec2, tag_RestoredFrom=ami)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def rds(aws: None) -> Any:
    return boto3.client("rds")


@pytest.fixture
def ec2(aws: None) -> Any:
    return boto3.client("ec2")


@pytest.fixture
def on_call(monkeypatch: pytest.MonkeyPatch) -> OnCall:
    """Register a botocore event handler (``after-call.rds.DescribeDBSnapshots``...) on every client
    backupctl makes: to fake AWS states that moto does not produce, or to see what was asked."""
    handlers: list[tuple[str, str, Callable[..., None]]] = []
    original = Aws.client

    def client(self: Aws, service: str, *args: Any) -> Any:
        made = original(self, service, *args)
        for svc, event, handler in handlers:
            if svc == service:
                made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(Aws, "client", client)
    return lambda service, event, handler: handlers.append((service, event, handler))


# --- restore db -------------------------------------------------------------------------------------


def test_restore_db_takes_the_source_settings_and_not_the_backup_tag(
    school: School, cli: Cli, rds: Any, on_call: OnCall
) -> None:
    snap = make_db_snapshot(rds, DB, NIGHT)
    asked: list[dict[str, Any]] = []
    on_call(
        "rds",
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **_: asked.append(dict(params)),
    )

    result = cli("restore", "db", "--as", NEW)

    assert result.exit_code == 0, result.stderr
    # moto copies a falsy setting from the source instead of applying it: the request itself says it
    assert len(asked) == 1
    assert asked[0]["PubliclyAccessible"] is False and asked[0]["DeletionProtection"] is False
    assert asked[0]["MultiAZ"] is False and asked[0]["CopyTagsToSnapshot"] is True
    assert asked[0]["Port"] == 3306 and asked[0]["DBInstanceClass"] == "db.t4g.micro"
    new = db_instance(rds, NEW)
    assert new["DBInstanceStatus"] == "available"
    assert new["DBSubnetGroup"]["DBSubnetGroupName"] == school.db_subnet_group
    assert [g["VpcSecurityGroupId"] for g in new["VpcSecurityGroups"]] == [school.db_security_group]
    assert [p["DBParameterGroupName"] for p in new["DBParameterGroups"]] == [school.db_parameter_group]
    assert new["DBInstanceClass"] == "db.t4g.micro"
    assert new["PubliclyAccessible"] is False
    assert new["DeletionProtection"] is False
    assert new["CopyTagsToSnapshot"] is True
    assert db_tags(rds, NEW) == {"Name": f"school database (restored from {snap})", "RestoredFrom": snap}
    assert db_tags(rds, DB)["Backup"] == "true"  # the source is untouched
    endpoint = f"{new['Endpoint']['Address']}:{new['Endpoint']['Port']}"
    assert endpoint in result.stdout
    assert "NOT backed up until you tag it Backup=true" in result.stdout
    assert "--new-db-instance-identifier school-db-old" in result.stdout


def test_latest_is_the_newest_usable_schoolbackup_snapshot(
    school: School, cli: Cli, rds: Any, on_call: OnCall
) -> None:
    make_db_snapshot(rds, DB, NIGHT - timedelta(days=2))
    good = make_db_snapshot(rds, DB, NIGHT - timedelta(days=1))
    creating = make_db_snapshot(rds, DB, NIGHT)
    make_db_snapshot(rds, DB, NIGHT + timedelta(hours=1), managed=False)  # newer, but not schoolbackup's

    def still_creating(parsed: dict[str, Any], **_: Any) -> None:
        for snap in parsed.get("DBSnapshots", []):
            if snap["DBSnapshotIdentifier"] == creating:
                snap["Status"] = "creating"

    on_call("rds", "after-call.rds.DescribeDBSnapshots", still_creating)

    result = cli("restore", "db", "--snapshot", "latest", "--source", DB, "--as", NEW, "--json")

    assert result.exit_code == 0, result.stderr
    assert db_tags(rds, NEW)["RestoredFrom"] == good
    assert result.json()["from"] == good

    explicit = cli("restore", "db", "--snapshot", creating, "--as", "school-db-two")
    assert explicit.exit_code == 1
    assert f"Snapshot {creating} is still creating, so it cannot be restored" in explicit.stderr
    assert "school-db-two" not in db_ids(rds)


def test_a_snapshot_schoolbackup_did_not_make_is_refused(school: School, cli: Cli, rds: Any) -> None:
    make_db_snapshot(rds, DB, NIGHT)
    foreign = make_db_snapshot(rds, DB, NIGHT + timedelta(hours=1), managed=False)

    result = cli("restore", "db", "--snapshot", foreign, "--as", NEW)

    assert result.exit_code == 1
    assert "does not carry ManagedBy=schoolbackup" in result.stderr
    assert db_ids(rds) == {DB}


def test_an_unknown_snapshot_names_the_newest_usable_ones(school: School, cli: Cli, rds: Any) -> None:
    good = make_db_snapshot(rds, DB, NIGHT)

    result = cli("restore", "db", "--snapshot", "sb-school-db-20990101-0000", "--as", NEW)

    assert result.exit_code == 1
    assert "There is no DB snapshot sb-school-db-20990101-0000" in result.stderr
    assert good in result.stderr
    assert db_ids(rds) == {DB}


def test_an_invalid_new_name_is_bad_usage_before_any_aws_call(aws: None, cli: Cli, rds: Any) -> None:
    for name, why in [
        ("1school", "it must start with a letter"),
        ("school--db", "it must not contain two hyphens in a row"),
        ("school-db-", "it must not end with a hyphen"),
        ("school_db", "it may contain only letters, digits and hyphens"),
        ("s" * 64, "it must have 1 to 63 characters"),
    ]:
        result = cli("restore", "db", "--as", name)

        assert result.exit_code == 2, name
        assert f"--as {name!r} is not a valid RDS identifier: {why}" in result.stderr
    assert db_ids(rds) == set()


def test_an_existing_new_name_is_bad_usage(school: School, cli: Cli, rds: Any) -> None:
    make_db_snapshot(rds, DB, NIGHT)

    result = cli("restore", "db", "--as", DB)

    assert result.exit_code == 2
    assert f"A DB instance named {DB} exists already" in result.stderr
    assert db_ids(rds) == {DB}


def test_several_sources_need_source(school: School, cli: Cli, rds: Any) -> None:
    rds = boto3.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="library-db",
        DBInstanceClass="db.t4g.micro",
        Engine="mysql",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-2",
    )
    make_db_snapshot(rds, DB, NIGHT)
    make_db_snapshot(rds, "library-db", NIGHT)

    result = cli("restore", "db", "--as", NEW)

    assert result.exit_code == 2
    assert "several sources (library-db, school-db): choose one with --source" in result.stderr
    assert NEW not in db_ids(rds)

    chosen = cli("restore", "db", "--source", "library-db", "--as", NEW, "--no-wait")
    assert chosen.exit_code == 0, chosen.stderr
    assert (
        f"aws rds wait db-instance-available --region {REGION} --db-instance-identifier {NEW}"
        in chosen.stdout
    )
    assert db_tags(rds, NEW)["RestoredFrom"] == backup_name("library-db", NIGHT)

    mixed = cli("restore", "db", "--snapshot", backup_name(DB, NIGHT), "--source", "library-db", "--as", "x")
    assert mixed.exit_code == 2
    assert f"Snapshot {backup_name(DB, NIGHT)} is a backup of {DB}, not of library-db." in mixed.stderr
    assert "x" not in db_ids(rds)


def test_source_gone_needs_the_network_settings(school: School, cli: Cli, rds: Any) -> None:
    snap = make_db_snapshot(rds, DB, NIGHT)
    rds.delete_db_instance(DBInstanceIdentifier=DB, SkipFinalSnapshot=True)

    refused = cli("restore", "db", "--as", NEW)

    assert refused.exit_code == 2
    assert (
        f"The source database {DB} no longer exists, so its network settings cannot be copied: "
        "pass --subnet-group <name> and --security-group sg-..." in refused.stderr
    )
    assert db_ids(rds) == set()

    result = cli(
        "restore", "db", "--as", NEW, "--subnet-group", school.db_subnet_group,
        "--security-group", school.db_security_group, "--instance-class", "db.t4g.small", "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    new = db_instance(rds, NEW)
    assert new["DBSubnetGroup"]["DBSubnetGroupName"] == school.db_subnet_group
    assert [g["VpcSecurityGroupId"] for g in new["VpcSecurityGroups"]] == [school.db_security_group]
    assert new["DBInstanceClass"] == "db.t4g.small"
    assert new["PubliclyAccessible"] is False
    assert db_tags(rds, NEW) == {"Name": f"{DB} (restored from {snap})", "RestoredFrom": snap}
    doc = result.json()
    assert doc["source_exists"] is False and doc["settings"]["db_parameter_group"] is None
    assert "no longer exists" in result.stderr  # the note goes to stderr with --json


def test_an_unknown_subnet_group_is_bad_usage(school: School, cli: Cli, rds: Any) -> None:
    make_db_snapshot(rds, DB, NIGHT)
    rds.delete_db_instance(DBInstanceIdentifier=DB, SkipFinalSnapshot=True)

    result = cli(
        "restore", "db", "--as", NEW, "--subnet-group", "nope", "--security-group", school.db_security_group
    )

    assert result.exit_code == 2
    assert "There is no DB subnet group named nope" in result.stderr
    assert db_ids(rds) == set()


def test_restore_db_json_is_one_object(school: School, cli: Cli, rds: Any) -> None:
    snap = make_db_snapshot(rds, DB, NIGHT)

    result = cli("restore", "db", "--as", NEW, "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    new = db_instance(rds, NEW)
    assert doc["created"] == NEW and doc["from"] == snap and doc["status"] == "available"
    assert doc["endpoint"] == f"{new['Endpoint']['Address']}:{new['Endpoint']['Port']}"
    assert doc["settings"]["db_subnet_group"] == school.db_subnet_group
    assert doc["settings"]["vpc_security_groups"] == [school.db_security_group]
    assert doc["settings"]["publicly_accessible"] is False
    assert doc["backed_up"] is False
    assert "NOT backed up" in result.stderr


def test_a_restore_that_does_not_finish_in_time_says_so(
    school: School, cli: Cli, rds: Any, on_call: OnCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db_snapshot(rds, DB, NIGHT)
    clock = [0.0]
    monkeypatch.setattr(restore_common, "_now", lambda: clock[0])
    monkeypatch.setattr(restore_common, "_sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))

    def creating(parsed: dict[str, Any], **_: Any) -> None:
        for db in parsed.get("DBInstances", []):
            if db["DBInstanceIdentifier"] == NEW:
                db["DBInstanceStatus"] = "creating"

    on_call("rds", "after-call.rds.DescribeDBInstances", creating)

    result = cli("restore", "db", "--as", NEW, "--timeout-minutes", "2")

    assert result.exit_code == 1
    assert f"{NEW} is still creating after 2 minutes; it keeps going on its own" in result.stderr
    assert clock[0] == 120
    assert NEW in db_ids(rds)  # the request stands


# --- restore server ---------------------------------------------------------------------------------


def test_restore_server_takes_the_source_settings_imdsv2_only(school: School, cli: Cli, ec2: Any) -> None:
    ami = make_ami(ec2, school.server, NIGHT)
    address = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=school.server)

    result = cli("restore", "server")

    assert result.exit_code == 0, result.stderr
    new = restored_instance(ec2, ami)
    assert new["State"]["Name"] == "running"
    assert new["ImageId"] == ami
    assert new["InstanceType"] == "t4g.small"
    assert new["SubnetId"] == school.subnet
    assert [g["GroupId"] for g in new["SecurityGroups"]] == [school.security_group]
    assert new["IamInstanceProfile"]["Arn"] == school.instance_profile_arn
    assert new["MetadataOptions"]["HttpTokens"] == "required"
    assert new["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert tag_dict(new["Tags"]) == {"Name": f"web (restored from {ami})", "RestoredFrom": ami}
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [new["InstanceId"]]}]
    )
    assert [tag_dict(v["Tags"]) for v in volumes["Volumes"]] == [tag_dict(new["Tags"])]
    assert new["InstanceId"] in result.stdout and new["PrivateIpAddress"] in result.stdout
    assert (
        f"aws ec2 associate-address --region {REGION} --allocation-id {address['AllocationId']} "
        f"--instance-id {new['InstanceId']} --allow-reassociation"
    ) in result.stdout
    assert f"--resources {new['InstanceId']} --tags Key=Backup,Value=true" in result.stdout


def test_a_server_that_does_not_start_says_why(school: School, cli: Cli, ec2: Any, on_call: OnCall) -> None:
    ami = make_ami(ec2, school.server, NIGHT)

    def terminated(parsed: dict[str, Any], **_: Any) -> None:
        for reservation in parsed.get("Reservations", []):
            for instance in reservation["Instances"]:
                if instance["ImageId"] == ami:
                    instance["State"] = {"Code": 48, "Name": "terminated"}
                    instance["StateReason"] = {"Message": "Server.InsufficientInstanceCapacity"}

    on_call("ec2", "after-call.ec2.DescribeInstances", terminated)

    result = cli("restore", "server")

    assert result.exit_code == 1
    new = restored_instance(ec2, ami)["InstanceId"]
    assert (
        f"{new} is terminated instead of running (Server.InsufficientInstanceCapacity): "
        f"see aws ec2 describe-instances --region {REGION} --instance-ids {new}"
    ) in result.stderr


def test_latest_ami_is_the_newest_usable_one(school: School, cli: Cli, ec2: Any, on_call: OnCall) -> None:
    good = make_ami(ec2, school.server, NIGHT - timedelta(days=7))
    pending = make_ami(ec2, school.server, NIGHT)
    make_ami(ec2, school.server, NIGHT + timedelta(days=1), managed=False)
    pending_snaps = {
        m["Ebs"]["SnapshotId"]
        for m in ec2.describe_images(ImageIds=[pending])["Images"][0]["BlockDeviceMappings"]
    }

    def snapshot_pending(parsed: dict[str, Any], **_: Any) -> None:
        for snap in parsed.get("Snapshots", []):
            if snap["SnapshotId"] in pending_snaps:
                snap["State"] = "pending"

    on_call("ec2", "after-call.ec2.DescribeSnapshots", snapshot_pending)

    result = cli("restore", "server", "--ami", "latest", "--source", school.server, "--no-wait", "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json()["from"] == good
    restored_instance(ec2, good)

    explicit = cli("restore", "server", "--ami", pending)
    assert explicit.exit_code == 1
    assert f"AMI {pending} has EBS snapshot(s) still pending, so it cannot be restored" in explicit.stderr
    assert instances(ec2, tag_RestoredFrom=pending) == []


def test_isolated_server_gets_a_group_without_any_rule_and_no_profile(
    school: School, cli: Cli, ec2: Any
) -> None:
    ami = make_ami(ec2, school.server, NIGHT)

    result = cli("restore", "server", "--isolated", "--json")

    assert result.exit_code == 0, result.stderr
    name = f"schoolbackup-isolated-{school.server}"
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])[
        "SecurityGroups"
    ]
    assert len(groups) == 1
    group = groups[0]
    assert group["VpcId"] == school.vpc
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    assert tag_dict(group["Tags"])["ManagedBy"] == "schoolbackup"
    new = restored_instance(ec2, ami)
    assert [g["GroupId"] for g in new["SecurityGroups"]] == [group["GroupId"]]
    assert "IamInstanceProfile" not in new
    assert new["MetadataOptions"]["HttpTokens"] == "required"
    doc = result.json()
    assert doc["created"] == new["InstanceId"] and doc["isolated"] is True
    assert doc["settings"]["security_groups"] == [group["GroupId"]]
    assert doc["settings"]["instance_profile_arn"] is None
    leave = f"--instance-id {new['InstanceId']} --groups {school.security_group}"
    assert any(leave in step for step in doc["next_steps"])

    again = cli("restore", "server", "--isolated")  # the group is reused, still without rules
    assert again.exit_code == 0, again.stderr
    assert (
        len(
            ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        )
        == 1
    )
    assert len(instances(ec2, tag_RestoredFrom=ami)) == 2


def test_isolated_does_not_reuse_a_group_schoolbackup_did_not_make(
    school: School, cli: Cli, ec2: Any
) -> None:
    ami = make_ami(ec2, school.server, NIGHT)
    foreign = ec2.create_security_group(
        GroupName=f"schoolbackup-isolated-{school.server}", Description="someone's", VpcId=school.vpc
    )["GroupId"]

    result = cli("restore", "server", "--isolated")

    assert result.exit_code == 1
    assert f"({foreign}) exists in {school.vpc} but does not carry ManagedBy=schoolbackup" in result.stderr
    assert ec2.describe_security_groups(GroupIds=[foreign])["SecurityGroups"][0]["IpPermissionsEgress"] != []
    assert instances(ec2, tag_RestoredFrom=ami) == []


def test_unknown_and_foreign_amis_are_refused(school: School, cli: Cli, ec2: Any) -> None:
    good = make_ami(ec2, school.server, NIGHT)
    foreign = make_ami(ec2, school.server, NIGHT + timedelta(days=1), managed=False)
    before = len(instances(ec2))

    unknown = cli("restore", "server", "--ami", "ami-12345678")
    untagged = cli("restore", "server", "--ami", foreign)
    malformed = cli("restore", "server", "--ami", "web-server")

    assert unknown.exit_code == 1
    assert "There is no AMI ami-12345678" in unknown.stderr and good in unknown.stderr
    assert untagged.exit_code == 1
    assert f"AMI {foreign} does not carry ManagedBy=schoolbackup" in untagged.stderr
    assert malformed.exit_code == 2
    assert "is not an AMI id" in malformed.stderr
    assert len(instances(ec2)) == before
    assert ec2.describe_images(ImageIds=[foreign])["Images"][0]["State"] == "available"


def test_source_server_gone_needs_subnet_and_type(school: School, cli: Cli, ec2: Any) -> None:
    ami = make_ami(ec2, school.server, NIGHT)
    ec2.terminate_instances(InstanceIds=[school.server])

    refused = cli("restore", "server")

    assert refused.exit_code == 2
    assert (
        f"The source server {school.server} is terminated, so its settings cannot be copied: "
        "pass --subnet-id subnet-... and --instance-type t4g.small" in refused.stderr
    )
    assert instances(ec2, tag_RestoredFrom=ami) == []

    result = cli(
        "restore", "server", "--subnet-id", school.subnet, "--instance-type", "t4g.medium",
        "--security-group", school.security_group,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    new = restored_instance(ec2, ami)
    assert new["InstanceType"] == "t4g.medium" and new["SubnetId"] == school.subnet
    assert [g["GroupId"] for g in new["SecurityGroups"]] == [school.security_group]
    assert "IamInstanceProfile" not in new
    assert tag_dict(new["Tags"])["Name"] == f"web (restored from {ami})"


def test_restore_server_json_is_one_object(school: School, cli: Cli, ec2: Any) -> None:
    ami = make_ami(ec2, school.server, NIGHT)

    result = cli("restore", "server", "--json")

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    new = restored_instance(ec2, ami)
    assert doc["created"] == new["InstanceId"] and doc["from"] == ami and doc["status"] == "running"
    assert doc["endpoint"] == new["PrivateIpAddress"]
    assert doc["settings"]["instance_type"] == "t4g.small"
    assert doc["settings"]["instance_profile_arn"] == school.instance_profile_arn
    assert doc["elastic_ips"] == []
    assert "is running" in result.stderr
