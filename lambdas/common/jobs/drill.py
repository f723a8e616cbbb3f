"""The restore drill: restore the school (server, database, files) into isolation, check it, measure it.

The state machine (infra/drill.py) calls one step at a time; each step takes the drill's state (a JSON
object), does a few seconds of work and returns the new state; the state machine waits between
polls, never a Lambda. The steps:

- ``plan``: the newest **usable** AMI and dump of every selected server and the newest usable RDS
  snapshot of every selected database (the state table, as verify judges them). None: the drill fails.
- ``launch``: the server from its AMI into the drill's isolated subnet (drill security group, no
  public IP, IMDSv2 required, the drill's SSM-only instance profile, never the server's own role),
  the database from its snapshot as a non-public, single-AZ instance of the smallest class with backup
  retention 0, and the SSM/Secrets Manager interface endpoints the restored server needs in a VPC
  without internet. Everything is tagged ``ManagedBy=schoolbackup``, ``BackupJob=drill``,
  ``DrillSlot=<slot>``; client tokens make a repeated launch create nothing twice.
- ``poll``: server running, database available, endpoints available (or the drill's deadline passed).
- ``check_start`` / ``check_poll``: the check document on each restored server: the web server answers
  on localhost (2xx/3xx), the restored database answers the configured SQL, the newest dump's database
  part loads into a scratch database of the restored instance after its checksum matched the
  manifest. A check that did not report is a failure, never a skip.
- ``teardown`` (again until nothing is left): everything tagged with the drill's slot is deleted,
  found by its tags (not by the state, which a failed step may not have returned).
- ``report``: ``reports/drills/<slot>.json`` written once, the metrics, the summary mail.
- ``cleanup`` (daily, not part of a drill): drill resources older than the drill's maximum runtime
  (a drill stopped by hand, a teardown that gave up) are removed and reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from lambdas.common.aws import clients
from lambdas.common.aws.errors import error_code, error_text
from lambdas.common.aws.mail import publish_to_topic
from lambdas.common.aws.records import read_record, write_record_once
from lambdas.common.aws.selection import selected_databases, selected_servers
from lambdas.common.contracts import (
    DRILL_PHASES,
    DRILL_SLOT_KEY,
    DRILL_STOPPED_EVENT,
    JOB_DRILL,
    JOB_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    SOURCE_KEY,
    EventError,
    State,
    aws_tags,
    backup_tags,
    drill_db_identifier,
    drill_record_key,
    dump_folder,
    parse_report_stamp,
    parse_time,
    report_stamp,
    scheduled_time,
    tag_dict,
)
from lambdas.common.jobs.verify import ami_backups, dump_backups, dump_lookback_days, rds_backups
from lambdas.common.messages import say
from lambdas.common.observability import logger
from lambdas.common.settings import DrillSettings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient

DrillState = dict[str, Any]

# The interface endpoints the restored server needs in a VPC without internet (SSM agent, the DB secret).
ENDPOINT_SERVICES: Final = ("ssm", "ssmmessages", "ec2messages", "secretsmanager")
# The waits before the checks end this long before the drill's maximum runtime: teardown needs time too.
TEARDOWN_RESERVE: Final = timedelta(minutes=45)
TEARDOWN_LIMIT: Final = timedelta(minutes=40)  # then the drill stops waiting and reports the leftovers
CHECK_TIMEOUT_SECONDS: Final = 1800  # the check command on the restored server
CHECK_MARK: Final = "SB-CHECK"  # each check prints: SB-CHECK <name> <ok|failed> <seconds> <detail>
CHECKS: Final = ("app", "db", "dump")
_PHASE_OF_CHECK: Final = {"app": "app-check", "db": "db-check", "dump": "dump-check"}
_DONE_COMMAND: Final = ("Success", "Failed", "TimedOut", "Cancelled", "Cancelling")

# On-demand USD per hour (eu-central region list prices, 2026): an estimate, said to be one.
HOURLY_USD: Final[Mapping[str, float]] = {
    "t3.nano": 0.006,
    "t3.micro": 0.012,
    "t3.small": 0.024,
    "t3.medium": 0.048,
    "t4g.micro": 0.0096,
    "t4g.small": 0.0192,
    "db.t3.micro": 0.02,
    "db.t3.small": 0.04,
    "db.t4g.micro": 0.018,
    "db.t4g.small": 0.036,
}
ENDPOINT_HOURLY_USD: Final = 0.012  # per interface endpoint and AZ


class DrillFailed(RuntimeError):
    """The drill cannot go on; the message says why in plain words. The handler returns it as the
    state's ``error`` (an expected outcome, not a Lambda error), and the state machine tears down.
    ``state``: the state to go on with (plan's, which the input does not have yet)."""

    def __init__(self, message: str, state: DrillState | None = None) -> None:
        super().__init__(message)
        self.state = state


# --- the state ------------------------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _slot_tags(state: DrillState, source: str) -> dict[str, str]:
    return {
        **backup_tags(JOB_DRILL, source),
        DRILL_SLOT_KEY: state["slot"],
        "Name": f"schoolbackup drill {source}",
    }


def _phase(
    state: DrillState, name: str, started: datetime, ended: datetime, *, ok: bool, detail: str
) -> None:
    """Record (or replace) one phase: when it started, how long it took, whether it went well."""
    phases = [p for p in state.setdefault("phases", []) if p["name"] != name]
    phases.append(
        {
            "name": name,
            "started_at": _iso(started),
            "seconds": max(0, round((ended - started).total_seconds())),
            "ok": ok,
            "detail": detail,
        }
    )
    order = {n: i for i, n in enumerate(DRILL_PHASES)}
    state["phases"] = sorted(phases, key=lambda p: order.get(p["name"], len(order)))


def _has_phase(state: DrillState, name: str) -> bool:
    return any(p["name"] == name for p in state.get("phases", []))


def _time(state: DrillState, key: str) -> datetime:
    return parse_time(state[key])


def deadline(state: DrillState) -> datetime:
    """When the drill stops waiting for the restore and tears down instead."""
    return _time(state, "started_at") + timedelta(minutes=state["max_runtime_minutes"]) - TEARDOWN_RESERVE


def _past_deadline(state: DrillState, now: datetime, waiting_for: str) -> None:
    if now >= deadline(state):
        raise DrillFailed(
            f"{waiting_for} was not ready {state['max_runtime_minutes']} minutes minus the teardown's "
            f"{int(TEARDOWN_RESERVE.total_seconds() // 60)} minutes after the drill started"
        )


# --- plan -----------------------------------------------------------------------------------------


def plan(ec2: EC2Client, rds: RDSClient, s3: S3Client, settings: DrillSettings, now: datetime) -> DrillState:
    """What the drill restores: the newest usable backups of every selected server and database."""
    verify = settings.verify
    slot = report_stamp(now)
    state: DrillState = {
        "slot": slot,
        "scheduled_time": _iso(now),
        "started_at": _iso(now),
        "rto_target_minutes": settings.rto_target_minutes,
        "max_runtime_minutes": settings.max_runtime_minutes,
        "instance_type": settings.instance_type,
        "db_instance_class": settings.db_instance_class,
        "servers": [],
        "databases": [],
        "phases": [],
        "checks": [],
    }
    servers = selected_servers(ec2, verify.selection.tag, verify.selection.ec2_instance_ids)
    databases = selected_databases(rds, verify.selection.tag, verify.selection.rds_instance_ids)
    if not servers.ids and not databases.ids:
        raise DrillFailed("nothing is selected for backup, so there is nothing to restore", state)
    images = ami_backups(ec2)
    snapshots = rds_backups(rds)
    problems: list[str] = []
    for source in servers.ids:
        image = _newest_usable(images.get(source, []))
        if image is None:
            problems.append(f"server {source} has no usable AMI")
            continue
        ami_id, architecture = _image(ec2, image)
        entry: dict[str, Any] = {
            "source": source,
            "ami": ami_id,
            "ami_name": image,
            "instance_type": instance_type_for(architecture, settings.instance_type),
        }
        if verify.dump_enabled:
            days = dump_lookback_days(verify.targets.dump_max_age_hours)
            good = next(
                (d for d in dump_backups(s3, verify.bucket, source, now, days) if d.state is State.USABLE),
                None,
            )
            if good is None:
                problems.append(f"server {source} has no usable dump in the last {days} days")
            else:
                entry["dump"] = dump_folder(source, parse_report_stamp(good.id))  # verify names it by stamp
        state["servers"].append(entry)
    for source in databases.ids:
        snap = _newest_usable(snapshots.get(source, []))
        if snap is None:
            problems.append(f"database {source} has no usable snapshot")
            continue
        index = len(state["databases"])
        state["databases"].append(
            {"source": source, "snapshot": snap, "instance": drill_db_identifier(slot, index)}
        )
    if problems:
        raise DrillFailed("; ".join(problems), state)
    return state


def _newest_usable(backups: Iterable[Any]) -> str | None:
    usable = sorted((b for b in backups if b.state is State.USABLE), key=lambda b: b.created, reverse=True)
    return usable[0].id if usable else None


def _image(ec2: EC2Client, name: str) -> tuple[str, str]:
    """(id, architecture) of the AMI verify named (it names AMIs by their name; the drill launches by id)."""
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]).get(
        "Images", []
    )
    managed = [i for i in images if tag_dict(i.get("Tags")).get(MANAGED_BY_KEY) == MANAGED_BY_VALUE]
    if not managed:
        raise DrillFailed(f"the AMI {name} is no longer there")
    return managed[0]["ImageId"], str(managed[0].get("Architecture", "x86_64"))


