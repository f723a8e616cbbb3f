"""``backupctl restore server``: a new EC2 instance from a schoolbackup AMI with the source's type, subnet,
security groups and instance profile, IMDSv2 only, or into isolation; prints what to switch over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from botocore.exceptions import ClientError

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import CliError, UsageError
from cli.backupctl.output import JsonFlag, Output
from cli.backupctl.restore_common import (
    AMI_ID,
    GONE_EC2_STATES,
    LATEST,
    RESTORED_FROM_KEY,
    SERVER_FAILED_STATES,
    SERVER_POLL_SECONDS,
    Backup,
    FromRegion,
    both,
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
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.images import managed_images, snapshot_ids, snapshot_states
from lambdas.common.aws.states import ami_state
from lambdas.common.contracts import (
    EC2_INSTANCE_ID,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    SOURCE_KEY,
    aws_tags,
    is_managed,
    tag_dict,
)
from lambdas.common.messages import say
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, InstanceTypeDef, RunInstancesRequestTypeDef


# The metadata setting as --json shows it (the plan prints it in the configured language).
METADATA = "IMDSv2 only (HttpTokens=required)"


def isolated_group_name(source: str) -> str:
    return f"schoolbackup-isolated-{source}"


def _image_backups(ec2: EC2Client, images: Sequence[ImageTypeDef]) -> list[Backup]:
    wanted = [sid for image in images for sid in snapshot_ids(image)]
    states = snapshot_states(ec2, wanted) if wanted else {}
    return [
        Backup(
            image["ImageId"],
            tag_dict(image.get("Tags")).get(SOURCE_KEY) or image.get("SourceInstanceId") or "unknown",
            created(image.get("CreationDate"), image.get("Name", "")),
            ami_state(image.get("State", "unknown"), snapshot_ids(image), states),
            image,
        )
        for image in images
    ]


def _explicit_image(
    ec2: EC2Client, ami: str, ours: Sequence[Backup], source: str | None, language: str
) -> Backup:
    if not AMI_ID.match(ami):
        raise UsageError(say("cli.restore.bad_ami", language, ami=ami))
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
        raise CliError(
            say("cli.restore.no_ami", language, ami=ami, newest=newest_usable_text(ours, source, language))
        )
    if not is_managed(tag_dict(images[0].get("Tags"))):
        raise not_ours("ami", ami, language)
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


def _subnet_vpc(ec2: EC2Client, subnet_id: str, language: str) -> str:
    try:
        subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as err:
        if error_code(err) in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            raise UsageError(say("cli.restore.no_subnet", language, id=subnet_id)) from None
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
    language: str,
) -> ServerRestore:
    if source is not None and not EC2_INSTANCE_ID.match(source):
        raise UsageError(say("cli.restore.bad_server_source", language, name=source))
    if isolated and security_groups:
        raise UsageError(say("cli.restore.isolated_no_groups", language))
    ours = _image_backups(ec2, managed_images(ec2))
    if ami == LATEST:
        chosen = latest(
            ours,
            choose_source(ours, source, lambda s: _live(_instance(ec2, s)), "ami", language),
            "ami",
            language,
        )
    else:
        chosen = _explicit_image(ec2, ami, ours, source, language)
        check_explicit(chosen, source, "ami", language)

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
        how = say(
            "cli.restore.server_terminated" if instance is not None else "cli.restore.server_gone", language
        )
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
                say(
                    "cli.restore.server_gone_needs",
                    language,
                    source=chosen.source,
                    how=how,
                    flags=listed(missing, language),
                    groups=""
                    if isolated or security_groups
                    else say("cli.restore.server_gone_groups", language),
                )
            )
        kind, subnet, groups, source_groups = instance_type, subnet_id, list(security_groups), []
        profile = key = None
        vpc = ""
        addresses = {}
    plan = ServerRestore(
        chosen, live, name or chosen.source, vpc, isolated, source_groups, profile, addresses
    )
    if not subnet:
        raise UsageError(say("cli.restore.no_subnet_to_copy", language, source=chosen.source))
    if subnet_id or not plan.vpc:
        plan.vpc = _subnet_vpc(ec2, subnet, language)
    if groups and not isolated and (security_groups or subnet_id):
        where = say("cli.restore.where_subnet", language, name=subnet)
        check_groups_in_vpc(ec2, groups, plan.vpc, where, language)
    if not live:
        plan.notes.append(say("cli.restore.server_gone_note", language, source=chosen.source, how=how))
    plan.settings = {
        "instance_type": kind,
        "subnet_id": subnet,
        "vpc_id": plan.vpc,
        "security_groups": [isolated_group_name(chosen.source)] if isolated else groups,
        "instance_profile_arn": None if isolated else profile,
        "key_name": key,
        "isolated": isolated,
        "metadata": METADATA,
        "tags": {"Name": f"{plan.source_name} (restored from {chosen.id})", RESTORED_FROM_KEY: chosen.id},
    }
    return plan


def _describe_group(ec2: EC2Client, group_id: str) -> Any:
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def ensure_isolated_group(ec2: EC2Client, vpc: str, source: str, language: str) -> str:
    """``schoolbackup-isolated-<source>`` in ``vpc``: created (or reused) with no rule in either direction."""
    name = isolated_group_name(source)
    found = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}]
    )["SecurityGroups"]
    if found:
        group: Any = found[0]
        if not is_managed(tag_dict(group.get("Tags"))):
            raise CliError(
                say(
                    "cli.restore.group_not_ours",
                    language,
                    name=name,
                    id=group["GroupId"],
                    vpc=vpc,
                    tag=f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}",
                )
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
        raise CliError(say("cli.restore.group_has_rules", language, name=name, id=group_id))
    return group_id


def request_server_restore(ec2: EC2Client, plan: ServerRestore, language: str) -> str:
    s = plan.settings
    if plan.isolated:
        s["security_groups"] = [ensure_isolated_group(ec2, plan.vpc, plan.backup.source, language)]
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
    language: str,
) -> list[str]:
    old = plan.backup.source
    steps: list[str] = []
    if plan.isolated:
        group = plan.settings["security_groups"][0]
        steps.append(say("cli.restore.step_isolated", language, group=group))
        groups = " ".join(plan.source_groups) or say("cli.restore.your_groups", language)
        leave = (
            f"aws ec2 modify-instance-attribute --region {region} --instance-id {new_id} --groups {groups}"
        )
        if plan.source_profile:
            profile = (
                f"aws ec2 associate-iam-instance-profile --region {region} "
                f"--instance-id {new_id} --iam-instance-profile Arn={plan.source_profile}"
            )
            leave = say("cli.restore.give_role_back", language, command=leave, profile_command=profile)
        steps.append(say("cli.restore.step_leave_isolation", language, command=leave))
    for address in addresses:
        command = (
            f"aws ec2 associate-address --region {region} --allocation-id {address.get('AllocationId', '')} "
            f"--instance-id {new_id} --allow-reassociation"
        )
        steps.append(
            say(
                "cli.restore.step_move_eip",
                language,
                ip=address.get("PublicIp", ""),
                old=old,
                command=command,
            )
        )
    if not addresses:
        steps.append(say("cli.restore.step_no_eip", language, old=old))
    old_ips = ", ".join(plan.source_addresses.values())
    steps.append(
        say(
            "cli.restore.step_dns",
            language,
            old_ips=f" ({old_ips})" if old_ips else "",
            new_ip=new_ip or say("cli.restore.its_address", language),
        )
    )
    move_tag = f"aws ec2 create-tags --region {region} --resources {new_id} --tags Key={selection.key},Value={selection.value}"
    if plan.source_exists:
        delete_tag = f"aws ec2 delete-tags --region {region} --resources {old} --tags Key={selection.key}"
        move_tag = both(move_tag, delete_tag, language)
    steps.append(say("cli.restore.step_move_tag", language, tag=selection, command=move_tag))
    steps.append(
        say("cli.restore.step_terminate_old", language, old=old)
        if plan.source_exists
        else say("cli.restore.step_check_app", language)
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
    from_region: FromRegion = None,
    as_json: JsonFlag = False,
) -> None:
    """Launch a NEW server from an AMI of schoolbackup, next to the old one (or isolated)."""
    cli: Cli = ctx.obj
    cli.from_region(from_region)
    lang = cli.language
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
        language=lang,
    )
    region = cli.aws.region_name
    shown = {k: v for k, v in plan.settings.items() if k != "tags"}
    shown["metadata"] = say("cli.restore.imdsv2_only", lang)
    print_plan(
        out,
        say(
            "cli.restore.launching",
            lang,
            id=plan.backup.id,
            name=plan.source_name,
            source=plan.backup.source,
            when=stamp(plan.backup.created, lang),
        ),
        shown,
        lang,
    )
    for note in plan.notes:
        out.line(note)
    new_id = request_server_restore(ec2, plan, lang)
    out.line(
        say(
            "cli.restore.launched_isolated",
            lang,
            id=new_id,
            groups=", ".join(plan.settings["security_groups"]),
        )
        if isolated
        else say("cli.restore.launched", lang, id=new_id)
    )
    status = "pending"
    instance: Any = None
    hint = say(
        "cli.restore.see",
        lang,
        command=f"aws ec2 describe-instances --region {region} --instance-ids {new_id}",
    )
    if wait:

        def describe() -> tuple[str, Any]:
            found = _instance(ec2, new_id)
            return (found.get("State", {}).get("Name", "unknown") if found else "pending"), found

        instance = wait_until(
            new_id,
            describe,
            "running",
            SERVER_FAILED_STATES,
            poll=SERVER_POLL_SECONDS,
            timeout_minutes=timeout_minutes,
            hint=hint,
            language=lang,
            reason=lambda found: str((found or {}).get("StateReason", {}).get("Message", "")),
        )
        status = "running"
    else:
        instance = _instance(ec2, new_id)
    private_ip = instance.get("PrivateIpAddress") if instance else None
    public_ip = instance.get("PublicIpAddress") if instance else None
    if wait:
        out.line(say("cli.restore.server_running", lang, id=new_id, ip=private_ip or "-"), style="bold green")
    else:
        command = f"aws ec2 wait instance-running --region {region} --instance-ids {new_id}"
        out.line(say("cli.restore.server_starting", lang, id=new_id, command=command))
    if not isolated and plan.source_exists:
        out.line(say("cli.restore.same_software", lang, source=plan.backup.source), style="yellow")
    addresses: list[Any] = []
    if plan.source_exists:
        addresses = list(
            ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [plan.backup.source]}])[
                "Addresses"
            ]
        )
    selection = selection_tag(cli)
    out.line(say("cli.restore.server_not_backed_up", lang, id=new_id, tag=selection), style="bold yellow")
    steps = _server_steps(
        plan,
        new_id=new_id,
        new_ip=private_ip,
        addresses=addresses,
        selection=selection,
        region=region,
        language=lang,
    )
    print_steps(out, steps, lang)
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
    restore.command("server")(speaks_aws(restore_server_command))
