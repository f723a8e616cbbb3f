"""``restore db`` and ``restore server``: a new RDS instance from a snapshot, a new server from an AMI.

Both read schoolbackup's backups through the shared adapters and the one state table
(``lambdas.common.aws.states``): only what carries ``ManagedBy=schoolbackup`` is restored, only what the
table calls usable. Nothing existing is changed: the restore is a *new* instance next to the old one,
with the old one's network settings, and without the selection tag (it is not backed up until the admin
says it is the real one). What to switch over is printed as exact commands.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from botocore.exceptions import ClientError

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import CliError, UsageError
from cli.backupctl.output import Output
from lambdas.common.aws.db_snapshots import managed_db_snapshots
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.images import managed_images, snapshot_ids, snapshot_states
from lambdas.common.aws.states import UNKNOWN_FOR_VERIFY, Reading, ami_state, rds_snapshot_state
from lambdas.common.contracts import (
    EC2_INSTANCE_ID,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    SOURCE_KEY,
    State,
    aws_tags,
    is_managed,
    parse_backup_name,
    parse_time,
    tag_dict,
)
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, InstanceTypeDef, RunInstancesRequestTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef, RestoreDBInstanceFromDBSnapshotMessageTypeDef

LATEST: Final = "latest"
RESTORED_FROM_KEY: Final = "RestoredFrom"
DEFAULT_SELECTION: Final = SelectionTag("Backup", "true")
DB_POLL_SECONDS: Final = 15.0
SERVER_POLL_SECONDS: Final = 5.0
SHOWN_ALTERNATIVES: Final = 3
RDS_ID_MAX: Final = 63
AMI_ID: Final = re.compile(r"^ami-[0-9a-f]{8,17}$")
GONE_EC2_STATES: Final = ("shutting-down", "terminated")
DB_FAILED_STATES: Final = frozenset(
    {
        "failed",
        "restore-error",
        "incompatible-restore",
        "incompatible-network",
        "incompatible-parameters",
        "incompatible-option-group",
        "inaccessible-encryption-credentials",
        "storage-full",
        "deleting",
        "deleted",
    }
)
SERVER_FAILED_STATES: Final = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# The clock of the wait loops (tests replace them instead of sleeping).
_sleep: Callable[[float], None] = time.sleep
_now: Callable[[], float] = time.monotonic


# ---------------------------------------------------------------------------------------------------
# Backups: what exists, whose it is, whether the state table calls it usable


@dataclass(frozen=True)
class Backup:
    """One RDS snapshot or AMI of schoolbackup, read through the state table."""

    id: str
    source: str
    created: datetime
    reading: Reading
    raw: Any = field(default=None, compare=False, repr=False)  # what AWS said about it

    @property
    def usable(self) -> bool:
        return self.reading.state is State.USABLE

    def why_not(self) -> str:
        """Why it cannot be restored, as the end of a sentence ("is still creating")."""
        if self.reading.state is None and not self.reading.gone:
            return f"{self.reading.detail} ({UNKNOWN_FOR_VERIFY})"
        return self.reading.detail


def _created(raw: Any, name: str) -> datetime:
    if isinstance(raw, datetime):
        return raw.astimezone(UTC)
    if isinstance(raw, str) and raw:
        try:
            return parse_time(raw)
        except ValueError:
            pass
    parsed = parse_backup_name(name)
    return parsed[1] if parsed else EPOCH


def _newest_first(backups: Iterable[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (b.created, b.id), reverse=True)


def _stamp(when: datetime) -> str:
    return "unknown time" if when == EPOCH else f"{when:%Y-%m-%d %H:%M} UTC"


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _newest_usable_text(backups: Sequence[Backup], source: str | None) -> str:
    usable = [b for b in _newest_first(backups) if b.usable and (source is None or b.source == source)]
    if not usable:
        return "there is no usable one" + (f" of {source}" if source else "")
    shown = ", ".join(f"{b.id} ({b.source}, {_stamp(b.created)})" for b in usable[:SHOWN_ALTERNATIVES])
    return f"the newest usable {'is' if len(usable) == 1 else 'are'} {shown}"


def _choose_source(
    backups: Sequence[Backup], source: str | None, source_exists: Callable[[str], bool], what: str
) -> str:
    """``--source``, or the only source that has backups (several: the admin must choose)."""
    sources = {b.source for b in backups}
    if source is not None:
        if source in sources:
            return source
        others = f" (schoolbackup has {what}s of {_names(sources)})" if sources else ""
        if source_exists(source):
            raise CliError(f"There is no schoolbackup {what} of {source}{others}.")
        raise UsageError(f"{source} does not exist and has no schoolbackup {what}{others}.")
    if not sources:
        raise CliError(f"There is no schoolbackup {what} in this region: nothing to restore.")
    if len(sources) > 1:
        raise UsageError(
            f"schoolbackup has {what}s of several sources ({_names(sources)}): choose one with --source."
        )
    return next(iter(sources))


def _latest(backups: Sequence[Backup], source: str, what: str) -> Backup:
    mine = _newest_first(b for b in backups if b.source == source)
    for backup in mine:
        if backup.usable:
            return backup
    newest = mine[0]
    raise CliError(
        f"No {what} of {source} is usable: the newest, {newest.id}, {newest.why_not()}; "
        "wait for it to finish or pass an older one explicitly."
    )


def _check_explicit(backup: Backup, source: str | None, what: str) -> None:
    if source is not None and backup.source != source:
        raise UsageError(f"{_first_upper(what)} {backup.id} is a backup of {backup.source}, not of {source}.")
    if not backup.usable:
        raise CliError(f"{_first_upper(what)} {backup.id} {backup.why_not()}, so it cannot be restored.")


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _not_ours(what: str, backup_id: str) -> CliError:
    return CliError(
        f"{_first_upper(what)} {backup_id} does not carry {MANAGED_BY_KEY}={MANAGED_BY_VALUE}: "
        "backupctl restores only what schoolbackup made."
    )


def _selection(cli: Cli) -> SelectionTag:
    """The selection tag of the configuration (the default when there is no readable cdk.json)."""
    try:
        return cli.config.selection.tag
    except CliError:
        return DEFAULT_SELECTION


def _wait(
    what: str,
    describe: Callable[[], tuple[str, Any]],
    done: str,
    failed: frozenset[str],
    *,
    poll: float,
    timeout_minutes: int,
    hint: str,
    reason: Callable[[Any], str] = lambda _: "",
) -> Any:
    """Poll ``describe`` (-> state, details) until ``done``, with a status line on stderr."""
    started = _now()
    deadline = started + timeout_minutes * 60
    out = Output()
    with out.errors.status(f"Waiting for {what} to become {done} ...") as status:
        while True:
            state, details = describe()
            if state == done:
                return details
            if state in failed:
                why = reason(details)
                raise CliError(f"{what} is {state} instead of {done}{f' ({why})' if why else ''}: {hint}")
            now = _now()
            if now >= deadline:
                raise CliError(
                    f"{what} is still {state} after {timeout_minutes} minutes; it keeps going on its own: {hint}"
                )
            minutes, seconds = divmod(int(now - started), 60)
            status.update(f"Waiting for {what} to become {done}: {state}, {minutes}:{seconds:02d} so far ...")
            _sleep(min(poll, deadline - now))


def _print_plan(out: Output, title: str, settings: dict[str, Any]) -> None:
    out.line(title)
    for key, value in settings.items():
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            text = ", ".join(value) or "-"
        else:
            text = "-" if value is None else str(value)
        out.line(f"  {key.replace('_', ' '):<22} {text}")


def _print_steps(out: Output, steps: Sequence[str]) -> None:
    out.line("Next steps:")
    for number, step in enumerate(steps, 1):
        out.line(f"  {number}. {step}")


# ---------------------------------------------------------------------------------------------------
# restore db


def rds_id_problem(name: str) -> str | None:
    """Why ``name`` cannot be an RDS DB instance identifier, or None."""
    if not name or len(name) > RDS_ID_MAX:
        return f"it must have 1 to {RDS_ID_MAX} characters"
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        return "it may contain only letters, digits and hyphens"
    if not name[0].isalpha():
        return "it must start with a letter"
    if "--" in name:
        return "it must not contain two hyphens in a row"
    if name.endswith("-"):
        return "it must not end with a hyphen"
    return None


def _db_snapshot_backup(snapshot: Any) -> Backup:
    tags = tag_dict(snapshot.get("TagList"))
    name = snapshot["DBSnapshotIdentifier"]
    return Backup(
        name,
        tags.get(SOURCE_KEY) or snapshot.get("DBInstanceIdentifier", "unknown"),
        _created(snapshot.get("SnapshotCreateTime"), name),
        rds_snapshot_state(snapshot.get("Status", "unknown")),
        snapshot,
    )


def _db_instance(rds: RDSClient, db_id: str) -> DBInstanceTypeDef | None:
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"]
    except ClientError as err:
        if error_code(err) == "DBInstanceNotFound":
            return None
        raise
    return found[0] if found else None


def _explicit_db_snapshot(
    rds: RDSClient, snapshot_id: str, ours: Sequence[Backup], source: str | None
) -> Backup:
    try:
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except ClientError as err:
        if error_code(err) not in ("DBSnapshotNotFound", "DBSnapshotNotFoundFault", "InvalidParameterValue"):
            raise
        found = []
    if not found:
        raise CliError(f"There is no DB snapshot {snapshot_id}: {_newest_usable_text(ours, source)}.")
    if not is_managed(tag_dict(found[0].get("TagList"))):
        raise _not_ours("snapshot", snapshot_id)
    return _db_snapshot_backup(found[0])


def _db_subnet_group_vpc(rds: RDSClient, name: str) -> str:
    try:
        groups = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
    except ClientError as err:
        if error_code(err) in ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"):
            raise UsageError(f"There is no DB subnet group named {name} in this region.") from None
        raise
    return groups[0].get("VpcId", "") if groups else ""


def _security_groups_vpcs(ec2: EC2Client, ids: Sequence[str]) -> dict[str, str]:
    try:
        groups = ec2.describe_security_groups(GroupIds=list(ids))["SecurityGroups"]
    except ClientError as err:
        if error_code(err) in (
            "InvalidGroup.NotFound",
            "InvalidGroupId.Malformed",
            "InvalidGroupId.NotFound",
        ):
            raise UsageError(
                f"Not every security group of {_names(ids)} exists in this region (AWS: {err})."
            ) from None
        raise
    return {g["GroupId"]: g.get("VpcId", "") for g in groups}


def _check_groups_in_vpc(ec2: EC2Client, groups: Sequence[str], vpc: str, where: str) -> None:
    vpcs = _security_groups_vpcs(ec2, groups)
    outside = sorted(g for g, v in vpcs.items() if vpc and v != vpc)
    if outside:
        raise UsageError(f"Security group(s) {', '.join(outside)} are not in {vpc}, the VPC of {where}.")


@dataclass
class DbRestore:
    """The request and what to print about it."""

    new_id: str
    backup: Backup
    source_exists: bool
    source_name: str
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan_db_restore(
    rds: RDSClient,
    ec2: Callable[[], EC2Client],
    *,
    snapshot: str,
    source: str | None,
    new_id: str,
    subnet_group: str | None,
    security_groups: Sequence[str],
    instance_class: str | None,
    parameter_group: str | None,
) -> DbRestore:
    problem = rds_id_problem(new_id)
    if problem:
        raise UsageError(f"--as {new_id!r} is not a valid RDS identifier: {problem}.")
    if source is not None and rds_id_problem(source):
        raise UsageError(f"--source {source!r} is not an RDS identifier like school-db.")
    new_id, source = new_id.lower(), source.lower() if source else None  # RDS keeps identifiers in lower case
    if _db_instance(rds, new_id) is not None:
        raise UsageError(
            f"A DB instance named {new_id} exists already: choose another name with --as "
            "(a restore never replaces an instance)."
        )
    ours = [_db_snapshot_backup(s) for s in managed_db_snapshots(rds)]
    if snapshot == LATEST:
        chosen = _latest(
            ours,
            _choose_source(ours, source, lambda s: _db_instance(rds, s) is not None, "DB snapshot"),
            "DB snapshot",
        )
    else:
        chosen = _explicit_db_snapshot(rds, snapshot, ours, source)
        _check_explicit(chosen, source, "snapshot")
    raw = chosen.raw

    instance = _db_instance(rds, chosen.source)
    plan = DbRestore(new_id, chosen, instance is not None, chosen.source)
    groups: list[str]
    if instance is not None:
        plan.source_name = tag_dict(instance.get("TagList")).get("Name") or chosen.source
        group = subnet_group or instance.get("DBSubnetGroup", {}).get("DBSubnetGroupName")
        groups = list(security_groups) or [
            g["VpcSecurityGroupId"]
            for g in instance.get("VpcSecurityGroups", [])
            if "VpcSecurityGroupId" in g
        ]
        params = parameter_group or next(
            (
                p["DBParameterGroupName"]
                for p in instance.get("DBParameterGroups", [])
                if not p.get("DBParameterGroupName", "default.").startswith("default.")
            ),
            None,
        )
        options = next(
            (
                o["OptionGroupName"]
                for o in instance.get("OptionGroupMemberships", [])
                if not o.get("OptionGroupName", "default:").startswith("default:")
            ),
            None,
        )
        port = instance.get("Endpoint", {}).get("Port") or instance.get("DbInstancePort") or raw.get("Port")
        multi_az = bool(instance.get("MultiAZ", False))
        klass = instance_class or instance.get("DBInstanceClass")
    else:
        vpc = raw.get("VpcId", "")
        missing = [
            flag
            for flag, given in (
                ("--subnet-group <name>", subnet_group),
                ("--security-group sg-...", security_groups),
            )
            if not given
        ]
        if missing:
            where = f" (the snapshot was taken in {vpc})" if vpc else ""
            raise UsageError(
                f"The source database {chosen.source} no longer exists, so its network settings cannot be "
                f"copied: pass {' and '.join(missing)}{where}."
            )
        group, groups, params, options = subnet_group, list(security_groups), parameter_group, None
        port = raw.get("Port")
        multi_az = False
        klass = instance_class
        plan.notes.append(
            f"The source database {chosen.source} no longer exists: engine {raw.get('Engine', '?')} "
            f"{raw.get('EngineVersion', '')}, port {port} and storage come from the snapshot"
            + ("" if params else ", the parameter group is the engine's default (pass --parameter-group)")
            + ("" if klass else ", the instance class is the one the snapshot was taken from")
            + "."
        )
    if subnet_group or security_groups:
        group_vpc = _db_subnet_group_vpc(rds, group) if group else ""
        if groups:
            _check_groups_in_vpc(ec2(), groups, group_vpc, f"DB subnet group {group}")
        if group_vpc and raw.get("VpcId") and raw["VpcId"] != group_vpc:
            plan.notes.append(
                f"The snapshot was taken in {raw['VpcId']}; the new instance goes into {group_vpc}."
            )
    plan.settings = {
        "engine": raw.get("Engine"),
        "instance_class": klass,
        "db_subnet_group": group,
        "vpc_security_groups": groups,
        "db_parameter_group": params,
        "option_group": options,
        "port": port,
        "multi_az": multi_az,
        "publicly_accessible": False,
        "deletion_protection": False,
        "copy_tags_to_snapshot": True,
        "tags": {"Name": f"{plan.source_name} (restored from {chosen.id})", RESTORED_FROM_KEY: chosen.id},
    }
    return plan


def request_db_restore(rds: RDSClient, plan: DbRestore) -> None:
    s = plan.settings
    request: RestoreDBInstanceFromDBSnapshotMessageTypeDef = {
        "DBInstanceIdentifier": plan.new_id,
        "DBSnapshotIdentifier": plan.backup.id,
        "MultiAZ": s["multi_az"],
        "PubliclyAccessible": False,
        "CopyTagsToSnapshot": True,
        "DeletionProtection": False,
        "Tags": aws_tags(s["tags"]),
    }
    if s["db_subnet_group"]:
        request["DBSubnetGroupName"] = s["db_subnet_group"]
    if s["vpc_security_groups"]:
        request["VpcSecurityGroupIds"] = list(s["vpc_security_groups"])
    if s["db_parameter_group"]:
        request["DBParameterGroupName"] = s["db_parameter_group"]
    if s["option_group"]:
        request["OptionGroupName"] = s["option_group"]
    if s["instance_class"]:
        request["DBInstanceClass"] = s["instance_class"]
    if s["port"]:
        request["Port"] = int(s["port"])
    rds.restore_db_instance_from_db_snapshot(**request)


def _db_steps(
    plan: DbRestore, endpoint: str | None, selection: SelectionTag, region: str, arn: str
) -> list[str]:
    new, old = plan.new_id, plan.backup.source
    where = (
        endpoint
        or f"the endpoint of {new} (aws rds describe-db-instances --region {region} --db-instance-identifier {new})"
    )
    rename = f"aws rds modify-db-instance --region {region} --db-instance-identifier {new} --new-db-instance-identifier {old} --apply-immediately"
    if plan.source_exists:
        rename = (
            f"aws rds modify-db-instance --region {region} --db-instance-identifier {old} "
            f"--new-db-instance-identifier {old}-old --apply-immediately, then {rename}"
        )
    return [
        f"Point the application's DB host at {where} (and the dump's db_host in cdk.json, then cdk deploy), "
        f"or rename the instances so the old host name leads to the new one: {rename}. "
        "It has the users and passwords of the snapshot's time.",
        f"Once it is the real database, tag it so schoolbackup backs it up: aws rds add-tags-to-resource "
        f"--region {region} --resource-name {arn} --tags Key={selection.key},Value={selection.value}",
        f"Delete the old database {old} only when you are sure the new one is right"
        + (" (it keeps running and being backed up meanwhile)." if plan.source_exists else "."),
    ]


def restore_db_command(  # noqa: PLR0917 - Typer passes the options positionally
    ctx: typer.Context,
    new_id: Annotated[str, typer.Option("--as", help="Name of the NEW DB instance (it must not exist yet).")],
    snapshot: Annotated[
        str, typer.Option(help="'latest' (newest usable of the source) or a snapshot id.")
    ] = LATEST,
    source: Annotated[
        str | None, typer.Option(help="The database whose snapshots to use (default: the only one).")
    ] = None,
    subnet_group: Annotated[
        str | None, typer.Option(help="DB subnet group (needed when the source database is gone).")
    ] = None,
    security_group: Annotated[
        list[str] | None,
        typer.Option(
            "--security-group", help="VPC security group id, repeatable (needed when the source is gone)."
        ),
    ] = None,
    instance_class: Annotated[
        str | None, typer.Option(help="Instance class, e.g. db.t4g.micro (default: the source's).")
    ] = None,
    parameter_group: Annotated[
        str | None,
        typer.Option(help="DB parameter group (default: the source's, if it is not a default one)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until the new instance is available.")
    ] = True,
    timeout_minutes: Annotated[int, typer.Option(min=1, help="How long to wait.")] = 60,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (people's lines go to stderr).")
    ] = False,
) -> None:
    """Restore an RDS snapshot of schoolbackup as a NEW DB instance next to the old one."""
    cli: Cli = ctx.obj
    out = Output(as_json=as_json)
    rds = cli.aws.rds()
    plan = plan_db_restore(
        rds,
        cli.aws.ec2,
        snapshot=snapshot,
        source=source,
        new_id=new_id,
        subnet_group=subnet_group,
        security_groups=security_group or [],
        instance_class=instance_class,
        parameter_group=parameter_group,
    )
    _print_plan(
        out,
        f"Restoring {plan.backup.id} ({plan.backup.source}, {_stamp(plan.backup.created)}) as {plan.new_id}:",
        {k: v for k, v in plan.settings.items() if k != "tags"},
    )
    for note in plan.notes:
        out.line(note)
    request_db_restore(rds, plan)
    region = cli.aws.region_name
    selection = _selection(cli)
    endpoint: str | None = None
    status = "creating"
    hint = f"see aws rds describe-db-instances --region {region} --db-instance-identifier {plan.new_id}"
    if wait:
        out.line("RDS restores take 10-30 minutes for a small database.")

        def describe() -> tuple[str, Any]:
            found = _db_instance(rds, plan.new_id)
            return (found.get("DBInstanceStatus", "unknown") if found else "missing"), found

        instance = _wait(
            plan.new_id,
            describe,
            "available",
            DB_FAILED_STATES,
            poll=DB_POLL_SECONDS,
            timeout_minutes=timeout_minutes,
            hint=hint,
        )
        status = "available"
        address = instance.get("Endpoint", {})
        endpoint = f"{address.get('Address')}:{address.get('Port')}" if address.get("Address") else None
        arn = instance.get("DBInstanceArn", plan.new_id)
        out.line(f"{plan.new_id} is available at {endpoint}.", style="bold green")
    else:
        found = _db_instance(rds, plan.new_id)
        arn = found.get("DBInstanceArn", plan.new_id) if found else plan.new_id
        out.line(
            f"Restore of {plan.new_id} requested; follow it with: aws rds wait db-instance-available "
            f"--region {region} --db-instance-identifier {plan.new_id}"
        )
    out.line(
        f"{plan.new_id} is NOT backed up until you tag it {selection} "
        f"(it does not carry the tag of {plan.backup.source}).",
        style="bold yellow",
    )
    steps = _db_steps(plan, endpoint, selection, region, arn)
    _print_steps(out, steps)
    if as_json:
        out.json(
            {
                "created": plan.new_id,
                "kind": "rds",
                "from": plan.backup.id,
                "source": plan.backup.source,
                "source_exists": plan.source_exists,
                "status": status,
                "settings": plan.settings,
                "endpoint": endpoint,
                "backed_up": False,
                "notes": plan.notes,
                "next_steps": steps,
            }
        )


# ---------------------------------------------------------------------------------------------------
# restore server


def isolated_group_name(source: str) -> str:
    return f"schoolbackup-isolated-{source}"


def _image_backups(ec2: EC2Client, images: Sequence[ImageTypeDef]) -> list[Backup]:
    wanted = [sid for image in images for sid in snapshot_ids(image)]
    states = snapshot_states(ec2, wanted) if wanted else {}
    return [
        Backup(
            image["ImageId"],
            tag_dict(image.get("Tags")).get(SOURCE_KEY) or image.get("SourceInstanceId") or "unknown",
            _created(image.get("CreationDate"), image.get("Name", "")),
            ami_state(image.get("State", "unknown"), snapshot_ids(image), states),
            image,
        )
        for image in images
    ]


def _explicit_image(ec2: EC2Client, ami: str, ours: Sequence[Backup], source: str | None) -> Backup:
    if not AMI_ID.match(ami):
        raise UsageError(f"--ami {ami!r} is not an AMI id like ami-0abc1234def567890 (or 'latest').")
    try:
        images = ec2.describe_images(ImageIds=[ami])["Images"]
    except ClientError as err:
        if error_code(err) not in (
            "InvalidAMIID.NotFound",
            "InvalidAMIID.Unavailable",
            "InvalidAMIID.Malformed",
        ):
            raise
        images = []
    if not images:
        raise CliError(f"There is no AMI {ami} in this region: {_newest_usable_text(ours, source)}.")
    if not is_managed(tag_dict(images[0].get("Tags"))):
        raise _not_ours("AMI", ami)
    return _image_backups(ec2, images[:1])[0]


def _instance(ec2: EC2Client, instance_id: str) -> InstanceTypeDef | None:
    """The instance (terminated ones too, while EC2 still lists them), or None."""
    try:
        pages = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as err:
        if error_code(err) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            return None
        raise
    return next((i for r in pages for i in r.get("Instances", [])), None)


def _live(instance: InstanceTypeDef | None) -> bool:
    return instance is not None and instance.get("State", {}).get("Name") not in GONE_EC2_STATES


def _subnet_vpc(ec2: EC2Client, subnet_id: str) -> str:
    try:
        subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as err:
        if error_code(err) in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            raise UsageError(f"There is no subnet {subnet_id} in this region.") from None
        raise
    return subnets[0].get("VpcId", "") if subnets else ""


@dataclass
class ServerRestore:
    backup: Backup
    source_exists: bool
    source_name: str
    vpc: str
    isolated: bool
    source_groups: list[str]
    source_profile: str | None
    source_addresses: dict[str, str]  # PrivateIpAddress / PublicIpAddress of the source, when known
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan_server_restore(
    ec2: EC2Client,
    *,
    ami: str,
    source: str | None,
    isolated: bool,
    subnet_id: str | None,
    instance_type: str | None,
    security_groups: Sequence[str],
) -> ServerRestore:
    if source is not None and not EC2_INSTANCE_ID.match(source):
        raise UsageError(f"--source {source!r} is not an EC2 instance id like i-0123456789abcdef0.")
    if isolated and security_groups:
        raise UsageError("--isolated uses only its own security group: leave out --security-group.")
    ours = _image_backups(ec2, managed_images(ec2))
    if ami == LATEST:
        chosen = _latest(ours, _choose_source(ours, source, lambda s: _live(_instance(ec2, s)), "AMI"), "AMI")
    else:
        chosen = _explicit_image(ec2, ami, ours, source)
        _check_explicit(chosen, source, "AMI")

    instance = _instance(ec2, chosen.source)
    live = _live(instance)
    name = tag_dict(instance.get("Tags")).get("Name") if instance else None
    if instance is not None and live:
        kind = instance_type or instance.get("InstanceType")
        subnet = subnet_id or instance.get("SubnetId")
        groups = list(security_groups) or [
            g["GroupId"] for g in instance.get("SecurityGroups", []) if "GroupId" in g
        ]
        source_groups = [g["GroupId"] for g in instance.get("SecurityGroups", []) if "GroupId" in g]
        profile = instance.get("IamInstanceProfile", {}).get("Arn")
        key = instance.get("KeyName")
        vpc = instance.get("VpcId", "")
        addresses = {k: str(instance[k]) for k in ("PrivateIpAddress", "PublicIpAddress") if instance.get(k)}
    else:
        how = "is terminated" if instance is not None else "no longer exists"
        missing = [
            flag
            for flag, given in (
                ("--subnet-id subnet-...", subnet_id),
                ("--instance-type t4g.small", instance_type),
            )
            if not given
        ]
        if missing:
            raise UsageError(
                f"The source server {chosen.source} {how}, so its settings cannot be copied: pass "
                f"{' and '.join(missing)}"
                + (
                    ""
                    if isolated or security_groups
                    else " (and --security-group sg-..., else the VPC's default group)"
                )
                + "."
            )
        kind, subnet, groups, source_groups = instance_type, subnet_id, list(security_groups), []
        profile = key = None
        vpc = ""
        addresses = {}
    plan = ServerRestore(
        chosen, live, name or chosen.source, vpc, isolated, source_groups, profile, addresses
    )
    if not subnet:
        raise UsageError(
            f"The source server {chosen.source} has no subnet to copy: pass --subnet-id subnet-...."
        )
    if subnet_id or not plan.vpc:
        plan.vpc = _subnet_vpc(ec2, subnet)
    if groups and not isolated and (security_groups or subnet_id):
        _check_groups_in_vpc(ec2, groups, plan.vpc, f"subnet {subnet}")
    if not live:
        plan.notes.append(
            f"The source server {chosen.source} {how}: no instance profile and no key pair are attached "
            "(attach a profile later with aws ec2 associate-iam-instance-profile)."
        )
    plan.settings = {
        "instance_type": kind,
        "subnet_id": subnet,
        "vpc_id": plan.vpc,
        "security_groups": [isolated_group_name(chosen.source)] if isolated else groups,
        "instance_profile_arn": None if isolated else profile,
        "key_name": key,
        "isolated": isolated,
        "metadata": "IMDSv2 only (HttpTokens=required)",
        "tags": {"Name": f"{plan.source_name} (restored from {chosen.id})", RESTORED_FROM_KEY: chosen.id},
    }
    return plan


def _describe_group(ec2: EC2Client, group_id: str) -> Any:
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def ensure_isolated_group(ec2: EC2Client, vpc: str, source: str) -> str:
    """``schoolbackup-isolated-<source>`` in ``vpc``: created (or reused) with no rule in either direction."""
    name = isolated_group_name(source)
    found = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}]
    )["SecurityGroups"]
    if found:
        group: Any = found[0]
        if not is_managed(tag_dict(group.get("Tags"))):
            raise CliError(
                f"Security group {name} ({group['GroupId']}) exists in {vpc} but does not carry "
                f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}: backupctl does not touch it; rename or delete it, then run again."
            )
    else:
        created = ec2.create_security_group(
            GroupName=name,
            Description="schoolbackup: isolated restore, no traffic in or out",
            VpcId=vpc,
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": aws_tags({"Name": name, MANAGED_BY_KEY: MANAGED_BY_VALUE, SOURCE_KEY: source}),
                }
            ],
        )
        group = _describe_group(ec2, created["GroupId"])
    group_id: str = group["GroupId"]
    if group.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):  # a new group allows all egress: revoke it
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=group["IpPermissionsEgress"])
    check = _describe_group(ec2, group_id)
    if check.get("IpPermissions") or check.get("IpPermissionsEgress"):
        raise CliError(
            f"Security group {name} ({group_id}) still has rules after revoking them: not launching."
        )
    return group_id


def request_server_restore(ec2: EC2Client, plan: ServerRestore) -> str:
    s = plan.settings
    if plan.isolated:
        s["security_groups"] = [ensure_isolated_group(ec2, plan.vpc, plan.backup.source)]
    tags = aws_tags(s["tags"])
    request: RunInstancesRequestTypeDef = {
        "ImageId": plan.backup.id,
        "InstanceType": s["instance_type"],
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": s["subnet_id"],
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    if s["security_groups"]:
        request["SecurityGroupIds"] = list(s["security_groups"])
    if s["instance_profile_arn"]:
        request["IamInstanceProfile"] = {"Arn": s["instance_profile_arn"]}
    if s["key_name"]:
        request["KeyName"] = s["key_name"]
    return ec2.run_instances(**request)["Instances"][0]["InstanceId"]


def _server_steps(
    plan: ServerRestore,
    *,
    new_id: str,
    new_ip: str | None,
    addresses: Sequence[Any],
    selection: SelectionTag,
    region: str,
) -> list[str]:
    old = plan.backup.source
    steps: list[str] = []
    if plan.isolated:
        group = plan.settings["security_groups"][0]
        steps.append(
            f"It is isolated: {group} lets nothing in or out and it has no instance profile; look at it through "
            "the EC2 serial console, or stop it and attach its volume to a clean instance."
        )
        groups = " ".join(plan.source_groups) or "sg-<your server's groups>"
        leave = (
            f"aws ec2 modify-instance-attribute --region {region} --instance-id {new_id} --groups {groups}"
        )
        if plan.source_profile:
            leave += (
                f", then give it its role back: aws ec2 associate-iam-instance-profile --region {region} "
                f"--instance-id {new_id} --iam-instance-profile Arn={plan.source_profile}"
            )
        steps.append(f"To leave isolation once you trust it, swap the security groups: {leave}")
    for address in addresses:
        steps.append(
            f"Move the Elastic IP {address.get('PublicIp', '')} from {old} to the new server: aws ec2 "
            f"associate-address --region {region} --allocation-id {address.get('AllocationId', '')} "
            f"--instance-id {new_id} --allow-reassociation"
        )
    if not addresses:
        steps.append(
            f"No Elastic IP is associated with {old}: clients find the server through DNS or its address."
        )
    old_ips = ", ".join(plan.source_addresses.values())
    steps.append(
        "Change DNS records that point at the old server"
        + (f" ({old_ips})" if old_ips else "")
        + f" to the new one ({new_ip or 'its address'}), unless they point at the Elastic IP you moved."
    )
    move_tag = f"aws ec2 create-tags --region {region} --resources {new_id} --tags Key={selection.key},Value={selection.value}"
    if plan.source_exists:
        move_tag += f" and aws ec2 delete-tags --region {region} --resources {old} --tags Key={selection.key}"
    steps.append(
        f"Once it is the real server, move the {selection} tag so schoolbackup backs it up: {move_tag}"
    )
    steps.append(
        f"Terminate the old server {old} only when you are sure the new one is right."
        if plan.source_exists
        else "Check the application on the new server before you tell anyone it is back."
    )
    return steps


def restore_server_command(  # noqa: PLR0917 - Typer passes the options positionally
    ctx: typer.Context,
    ami: Annotated[
        str, typer.Option(help="'latest' (newest usable AMI of the source) or an AMI id.")
    ] = LATEST,
    source: Annotated[
        str | None, typer.Option(help="The server (i-...) whose AMIs to use (default: the only one).")
    ] = None,
    isolated: Annotated[
        bool,
        typer.Option(
            "--isolated", help="No traffic in or out, no instance profile (to look at a compromised server)."
        ),
    ] = False,
    subnet_id: Annotated[
        str | None, typer.Option(help="Subnet (needed when the source server is gone).")
    ] = None,
    instance_type: Annotated[
        str | None, typer.Option(help="Instance type (needed when the source server is gone).")
    ] = None,
    security_group: Annotated[
        list[str] | None,
        typer.Option("--security-group", help="Security group id, repeatable (default: the source's)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until the new server is running.")
    ] = True,
    timeout_minutes: Annotated[int, typer.Option(min=1, help="How long to wait.")] = 60,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (people's lines go to stderr).")
    ] = False,
) -> None:
    """Launch a NEW server from an AMI of schoolbackup, next to the old one (or isolated)."""
    cli: Cli = ctx.obj
    out = Output(as_json=as_json)
    ec2 = cli.aws.ec2()
    plan = plan_server_restore(
        ec2,
        ami=ami,
        source=source,
        isolated=isolated,
        subnet_id=subnet_id,
        instance_type=instance_type,
        security_groups=security_group or [],
    )
    region = cli.aws.region_name
    _print_plan(
        out,
        f"Launching a new server from {plan.backup.id} ({plan.source_name}, {plan.backup.source}, "
        f"{_stamp(plan.backup.created)}):",
        {k: v for k, v in plan.settings.items() if k != "tags"},
    )
    for note in plan.notes:
        out.line(note)
    new_id = request_server_restore(ec2, plan)
    out.line(
        f"Launched {new_id}"
        + (
            f" in {', '.join(plan.settings['security_groups'])}, which lets no traffic in or out."
            if isolated
            else "."
        )
    )
    status = "pending"
    instance: Any = None
    hint = f"see aws ec2 describe-instances --region {region} --instance-ids {new_id}"
    if wait:

        def describe() -> tuple[str, Any]:
            found = _instance(ec2, new_id)
            return (found.get("State", {}).get("Name", "unknown") if found else "pending"), found

        instance = _wait(
            new_id,
            describe,
            "running",
            SERVER_FAILED_STATES,
            poll=SERVER_POLL_SECONDS,
            timeout_minutes=timeout_minutes,
            hint=hint,
            reason=lambda found: str((found or {}).get("StateReason", {}).get("Message", "")),
        )
        status = "running"
    else:
        instance = _instance(ec2, new_id)
    private_ip = instance.get("PrivateIpAddress") if instance else None
    public_ip = instance.get("PublicIpAddress") if instance else None
    if wait:
        out.line(f"{new_id} is running, private IP {private_ip or '-'}.", style="bold green")
    else:
        out.line(
            f"{new_id} is starting; follow it with: aws ec2 wait instance-running --region {region} --instance-ids {new_id}"
        )
    if not isolated and plan.source_exists:
        out.line(
            f"The new server runs the same software as {plan.backup.source}: its cron jobs, mail and application "
            "run too and reach the same database.",
            style="yellow",
        )
    addresses: list[Any] = []
    if plan.source_exists:
        addresses = list(
            ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [plan.backup.source]}])[
                "Addresses"
            ]
        )
    selection = _selection(cli)
    out.line(f"{new_id} is NOT backed up until it carries the tag {selection}.", style="bold yellow")
    steps = _server_steps(
        plan, new_id=new_id, new_ip=private_ip, addresses=addresses, selection=selection, region=region
    )
    _print_steps(out, steps)
    if as_json:
        out.json(
            {
                "created": new_id,
                "kind": "ec2",
                "from": plan.backup.id,
                "source": plan.backup.source,
                "source_exists": plan.source_exists,
                "status": status,
                "settings": plan.settings,
                "endpoint": private_ip,
                "private_ip": private_ip,
                "public_ip": public_ip,
                "isolated": isolated,
                "elastic_ips": [
                    {"public_ip": a.get("PublicIp"), "allocation_id": a.get("AllocationId")}
                    for a in addresses
                ],
                "backed_up": False,
                "notes": plan.notes,
                "next_steps": steps,
            }
        )


def register(restore: typer.Typer) -> None:
    restore.command("db")(speaks_aws(restore_db_command))
    restore.command("server")(speaks_aws(restore_server_command))