# The burstable families of each architecture: a t3 size for an arm64 (Graviton) AMI is its t4g size.
_FAMILY_FOR: Final = {"arm64": {"t3": "t4g", "t3a": "t4g"}, "x86_64": {"t4g": "t3"}}


def instance_type_for(architecture: str, configured: str) -> str:
    """The configured instance type, or its counterpart for the AMI's architecture (an x86 type cannot
    boot an arm64 AMI: RunInstances refuses it)."""
    family, _, size = configured.partition(".")
    other = _FAMILY_FOR.get(architecture, {}).get(family)
    return f"{other}.{size}" if other else configured


# --- launch ---------------------------------------------------------------------------------------


def launch(
    ec2: EC2Client, rds: RDSClient, settings: DrillSettings, state: DrillState, now: datetime
) -> DrillState:
    """Start everything the drill restores; idempotent for the slot (client tokens, fixed DB ids)."""
    net = settings.network
    started = now
    state["launched_at"] = _iso(now)
    region = ec2.meta.region_name
    for svc in ENDPOINT_SERVICES:
        found = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=net.vpc_id,
            ServiceName=f"com.amazonaws.{region}.{svc}",
            SubnetIds=[net.subnet_ids[0]],
            SecurityGroupIds=[net.endpoint_security_group],
            PrivateDnsEnabled=True,
            ClientToken=f"sb-drill-{state['slot']}-{svc}",
            TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": aws_tags(_slot_tags(state, svc))}],
        )
        state.setdefault("endpoints", {})[svc] = found["VpcEndpoint"]["VpcEndpointId"]
    for server in state["servers"]:
        existing = _launched_before(ec2, state["slot"], server["source"])
        if existing:  # a repeated launch of this drill (a retried step): nothing twice
            server["instance"] = existing
            continue
        server_tags = aws_tags(_slot_tags(state, server["source"]))
        reservation = ec2.run_instances(
            ImageId=server["ami"],
            InstanceType=server.get("instance_type", settings.instance_type),
            MinCount=1,
            MaxCount=1,
            ClientToken=f"sb-drill-{state['slot']}-{server['source']}",
            NetworkInterfaces=[
                {
                    "DeviceIndex": 0,
                    "SubnetId": net.subnet_ids[0],
                    "Groups": [net.server_security_group],
                    "AssociatePublicIpAddress": False,
                    "DeleteOnTermination": True,
                }
            ],
            IamInstanceProfile={"Name": settings.instance_profile},
            MetadataOptions={
                "HttpTokens": "required",
                "HttpEndpoint": "enabled",
                "HttpPutResponseHopLimit": 1,
            },
            InstanceInitiatedShutdownBehavior="terminate",
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": server_tags},
                {"ResourceType": "volume", "Tags": server_tags},
            ],
        )
        server["instance"] = reservation["Instances"][0]["InstanceId"]
    for db in state["databases"]:
        db_tags = aws_tags(_slot_tags(state, db["source"]))
        try:
            rds.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=db["instance"],
                DBSnapshotIdentifier=db["snapshot"],
                DBInstanceClass=settings.db_instance_class,
                DBSubnetGroupName=net.db_subnet_group,
                VpcSecurityGroupIds=[net.db_security_group],
                PubliclyAccessible=False,
                MultiAZ=False,
                BackupRetentionPeriod=0,  # no baseline backup holding the instance in backing-up for hours
                # A new master password that RDS keeps in Secrets Manager (and deletes with the instance):
                # the checks use it; the production credentials are never needed.
                ManageMasterUserPassword=True,
                DeletionProtection=False,
                CopyTagsToSnapshot=False,
                AutoMinorVersionUpgrade=False,
                Tags=db_tags,
            )
        except ClientError as err:
            if error_code(err) != "DBInstanceAlreadyExists":
                raise
    _phase(state, "launch", started, now, ok=True, detail=_launched_text(state))
    return state


