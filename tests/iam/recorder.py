"""Recording every AWS request the Lambda code makes in the unit tests, for the IAM evaluator.

Wraps botocore's ``BaseClient._make_api_call`` (the one door every call goes through, moto or not).
A call counts as a Lambda's when a frame of ``lambdas/<function>/`` or of the job module
``lambdas/common/jobs/<function>.py`` is on the stack; the outermost such frame names the function (the
report job calling verify's checks is still the report function).
Calls made by the tests themselves (setting up moto) are not the Lambdas' and are not recorded.

What IAM needs beyond the call itself is captured at the moment of the call: the tags of the
resources it touches (through moto, before the call changes them) and the environment variables that
shape the deployed policies. Translating and judging happens after the test (``judge``), so the
synth and the evaluator never run inside a handler's timing.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.client import BaseClient

from lambdas.common.contracts import OFFSITE_ROLE_USES
from tests.iam.check import Principal, Verdict, evaluate
from tests.iam.requests import UnmappedOperation, World, iam_requests
from tests.iam.stack import ACCOUNT, PARTITION, StackModel, merged_settings, stack_for
from tests.iam.wire import WireRequest, operation

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
# Environment variables (as the stack sets them) that change the policies the stack deploys.
POLICY_ENV = (
    "SELECTION_TAG",
    "EC2_INSTANCE_IDS",
    "RDS_INSTANCE_IDS",
    "SES_SENDER",
    "DUMP_ENABLED",
    "OFFSITE_REGION",  # offsite copies on: the stack with the offsite permissions (config_overrides)
    "OFFSITE_KINDS",
    "OFFSITE_ACCOUNT",  # copies into another account: the three stacks (home, offsite, staging)
    "OFFSITE_ROLE_ARN",  # ... and the prefix of the roles there
)
WORLD_ENV = (
    "BACKUP_BUCKET",
    "ALARM_TOPIC_ARN",
    "BACKUP_KEY_ARN",  # the IAM review's: the key it reads the policy of
    *(
        "DRILL_VPC_ID",
        "DRILL_SUBNET_IDS",
        "DRILL_SERVER_SG",
        "DRILL_DB_SG",
        "DRILL_ENDPOINT_SG",
        "DRILL_DB_SUBNET_GROUP",
        "DRILL_INSTANCE_PROFILE",
        "DRILL_CHECK_DOCUMENT",
    ),
)
SERVER_INSTANCE = "i-0123456789abcdef0"  # the instance id the integration tests' IMDS stand-in reports

_local = threading.local()


def in_lookup() -> bool:
    """True while the recorder itself asks moto about tags (fault injection must not touch those)."""
    return bool(getattr(_local, "lookup", False))


@contextmanager
def _looking_up() -> Iterator[None]:
    _local.lookup = True
    try:
        yield
    finally:
        _local.lookup = False


@dataclass
class Call:
    function: str  # "prune" for lambdas/prune/...
    service: str
    operation: str
    params: dict[str, Any]
    region: str
    env: dict[str, str]
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    image_snapshots: dict[str, list[str]] = field(default_factory=dict)
    role_arn: str | None = None  # made with the credentials of this assumed role (None: the function's own)

    @property
    def account(self) -> str:
        """The account the call is made in: the assumed role's, else the function's."""
        return self.role_arn.split(":")[4] if self.role_arn else ACCOUNT


def calling_function() -> str | None:
    """The function whose code is outermost on the stack: a ``lambdas/<name>/`` handler frame, or the
    job module ``lambdas/common/jobs/<name>.py`` that a test called directly."""
    found = None
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if LAMBDAS in path.parents:
            parts = path.relative_to(LAMBDAS).parts
            if parts[0] not in ("common", "dump") and len(parts) > 1:
                found = parts[0]
            elif parts[:2] == ("common", "jobs") and (LAMBDAS / path.stem / "handler.py").is_file():
                found = path.stem
        frame = frame.f_back  # type: ignore[assignment]
    return found


_UNSIGNABLE: Final = "<no credentials to be had>"


def _access_key(client: BaseClient) -> str | None:
    """The access key the client signs with (assumed-role credentials are fetched now if they must be);
    None when it signs with none, ``_UNSIGNABLE`` when its credentials cannot be had (the role cannot be
    assumed: the call fails before it reaches AWS)."""
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is None:
        return None
    try:
        frozen = credentials.get_frozen_credentials()
    except Exception:  # e.g. AssumeRole denied: the call itself raises it next
        return _UNSIGNABLE
    return str(frozen.access_key)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.assumed: dict[str, str] = {}  # access key id of an AssumeRole answer -> the role's ARN

    @contextmanager
    def installed(self) -> Iterator[Recorder]:
        original = BaseClient._make_api_call
        recorder = self

        def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            if not in_lookup():
                function = calling_function()
                if function is not None:
                    key = _access_key(client)
                    if key != _UNSIGNABLE:  # else nothing reaches AWS
                        role = recorder.assumed.get(key or "")
                        recorder.record(client, function, operation_name, api_params, role)
            result = original(client, operation_name, api_params)
            if operation_name == "AssumeRole" and isinstance(result, dict) and "Credentials" in result:
                recorder.assumed[result["Credentials"]["AccessKeyId"]] = api_params["RoleArn"]
            return result

        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]

    def record(
        self,
        client: BaseClient,
        function: str,
        operation: str,
        params: dict[str, Any],
        role_arn: str | None = None,
    ) -> None:
        service = client.meta.service_model.service_name
        call = Call(
            function=function,
            service=service,
            operation=operation,
            params=copy.deepcopy({k: v for k, v in params.items() if k not in ("Body", "Content")}),
            region=client.meta.region_name,
            env={k: os.environ[k] for k in (*POLICY_ENV, *WORLD_ENV) if k in os.environ},
            role_arn=role_arn,
        )
        with _looking_up():
            _capture_state(call, _session_of(client) if role_arn else None)
        self.calls.append(call)


_SESSIONS: dict[str, boto3.Session] = {}  # by access key: a new Session per call costs ~0.2 s


def _session_of(client: BaseClient) -> boto3.Session:
    """A session with the client's (assumed-role) credentials: what it sees is the other account's."""
    frozen = getattr(client, "_request_signer")._credentials.get_frozen_credentials()  # noqa: B009
    session = _SESSIONS.get(frozen.access_key)
    if session is None:
        session = _SESSIONS[frozen.access_key] = boto3.Session(
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
        )
    return session


def _client(session: boto3.Session | None, service: str, region: str) -> Any:
    """A client of ``session`` (None: boto3's default session, as the function's own calls use)."""
    return (session.client if session is not None else boto3.client)(service, region_name=region)  # type: ignore[call-overload]


_EC2_KINDS = {"i": "instance", "ami": "image", "snap": "snapshot", "vpce": "vpc-endpoint", "vol": "volume"}
_RDS_TAGGED = (
    "CreateDBSnapshot",
    "DeleteDBSnapshot",
    "DeleteDBInstance",
    "RestoreDBInstanceFromDBSnapshot",
    "ModifyDBSnapshotAttribute",
)


def drill_ids(stack: StackModel, env: Mapping[str, str]) -> dict[str, str]:
    """The drill's network, profile and document as the test created them (moto ids in the test's
    environment) -> as the stack names them (the drill function's environment, resolved)."""
    try:
        deployed = stack.function_environment("lambdas.drill.handler.handler")
    except LookupError:
        return {}
    ids: dict[str, str] = {}
    for var in WORLD_ENV:
        if var.startswith("DRILL_") and var in env and var in deployed:
            ids.update(zip(env[var].split(","), deployed[var].split(","), strict=False))
    return ids


def _capture_state(call: Call, session: boto3.Session | None) -> None:
    """Tags of the resources the call touches, as they are now (moto answers, to the call's account)."""
    p = call.params
    if call.service == "ssm" and call.operation == "SendCommand" and p.get("InstanceIds"):
        ec2 = _client(session, "ec2", call.region)
        for tag in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": list(p["InstanceIds"])}]).get(
            "Tags", []
        ):
            call.tags.setdefault(("instance", tag["ResourceId"]), {})[tag["Key"]] = tag["Value"]
    if call.service == "ec2":
        ec2 = _client(session, "ec2", call.region)
        ids: list[str] = []
        if call.operation == "CreateImage":
            ids = [p["InstanceId"]]
        elif call.operation == "RunInstances":
            ids = [p["ImageId"]]
        elif call.operation == "TerminateInstances":
            ids = list(p["InstanceIds"])
        elif call.operation == "DeleteVpcEndpoints":
            ids = list(p["VpcEndpointIds"])
        elif call.operation == "DeleteVolume":
            ids = [p["VolumeId"]]
        elif call.operation == "CreateTags":
            ids = list(p["Resources"])
        elif call.operation in ("DeleteSnapshot", "ModifySnapshotAttribute"):
            ids = [p["SnapshotId"]]
        elif call.operation == "ModifyImageAttribute":
            ids = [p["ImageId"]]
        elif call.operation == "DeregisterImage":
            ids = [p["ImageId"]]
            images = ec2.describe_images(ImageIds=[p["ImageId"]]).get("Images", [])
            snaps = [
                m["Ebs"]["SnapshotId"]
                for image in images
                for m in image.get("BlockDeviceMappings", [])
                if m.get("Ebs", {}).get("SnapshotId")
            ]
            call.image_snapshots[p["ImageId"]] = snaps
            ids += snaps
        if ids:
            for tag in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}]).get("Tags", []):
                kind = _EC2_KINDS[tag["ResourceId"].split("-")[0]]
                call.tags.setdefault((kind, tag["ResourceId"]), {})[tag["Key"]] = tag["Value"]
    elif call.service == "rds" and call.operation in _RDS_TAGGED:
        rds = _client(session, "rds", call.region)
        arn_base = f"arn:{PARTITION}:rds:{call.region}:{call.account}"
        if call.operation in ("CreateDBSnapshot", "DeleteDBInstance"):
            kind, rid, arn = "db", p["DBInstanceIdentifier"], f"{arn_base}:db:{p['DBInstanceIdentifier']}"
        else:
            kind, rid = "db-snapshot", p["DBSnapshotIdentifier"]
            arn = rid if rid.startswith("arn:") else f"{arn_base}:snapshot:{rid}"
        try:
            tags = rds.list_tags_for_resource(ResourceName=arn).get("TagList", [])
        except rds.exceptions.ClientError:
            tags = []
        call.tags[(kind, rid)] = {t["Key"]: t["Value"] for t in tags}


