"""``backupctl restore db``: a new RDS instance from a schoolbackup snapshot, with the source's network
settings, not public; waits and prints the endpoint and the next steps."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from botocore.exceptions import ClientError

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import CliError, UsageError
from cli.backupctl.output import JsonFlag, Output
from cli.backupctl.restore_common import (
    DB_FAILED_STATES,
    DB_POLL_SECONDS,
    LATEST,
    RDS_ID_MAX,
    RESTORED_FROM_KEY,
    Backup,
    FromRegion,
    check_explicit,
    check_groups_in_vpc,
    choose_source,
    created,
    latest,
    listed,
    newest_usable_text,
    not_ours,
    print_plan,
    print_steps,
    selection_tag,
    stamp,
    wait_until,
)
from lambdas.common.aws.db_snapshots import managed_db_snapshots
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.states import rds_snapshot_state
from lambdas.common.contracts import (
    SOURCE_KEY,
    aws_tags,
    is_managed,
    tag_dict,
)
from lambdas.common.messages import Msg, msg, say
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef, RestoreDBInstanceFromDBSnapshotMessageTypeDef


def rds_id_problem(name: str) -> Msg | None:
    """Why ``name`` cannot be an RDS DB instance identifier, or None."""
    if not name or len(name) > RDS_ID_MAX:
        return msg("cli.restore.id_length", max=RDS_ID_MAX)
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        return msg("cli.restore.id_characters")
    if not name[0].isalpha():
        return msg("cli.restore.id_start")
    if "--" in name:
        return msg("cli.restore.id_double_hyphen")
    if name.endswith("-"):
        return msg("cli.restore.id_end")
    return None


def _db_snapshot_backup(snapshot: Any) -> Backup:
    tags = tag_dict(snapshot.get("TagList"))
    name = snapshot["DBSnapshotIdentifier"]
    return Backup(
        name,
        tags.get(SOURCE_KEY) or snapshot.get("DBInstanceIdentifier", "unknown"),
        created(snapshot.get("SnapshotCreateTime"), name),
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
    rds: RDSClient, snapshot_id: str, ours: Sequence[Backup], source: str | None, language: str
) -> Backup:
    try:
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except ClientError as err:
        if error_code(err) not in ("DBSnapshotNotFound", "DBSnapshotNotFoundFault", "InvalidParameterValue"):
            raise
        found = []
    if not found:
        raise CliError(
            say(
                "cli.restore.no_db_snapshot",
                language,
                id=snapshot_id,
                newest=newest_usable_text(ours, source, language),
            )
        )
    if not is_managed(tag_dict(found[0].get("TagList"))):
        raise not_ours("db", snapshot_id, language)
    return _db_snapshot_backup(found[0])


def _db_subnet_group_vpc(rds: RDSClient, name: str, language: str) -> str:
    try:
        groups = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
    except ClientError as err:
        if error_code(err) in ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"):
            raise UsageError(say("cli.restore.no_subnet_group", language, name=name)) from None
        raise
    return groups[0].get("VpcId", "") if groups else ""


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
    language: str,
) -> DbRestore:
    problem = rds_id_problem(new_id)
    if problem:
        raise UsageError(say("cli.restore.bad_new_id", language, name=new_id, problem=problem))
    if source is not None and rds_id_problem(source):
        raise UsageError(say("cli.restore.bad_db_source", language, name=source))
    new_id, source = new_id.lower(), source.lower() if source else None  # RDS keeps identifiers in lower case
    if _db_instance(rds, new_id) is not None:
        raise UsageError(say("cli.restore.db_exists", language, name=new_id))
    ours = [_db_snapshot_backup(s) for s in managed_db_snapshots(rds)]
    if snapshot == LATEST:
        chosen = latest(
            ours,
            choose_source(ours, source, lambda s: _db_instance(rds, s) is not None, "db", language),
            "db",
            language,
        )
    else:
        chosen = _explicit_db_snapshot(rds, snapshot, ours, source, language)
        check_explicit(chosen, source, "db", language)
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
        if _major(instance.get("EngineVersion")) != _major(raw.get("EngineVersion")) and not parameter_group:
            # The source was upgraded after this snapshot: its groups are for another engine version.
            plan.notes.append(
                say(
                    "cli.restore.engine_changed",
                    language,
                    engine=raw.get("Engine", ""),
                    version=raw.get("EngineVersion", ""),
                    now=instance.get("EngineVersion", ""),
                )
            )
            params = options = None
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
            where = say("cli.restore.snapshot_vpc", language, vpc=vpc) if vpc else ""
            raise UsageError(
                say(
                    "cli.restore.db_gone_needs",
                    language,
                    source=chosen.source,
                    flags=listed(missing, language),
                    where=where,
                )
            )
        group, groups, params, options = subnet_group, list(security_groups), parameter_group, None
        port = raw.get("Port")
        multi_az = False
        klass = instance_class
        extra = ("" if params else say("cli.restore.db_gone_default_params", language)) + (
            "" if klass else say("cli.restore.db_gone_snapshot_class", language)
        )
        plan.notes.append(
            say(
                "cli.restore.db_gone_note",
                language,
                source=chosen.source,
                engine=raw.get("Engine", "?"),
                version=raw.get("EngineVersion", ""),
                port=port,
                extra=extra,
            )
        )
    if subnet_group or security_groups:
        group_vpc = _db_subnet_group_vpc(rds, group, language) if group else ""
        if groups:
            where = say("cli.restore.where_db_subnet_group", language, name=group)
            check_groups_in_vpc(ec2(), groups, group_vpc, where, language)
        if group_vpc and raw.get("VpcId") and raw["VpcId"] != group_vpc:
            plan.notes.append(say("cli.restore.other_vpc", language, vpc=raw["VpcId"], new_vpc=group_vpc))
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


def _major(version: Any) -> str:
    """``8.0.35`` -> ``8.0``: what a parameter group family depends on."""
    return ".".join(str(version or "").split(".")[:2])


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
    try:
        rds.restore_db_instance_from_db_snapshot(**request)
    except ClientError as err:
        # The client does not retry this call (a retry would collide with itself); a first attempt whose
        # answer was lost shows as "already exists" with our own RestoredFrom tag: the restore is running.
        if error_code(err) != "DBInstanceAlreadyExists" or not _restored_from(
            rds, plan.new_id, plan.backup.id
        ):
            raise


def _restored_from(rds: RDSClient, db_id: str, snapshot_id: str) -> bool:
    found = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"]
    return bool(found) and tag_dict(found[0].get("TagList")).get(RESTORED_FROM_KEY) == snapshot_id


def _db_steps(
    plan: DbRestore, endpoint: str | None, selection: SelectionTag, region: str, arn: str, *, language: str
) -> list[str]:
    new, old = plan.new_id, plan.backup.source
    where = endpoint or say(
        "cli.restore.db_endpoint_of",
        language,
        new=new,
        command=f"aws rds describe-db-instances --region {region} --db-instance-identifier {new}",
    )
    rename = f"aws rds modify-db-instance --region {region} --db-instance-identifier {new} --new-db-instance-identifier {old} --apply-immediately"
    if plan.source_exists:
        first = (
            f"aws rds modify-db-instance --region {region} --db-instance-identifier {old} "
            f"--new-db-instance-identifier {old}-old --apply-immediately"
        )
        rename = say("cli.restore.then", language, first=first, second=rename)
    tag = (
        f"aws rds add-tags-to-resource --region {region} --resource-name {arn} "
        f"--tags Key={selection.key},Value={selection.value}"
    )
    delete = "cli.restore.db_step_delete_running" if plan.source_exists else "cli.restore.db_step_delete"
    return [
        say("cli.restore.db_step_point", language, where=where, rename=rename),
        say("cli.restore.db_step_tag", language, command=tag),
        say(delete, language, old=old),
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
    from_region: FromRegion = None,
    as_json: JsonFlag = False,
) -> None:
    """Restore an RDS snapshot of schoolbackup as a NEW DB instance next to the old one."""
    cli: Cli = ctx.obj
    cli.from_region(from_region)
    lang = cli.language
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
        language=lang,
    )
    print_plan(
        out,
        say(
            "cli.restore.restoring_db",
            lang,
            id=plan.backup.id,
            source=plan.backup.source,
            when=stamp(plan.backup.created, lang),
            new=plan.new_id,
        ),
        {k: v for k, v in plan.settings.items() if k != "tags"},
        lang,
    )
    for note in plan.notes:
        out.line(note)
    request_db_restore(cli.aws.once("rds"), plan)
    region = cli.aws.region_name
    selection = selection_tag(cli)
    endpoint: str | None = None
    status = "creating"
    hint = say(
        "cli.restore.see",
        lang,
        command=f"aws rds describe-db-instances --region {region} --db-instance-identifier {plan.new_id}",
    )
    if wait:
        out.line(say("cli.restore.db_takes", lang))

        def describe() -> tuple[str, Any]:
            found = _db_instance(rds, plan.new_id)
            return (found.get("DBInstanceStatus", "unknown") if found else "missing"), found

        instance = wait_until(
            plan.new_id,
            describe,
            "available",
            DB_FAILED_STATES,
            poll=DB_POLL_SECONDS,
            timeout_minutes=timeout_minutes,
            hint=hint,
            language=lang,
        )
        status = "available"
        address = instance.get("Endpoint", {})
        endpoint = f"{address.get('Address')}:{address.get('Port')}" if address.get("Address") else None
        arn = instance.get("DBInstanceArn", plan.new_id)
        out.line(
            say("cli.restore.db_available", lang, new=plan.new_id, endpoint=endpoint), style="bold green"
        )
    else:
        found = _db_instance(rds, plan.new_id)
        arn = found.get("DBInstanceArn", plan.new_id) if found else plan.new_id
        command = (
            f"aws rds wait db-instance-available --region {region} --db-instance-identifier {plan.new_id}"
        )
        out.line(say("cli.restore.db_requested", lang, new=plan.new_id, command=command))
    out.line(
        say("cli.restore.db_not_backed_up", lang, new=plan.new_id, tag=selection, source=plan.backup.source),
        style="bold yellow",
    )
    steps = _db_steps(plan, endpoint, selection, region, arn, language=lang)
    print_steps(out, steps, lang)
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


def register(restore: typer.Typer) -> None:
    restore.command("db")(speaks_aws(restore_db_command))