def _launched_before(ec2: EC2Client, slot: str, source: str) -> str | None:
    filters: list[Any] = [
        *_drill_filters(slot),
        {"Name": f"tag:{SOURCE_KEY}", "Values": [source]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]
    for reservation in ec2.describe_instances(Filters=filters).get("Reservations", []):
        for instance in reservation.get("Instances", []):
            return instance["InstanceId"]
    return None


def _launched_text(state: DrillState) -> str:
    parts = [f"server {s['source']} from {s['ami_name']} as {s.get('instance')}" for s in state["servers"]]
    parts += [f"database {d['source']} from {d['snapshot']} as {d['instance']}" for d in state["databases"]]
    return "; ".join(parts)


# --- poll -----------------------------------------------------------------------------------------


_DEAD_SERVER: Final = ("terminated", "shutting-down", "stopped", "stopping", "missing")
_DEAD_DB: Final = ("failed", "incompatible-restore", "incompatible-parameters", "storage-full", "deleting")


def poll(ec2: EC2Client, rds: RDSClient, state: DrillState, now: datetime) -> DrillState:
    """Is everything up? Records instance-running and db-available when first seen; fails on a dead end."""
    launched = _time(state, "launched_at")
    servers = _servers_waiting(ec2, state)
    if not servers and not _has_phase(state, "instance-running"):
        n = len(state["servers"])
        detail = f"{n} server(s) running" if n else "no server is selected for backup"
        _phase(state, "instance-running", launched, now, ok=True, detail=detail)
    databases = _databases_waiting(rds, state)
    if not databases and not _has_phase(state, "db-available"):
        n = len(state["databases"])
        detail = f"{n} database(s) available" if n else "no database is selected for backup"
        _phase(state, "db-available", launched, now, ok=True, detail=detail)
    waiting = servers + databases + _endpoints_waiting(ec2, state)
    state["ready"] = not waiting
    if waiting:
        _past_deadline(state, now, ", ".join(waiting))
    return state


def _servers_waiting(ec2: EC2Client, state: DrillState) -> list[str]:
    ids = [s["instance"] for s in state["servers"] if s.get("instance")]
    if not ids:
        return []
    found = {
        i["InstanceId"]: i
        for r in ec2.describe_instances(InstanceIds=ids).get("Reservations", [])
        for i in r.get("Instances", [])
    }
    waiting: list[str] = []
    for instance in ids:
        name = found.get(instance, {}).get("State", {}).get("Name", "missing")
        if name in _DEAD_SERVER:
            reason = found.get(instance, {}).get("StateReason", {}).get("Message", "")
            raise DrillFailed(f"the restored server {instance} is {name}" + (f": {reason}" if reason else ""))
        if name != "running":
            waiting.append(f"server {instance} ({name})")
    return waiting


def _databases_waiting(rds: RDSClient, state: DrillState) -> list[str]:
    waiting: list[str] = []
    for db in state["databases"]:
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=db["instance"])["DBInstances"][0]
        except ClientError as err:
            if error_code(err) == "DBInstanceNotFound":
                raise DrillFailed(f"the restored database {db['instance']} disappeared") from err
            raise
        status = found.get("DBInstanceStatus", "unknown")
        if status in _DEAD_DB:
            raise DrillFailed(f"the restored database {db['instance']} is {status}")
        if status != "available":
            waiting.append(f"database {db['instance']} ({status})")
            continue
        endpoint = found.get("Endpoint", {})
        db["host"], db["port"] = endpoint.get("Address", ""), endpoint.get("Port", 0)
        db["engine"] = found.get("Engine", "")
        db["secret"] = found.get("MasterUserSecret", {}).get("SecretArn", "")
    return waiting