def config_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The cdk.json settings that would make the stack set these environment variables."""
    overrides: dict[str, Any] = {}
    selection: dict[str, Any] = {}
    if "SELECTION_TAG" in env and "=" in env["SELECTION_TAG"]:
        key, value = env["SELECTION_TAG"].split("=", 1)
        selection.update(tag_key=key.strip(), tag_value=value.strip())
    for var, setting in (("EC2_INSTANCE_IDS", "ec2_instance_ids"), ("RDS_INSTANCE_IDS", "rds_instance_ids")):
        ids = [i.strip() for i in env.get(var, "").split(",") if i.strip()]
        if ids:
            selection[setting] = ids
    if selection:
        overrides["selection"] = selection
    if env.get("SES_SENDER"):
        overrides["ses_sender"] = env["SES_SENDER"]
    if env.get("DUMP_ENABLED", "").lower() == "false":
        overrides["dump"] = {"enabled": False}
    if env.get("OFFSITE_REGION", "").strip():
        kinds = [k.strip() for k in env.get("OFFSITE_KINDS", "").split(",") if k.strip()]
        overrides["offsite"] = {"enabled": True, "region": env["OFFSITE_REGION"].strip()}
        if kinds:
            overrides["offsite"]["kinds"] = kinds
        target = env.get("OFFSITE_ACCOUNT", "").strip()
        if target:  # the function runs in the home account (moto's)
            overrides["offsite"].update(account=target, home_account=ACCOUNT)
            role = env.get("OFFSITE_ROLE_ARN", "").rsplit("/", 1)[-1]
            prefix, _, use = role.rpartition("-")
            if prefix and use in OFFSITE_ROLE_USES:
                overrides["offsite"]["role_name"] = prefix
    return overrides


def judge(calls: list[Call]) -> tuple[list[Verdict], list[str]]:
    """Every recorded call as the IAM requests AWS would evaluate, judged against the stack's policies
    for the configuration the test ran with; plus calls that could not be translated."""
    verdicts: list[Verdict] = []
    problems: list[str] = []
    for call in calls:
        stack = stack_for(config_overrides(call.env))
        world = World(
            stack,
            buckets=frozenset({call.env["BACKUP_BUCKET"]}) if "BACKUP_BUCKET" in call.env else frozenset(),
            topics=frozenset({call.env["ALARM_TOPIC_ARN"]}) if "ALARM_TOPIC_ARN" in call.env else frozenset(),
            keys=frozenset({call.env["BACKUP_KEY_ARN"]}) if "BACKUP_KEY_ARN" in call.env else frozenset(),
            tags=lambda kind, rid, c=call: c.tags.get((kind, rid), {}),
            image_snapshots=lambda image, c=call: c.image_snapshots.get(image, []),
            ids=drill_ids(stack, call.env),
            region=call.region,
            account=call.account,
        )
        try:
            requests = iam_requests(call.service, call.operation, call.params, world)
        except UnmappedOperation as err:
            problems.append(f"the {call.function} function called {err.args[0]}")
            continue
        if call.role_arn is None:
            principal = Principal.function(stack, f"lambdas.{call.function}.handler")
        else:
            try:
                principal = assumed_role(stack, call.role_arn, call.function)
            except LookupError as err:
                problems.append(
                    f"the {call.function} function called {call.service}.{call.operation} as {err}"
                )
                continue
        verdicts += [evaluate(stack, principal, r) for r in requests]
    return verdicts, problems


def assumed_role(stack: StackModel, role_arn: str, function: str) -> Principal:
    """A session of the role ``role_arn`` of a stack of the model (the target account's), as the
    function that assumed it uses it."""
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
    for model in (stack, *stack.peers):
        if model.account != account:
            continue
        for res in model.of_type("AWS::IAM::Role"):
            if model.name(res.logical_id) == name:
                return Principal.role_session(
                    model, res.logical_id, function, f"the {function} function as {name}"
                )
    raise LookupError(f"{role_arn}, a role no stack of this configuration defines")


def judge_server_requests(
    requests: list[WireRequest], *, bucket: str, kms_key: str, overrides: Mapping[str, Any] | None = None
) -> tuple[list[Verdict], list[str]]:
    """What the dump script sent (as seen on the wire), judged as requests of the web server's role
    against the stack's policies. Test names map to the stack's: ``bucket`` is the backup bucket,
    ``kms_key`` its key, and every secret the configured DB secret."""
    stack = stack_for(overrides or {})
    settings = merged_settings(overrides or {})
    verdicts: list[Verdict] = []
    problems: list[str] = []
    parsed = []
    for request in requests:
        try:
            parsed.append(operation(request))
        except UnmappedOperation as err:
            problems.append(f"the dump script sent {err.args[0]}")
    secret_ids = {p.get("SecretId") for service, _, p in parsed if service == "secretsmanager"}
    world = World(
        stack,
        buckets=frozenset({bucket}),
        keys=frozenset({kms_key}),
        secrets={sid: settings["dump"]["db_secret_arn"] for sid in secret_ids if sid},
    )
    server = Principal.role_session(
        stack, settings["dump"]["server_role_name"], SERVER_INSTANCE, "the dump on the server"
    )
    for service, op, params in parsed:
        try:
            verdicts += [evaluate(stack, server, r) for r in iam_requests(service, op, params, world)]
        except UnmappedOperation as err:
            problems.append(f"the dump script sent {err.args[0]}")
    return verdicts, problems