def _endpoints_waiting(ec2: EC2Client, state: DrillState) -> list[str]:
    endpoints = list(state.get("endpoints", {}).values())
    if not endpoints:
        return []
    found = ec2.describe_vpc_endpoints(VpcEndpointIds=endpoints).get("VpcEndpoints", [])
    return [
        f"endpoint {ep['VpcEndpointId']} ({ep.get('State')})"
        for ep in found
        if str(ep.get("State", "")).lower() != "available"
    ]


# --- checks ---------------------------------------------------------------------------------------


def check_parameters(state: DrillState, server: Mapping[str, Any]) -> dict[str, list[str]]:
    """The check document's parameters for one restored server: where the restored database is and
    which dump to load (ids and host names only; the SQL and the URL are constants of the document,
    the password is fetched by the script from the secret RDS made for the restored instance)."""
    db = state["databases"][0] if state["databases"] else {}
    return {
        "DbHost": [str(db.get("host", ""))],
        "DbPort": [str(db.get("port", "") or "")],
        "DbSecretArn": [str(db.get("secret", ""))],
        "DumpFolder": [str(server.get("dump", ""))],
    }


def check_start(ssm: SSMClient, settings: DrillSettings, state: DrillState, now: datetime) -> DrillState:
    """Send the check command to every restored server whose SSM agent has registered."""
    state.setdefault("checks_started_at", _iso(now))
    for server in state["servers"]:
        if server.get("command"):
            continue
        try:
            sent = ssm.send_command(
                DocumentName=settings.check_document,
                InstanceIds=[server["instance"]],
                Parameters=check_parameters(state, server),
                TimeoutSeconds=CHECK_TIMEOUT_SECONDS,
                Comment=f"schoolbackup restore drill {state['slot']}",
            )
        except ClientError as err:
            if error_code(err) != "InvalidInstanceId":  # the agent has not registered yet
                raise
            continue
        server["command"] = sent["Command"]["CommandId"]
    state["sent"] = all(s.get("command") for s in state["servers"])
    if not state["sent"]:
        _past_deadline(state, now, "the SSM agent of the restored server")
    if not state["servers"]:
        _record_checks(state, {}, now)
    return state


def parse_check_output(text: str) -> dict[str, tuple[bool, float, str]]:
    """``SB-CHECK <name> <ok|failed> <seconds> <detail>`` lines of the check script."""
    found: dict[str, tuple[bool, float, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split(" ", 4)
        if len(parts) < 4 or parts[0] != CHECK_MARK or parts[1] not in CHECKS:
            continue
        try:
            seconds = float(parts[3])
        except ValueError:
            seconds = 0.0
        found[parts[1]] = (parts[2] == "ok", seconds, parts[4] if len(parts) > 4 else "")
    return found


def check_poll(ssm: SSMClient, state: DrillState, now: datetime) -> DrillState:
    """Collect the checks' results once every command finished; a check that did not report failed."""
    results: dict[str, dict[str, tuple[bool, float, str]]] = {}
    for server in state["servers"]:
        try:
            inv = ssm.get_command_invocation(CommandId=server["command"], InstanceId=server["instance"])
        except ClientError as err:
            if error_code(err) == "InvocationDoesNotExist":  # not yet delivered
                state["checks_done"] = False
                return state
            raise
        status = inv.get("Status", "Pending")
        if status not in _DONE_COMMAND:
            state["checks_done"] = False
            _past_deadline(state, now, "the checks on the restored server")
            return state
        found = parse_check_output(inv.get("StandardOutputContent", ""))
        for name in CHECKS:
            if name not in found:
                why = inv.get("StandardErrorContent", "").strip().splitlines()
                found[name] = (
                    False,
                    0.0,
                    f"did not run (command {status}" + (f": {why[-1][:200]}" if why else "") + ")",
                )
        results[server["instance"]] = found
    _record_checks(state, results, now)
    return state


def _record_checks(
    state: DrillState, results: Mapping[str, Mapping[str, tuple[bool, float, str]]], now: datetime
) -> None:
    # The script runs the checks one after the other: each phase starts where the one before ended.
    start = _time(state, "checks_started_at") if "checks_started_at" in state else now
    checks: list[dict[str, Any]] = []
    for name in CHECKS:
        oks: list[bool] = []
        details: list[str] = []
        seconds = 0.0
        for instance, found in results.items() if name == "app" or _applies(state, name) else ():
            ok, took, detail = found[name]
            oks.append(ok)
            seconds = max(seconds, took)
            details.append(f"{instance}: {detail}" if len(results) > 1 else detail)
            checks.append({"name": name, "instance": instance, "ok": ok, "seconds": took, "detail": detail})
        if not oks:
            why = _not_applicable(state, name)
            _phase(state, _PHASE_OF_CHECK[name], start, start, ok=True, detail=why)
            continue
        end = start + timedelta(seconds=seconds)
        _phase(state, _PHASE_OF_CHECK[name], start, end, ok=all(oks), detail="; ".join(details))
        start = end
    state["checks"] = checks
    state["checks_done"] = True
    state["checks_finished_at"] = _iso(now)


def _applies(state: DrillState, check: str) -> bool:
    if check == "db":
        return bool(state["databases"])
    if check == "dump":
        return bool(state["databases"]) and any(s.get("dump") for s in state["servers"])
    return bool(state["servers"])


def _not_applicable(state: DrillState, check: str) -> str:
    if not state["servers"]:
        return "no server is selected, so nothing runs the checks"
    if check == "db":
        return "no database is selected for backup"
    return "no dump to check (the dump is switched off, or no database to load it into)"


# --- teardown -------------------------------------------------------------------------------------


@dataclass
class Remaining:
    """What a drill (or several) left: by kind, the ids."""

    instances: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.instances or self.databases or self.endpoints or self.volumes)

    def as_list(self) -> list[str]:
        return [*self.instances, *self.databases, *self.endpoints, *self.volumes]


def _drill_filters(slot: str | None) -> list[Any]:
    filters: list[Any] = [
        {"Name": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]},
        {"Name": f"tag:{JOB_KEY}", "Values": [JOB_DRILL]},
    ]
    if slot:
        filters.append({"Name": f"tag:{DRILL_SLOT_KEY}", "Values": [slot]})
    return filters


def _is_drill_db(tags: Mapping[str, str], identifier: str, slot: str | None) -> bool:
    return (
        identifier.startswith(f"{NAME_PREFIX}drill-")
        and tags.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE
        and tags.get(JOB_KEY) == JOB_DRILL
        and (slot is None or tags.get(DRILL_SLOT_KEY) == slot)
    )


def find_drill_resources(
    ec2: EC2Client, rds: RDSClient, slot: str | None = None, older_than: datetime | None = None
) -> Remaining:
    """Everything tagged ``BackupJob=drill`` (and ``ManagedBy=schoolbackup``) that still exists, of one
    drill (``slot``) or of any; ``older_than``: only what was created before that time."""

    def old(when: datetime | None) -> bool:
        return older_than is None or when is None or when < older_than

    filters = _drill_filters(slot)
    instances = [
        inst["InstanceId"]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
        for reservation in page.get("Reservations", [])
        for inst in reservation.get("Instances", [])
        if inst.get("State", {}).get("Name") != "terminated" and old(inst.get("LaunchTime"))
    ]
    databases = [
        db["DBInstanceIdentifier"]
        for page in rds.get_paginator("describe_db_instances").paginate()
        for db in page.get("DBInstances", [])
        if _is_drill_db(tag_dict(db.get("TagList")), db["DBInstanceIdentifier"], slot)
        and old(db.get("InstanceCreateTime"))
    ]
    endpoints = [
        ep["VpcEndpointId"]
        for page in ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=filters)
        for ep in page.get("VpcEndpoints", [])
        if str(ep.get("State", "")).lower() not in ("deleted", "deleting")
        and old(ep.get("CreationTimestamp"))
    ]
    volumes = [
        vol["VolumeId"]
        for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters)
        for vol in page.get("Volumes", [])
        if vol.get("State") != "deleted" and old(vol.get("CreateTime"))
    ]
    return Remaining(instances, databases, endpoints, volumes)


def remove(ec2: EC2Client, rds: RDSClient, found: Remaining) -> list[str]:
    """Ask AWS to delete each; returns problems (an instance still creating is deleted on the next call)."""
    problems: list[str] = []
    if found.instances:
        ec2.terminate_instances(InstanceIds=found.instances)
    for db in found.databases:
        try:
            rds.delete_db_instance(
                DBInstanceIdentifier=db, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
        except ClientError as err:
            if error_code(err) not in ("InvalidDBInstanceState", "DBInstanceNotFound"):
                problems.append(f"{db}: {error_text(err)}")
    if found.endpoints:
        ec2.delete_vpc_endpoints(VpcEndpointIds=found.endpoints)
    for volume in found.volumes:
        try:
            ec2.delete_volume(VolumeId=volume)
        except ClientError as err:
            if error_code(err) not in ("VolumeInUse", "InvalidVolume.NotFound", "IncorrectState"):
                problems.append(f"{volume}: {error_text(err)}")
    return problems


def ensure_slot(state: DrillState, now: datetime) -> DrillState:
    """A state that plan never returned (it crashed): the slot and times from the scheduled time."""
    if "slot" not in state:
        when = scheduled_time(state, now)
        state.update(slot=report_stamp(when), scheduled_time=_iso(when), started_at=_iso(when))
    state.setdefault("servers", [])
    state.setdefault("databases", [])
    return state


def teardown(ec2: EC2Client, rds: RDSClient, state: DrillState, now: datetime) -> DrillState:
    """Delete what is left of this drill; ``gone`` when nothing is, or when the teardown gave up."""
    ensure_slot(state, now)
    state.setdefault("teardown_started_at", _iso(now))
    started = _time(state, "teardown_started_at")
    left = find_drill_resources(ec2, rds, state["slot"])
    # A terminated instance's volumes become deletable only then: ask again on every call.
    problems = remove(ec2, rds, left) if not left.empty else []
    instances_only = not (left.databases or left.endpoints or left.volumes)
    if left.empty or (instances_only and _all_terminating(ec2, left.instances)):
        _phase(state, "teardown", started, now, ok=True, detail="everything the drill created is deleted")
        state.update(gone=True, torn_down=True, leftovers=[])
    elif now - started >= TEARDOWN_LIMIT:
        detail = f"still there after {int(TEARDOWN_LIMIT.total_seconds() // 60)} minutes: {', '.join(left.as_list())}"
        detail += "".join(f"; {p}" for p in problems)
        _phase(state, "teardown", started, now, ok=False, detail=detail + " (the daily cleanup removes them)")
        state.update(gone=True, torn_down=False, leftovers=left.as_list())
    else:
        state.update(gone=False, leftovers=left.as_list())
    return state


def _all_terminating(ec2: EC2Client, ids: list[str]) -> bool:
    """Terminated instances are gone for good; one that is shutting down is too (nothing can stop it)."""
    reservations = ec2.describe_instances(InstanceIds=ids).get("Reservations", [])
    states = [i.get("State", {}).get("Name") for r in reservations for i in r.get("Instances", [])]
    return all(s in ("shutting-down", "terminated") for s in states)


# --- report ---------------------------------------------------------------------------------------


def drill_record(state: DrillState, now: datetime) -> dict[str, Any]:
    """``reports/drills/<slot>.json`` (DESIGN.md): every phase, the checks, the RTO against its target."""
    phases = {p["name"]: p for p in state.get("phases", [])}
    for name in DRILL_PHASES:  # a phase the drill never reached is listed, as not done
        if name not in phases:
            phases[name] = {
                "name": name,
                "started_at": None,
                "seconds": 0,
                "ok": False,
                "detail": "not reached" + (f": {error_cause(state)}" if state.get("error") else ""),
            }
    ordered = [phases[n] for n in DRILL_PHASES]
    checks_ok = all(phases[n]["ok"] for n in ("app-check", "db-check", "dump-check"))
    restored_ok = all(phases[n]["ok"] for n in DRILL_PHASES if n != "teardown")
    passed = restored_ok and checks_ok and not state.get("error")
    rto = None
    if passed:
        ends = [
            parse_time(phases[n]["started_at"]) + timedelta(seconds=phases[n]["seconds"])
            for n in DRILL_PHASES[:-1]
        ]
        rto = round((max(ends) - _time(state, "started_at")).total_seconds() / 60, 1)
    return {
        "started_at": state["started_at"],
        "finished_at": _iso(now),
        "result": "passed" if passed else "failed",
        "rto_minutes": rto,
        "rto_target_minutes": state["rto_target_minutes"],
        "rto_met": rto is not None and rto <= state["rto_target_minutes"],
        "phases": ordered,
        "restored": {
            "ami": [s["ami_name"] for s in state.get("servers", [])],
            "db_snapshot": [d["snapshot"] for d in state.get("databases", [])],
            "dump": [s["dump"] for s in state.get("servers", []) if s.get("dump")],
        },
        "checks": state.get("checks", []),
        "cost_estimate_usd": cost_estimate(state, now),
        "torn_down": bool(state.get("torn_down")),
        "leftovers": list(state.get("leftovers", [])),
        **({"error": error_cause(state)} if state.get("error") else {}),
    }


def error_cause(state: DrillState) -> str:
    """The failed step's message from the state machine's error object (its Cause is Lambda's JSON)."""
    error = state.get("error") or {}
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("errorType") or cause)
    return str(cause or error.get("Error", "unknown error"))


def cost_estimate(state: DrillState, until: datetime) -> float | None:
    """Instance hours (server, database, endpoints) times on-demand prices; None for an unknown type."""
    if "launched_at" not in state:
        return 0.0
    hours = max((until - _time(state, "launched_at")).total_seconds() / 3600, 1 / 60)
    servers = [
        HOURLY_USD.get(s.get("instance_type", state.get("instance_type", "")))
        for s in state.get("servers", [])
    ]
    dbs = len(state.get("databases", []))
    db_price = HOURLY_USD.get(state.get("db_instance_class", ""), None)
    if None in servers or (dbs and db_price is None):
        return None
    hourly = (
        sum(p or 0 for p in servers) + dbs * (db_price or 0) + len(ENDPOINT_SERVICES) * ENDPOINT_HOURLY_USD
    )
    total = hours * hourly
    return round(total, 2)


@dataclass(frozen=True)
class DrillReport:
    key: str
    record: dict[str, Any]
    mailed: bool

    @property
    def passed(self) -> bool:
        return bool(self.record["result"] == "passed")


def report(
    s3: S3Client, sns: SNSClient, settings: DrillSettings, state: DrillState, now: datetime
) -> DrillReport:
    """Write the drill's record once and mail its summary once (a repeated call returns the first)."""
    ensure_slot(state, now)
    for name, value in (
        ("rto_target_minutes", settings.rto_target_minutes),
        ("max_runtime_minutes", settings.max_runtime_minutes),
        ("instance_type", settings.instance_type),
        ("db_instance_class", settings.db_instance_class),
    ):
        state.setdefault(name, value)
    key = drill_record_key(_time(state, "scheduled_time"))
    existing = read_record(s3, settings.verify.bucket, key)
    if existing is not None:
        return DrillReport(key, existing, mailed=False)
    record = drill_record(state, now)
    if not write_record_once(s3, settings.verify.bucket, key, record):
        return DrillReport(key, read_record(s3, settings.verify.bucket, key) or record, mailed=False)
    subject, text = summary(record, settings.language, settings.verify.timezone)
    publish_to_topic(sns, settings.topic_arn, subject, text)
    logger.info(
        "drill reported", extra={"key": key, "result": record["result"], "rto": record["rto_minutes"]}
    )
    return DrillReport(key, record, mailed=True)


def _local(raw: str | None, zone: str) -> str:
    if not raw:
        return "-"
    return f"{parse_time(raw).astimezone(ZoneInfo(zone)):%d.%m.%Y %H:%M}"


def summary(record: Mapping[str, Any], language: str, zone: str) -> tuple[str, str]:
    """The drill's mail: subject and plain text in the configured language."""
    passed = record["result"] == "passed"
    when = _local(record["started_at"], zone)
    if passed and record["rto_met"]:
        subject = say("drill.subject_passed", language, when=when, rto=record["rto_minutes"])
    elif passed:
        subject = say(
            "drill.subject_slow",
            language,
            when=when,
            rto=record["rto_minutes"],
            target=record["rto_target_minutes"],
        )
    else:
        subject = say("drill.subject_failed", language, when=when)
    lines = [subject, "", say("drill.times_in", language, zone=zone), ""]
    for phase in record["phases"]:
        mark = say("mail.ok", language) if phase["ok"] else say("mail.problem", language)
        lines.append(f"- {phase['name']}: {mark}, {phase['seconds']} s. {phase['detail']}")
    lines.append("")
    if record["rto_minutes"] is not None:
        lines.append(
            say("drill.rto", language, rto=record["rto_minutes"], target=record["rto_target_minutes"])
        )
    cost = record.get("cost_estimate_usd")
    if cost is not None:
        lines.append(say("drill.cost", language, usd=f"{cost:.2f}"))
    if record["leftovers"]:
        lines.append(say("drill.leftovers", language, ids=", ".join(record["leftovers"])))
    else:
        lines.append(say("drill.torn_down", language))
    if record.get("error"):
        lines.append(say("drill.error", language, error=record["error"]))
    lines.append("")
    lines.append(say("drill.see", language, command="backupctl drill status"))
    return subject, "\n".join(lines)


# --- cleanup --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupResult:
    removed: list[str]
    problems: list[str]
    mailed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "problems": self.problems, "mailed": self.mailed}


def cleanup(
    ec2: EC2Client, rds: RDSClient, sns: SNSClient, settings: DrillSettings, now: datetime
) -> CleanupResult:
    """Remove drill resources older than the drill's maximum runtime (a running drill's are younger)."""
    older_than = now - timedelta(minutes=settings.max_runtime_minutes)
    found = find_drill_resources(ec2, rds, older_than=older_than)
    if found.empty:
        return CleanupResult([], [], mailed=False)
    problems = remove(ec2, rds, found)
    removed = found.as_list()
    lang = settings.language
    subject = say("drill.cleanup_subject", lang, n=len(removed))
    text = "\n".join(
        [
            subject,
            "",
            say("drill.cleanup_text", lang, hours=round(settings.max_runtime_minutes / 60, 1)),
            *[f"- {r}" for r in removed],
            *([""] + [say("drill.cleanup_problem", lang, problem=p) for p in problems] if problems else []),
        ]
    )
    publish_to_topic(sns, settings.topic_arn, subject, text)
    logger.warning("drill leftovers removed", extra={"removed": removed, "problems": problems})
    return CleanupResult(removed, problems, mailed=True)


# --- one step, as the handler runs it ---------------------------------------------------------------

STEPS: Final = ("plan", "launch", "poll", "check_start", "check_poll", "teardown", "report", "cleanup")


@dataclass(frozen=True)
class StepOutcome:
    """What a step returns to the state machine, and what the handler publishes (report, cleanup)."""

    state: DrillState
    record: dict[str, Any] | None = None
    removed: int | None = None


def _clock(step: str, state: DrillState, event: Mapping[str, Any]) -> datetime:
    """plan and cleanup measure from the scheduled time; the other steps from now, to the second (the
    phases' clock)."""
    if step in ("plan", "cleanup"):
        return scheduled_time(state if step == "plan" else event)
    return datetime.now(UTC)


def _step(step: str, settings: DrillSettings, state: DrillState, now: datetime) -> StepOutcome:  # noqa: PLR0911 - one per step
    if step == "plan":
        return StepOutcome(
            plan(clients.ec2_client(), clients.rds_client(), clients.s3_client(), settings, now)
        )
    if step == "launch":
        return StepOutcome(launch(clients.ec2_client(), clients.rds_client(), settings, state, now))
    if step == "poll":
        return StepOutcome(poll(clients.ec2_client(), clients.rds_client(), state, now))
    if step == "check_start":
        return StepOutcome(check_start(clients.ssm_client(), settings, state, now))
    if step == "check_poll":
        return StepOutcome(check_poll(clients.ssm_client(), state, now))
    if step == "teardown":
        return StepOutcome(teardown(clients.ec2_client(), clients.rds_client(), state, now))
    if step == "report":
        done = report(clients.s3_client(), clients.sns_client(), settings, state, now)
        return StepOutcome({**state, "result": done.record["result"], "record": done.key}, record=done.record)
    swept = cleanup(clients.ec2_client(), clients.rds_client(), clients.sns_client(), settings, now)
    return StepOutcome(swept.as_dict(), removed=len(swept.removed))


def stopped_execution_state(detail: Mapping[str, Any]) -> DrillState:
    """The drill state of an execution that ended without its Teardown (stopped by hand, timed out),
    from EventBridge's status change: its input names the scheduled time, which names the slot; an
    execution started without one is named after its start, as plan named it."""
    try:
        given = json.loads(str(detail.get("input") or "{}"))
    except ValueError:
        given = {}
    state: DrillState = dict(given) if isinstance(given, dict) else {}
    start = detail.get("startDate")
    if not state.get("scheduled_time") and isinstance(start, int | float):
        when = datetime.fromtimestamp(start / 1000, UTC).replace(second=0, microsecond=0)
        state["scheduled_time"] = _iso(when)
    if not state.get("scheduled_time"):
        raise EventError("the execution's status change names neither a scheduled_time nor a startDate")
    return state


def run_step(event: Mapping[str, Any], settings_from_env: Any) -> StepOutcome:
    """``{"step": <name>, "drill": <state>}``: the step's new state. A DrillFailed is an outcome of the
    drill, not an error of the function: the state gets ``failed`` and ``error``, the state machine tears
    down. EventBridge's status change of an execution that was stopped or timed out: its teardown."""
    if event.get("detail-type") == DRILL_STOPPED_EVENT:  # the execution ended without its Teardown
        detail = event.get("detail") or {}
        state = stopped_execution_state(detail)
        logger.warning(
            "drill execution ended without its teardown: tearing down",
            extra={"execution": detail.get("executionArn"), "status": detail.get("status")},
        )
        now = datetime.now(UTC)
        return StepOutcome(teardown(clients.ec2_client(), clients.rds_client(), ensure_slot(state, now), now))
    step, state = event.get("step"), dict(event.get("drill") or {})
    if step not in STEPS:
        raise EventError(f"event field step={step!r} must be one of {', '.join(STEPS)}")
    try:
        return _step(str(step), settings_from_env(), state, _clock(str(step), state, event))
    except DrillFailed as failed:
        logger.warning("drill failed", extra={"step": step, "reason": str(failed)})
        error = {"Error": "DrillFailed", "Cause": str(failed)}
        return StepOutcome({**(failed.state or state), "failed": True, "error": error})
