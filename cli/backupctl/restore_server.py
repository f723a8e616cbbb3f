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
    check_explicit,
    check_groups_in_vpc,
    choose_source,
    created,
    latest,
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
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, InstanceTypeDef, RunInstancesRequestTypeDef


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
        raise CliError(f"There is no AMI {ami} in this region: {newest_usable_text(ours, source)}.")
    if not is_managed(tag_dict(images[0].get("Tags"))):
        raise not_ours("AMI", ami)
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
        chosen = latest(ours, choose_source(ours, source, lambda s: _live(_instance(ec2, s)), "AMI"), "AMI")
    else:
        chosen = _explicit_image(ec2, ami, ours, source)
        check_explicit(chosen, source, "AMI")

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
        check_groups_in_vpc(ec2, groups, plan.vpc, f"subnet {subnet}")
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
            f"It is isolated as far as security groups go: {group} has no rule and it has no instance profile. "
            "Security groups do not stop the VPC's own DNS resolver, time service or instance metadata: for a "
            "server you suspect, also block DNS (Route 53 Resolver DNS Firewall) or use a quarantine subnet. "
            "Look at it through the EC2 serial console, or stop it and attach its volume to a clean instance."
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
    as_json: JsonFlag = False,
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
    print_plan(
        out,
        f"Launching a new server from {plan.backup.id} ({plan.source_name}, {plan.backup.source}, "
        f"{stamp(plan.backup.created)}):",
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

        instance = wait_until(
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
    selection = selection_tag(cli)
    out.line(f"{new_id} is NOT backed up until it carries the tag {selection}.", style="bold yellow")
    steps = _server_steps(
        plan, new_id=new_id, new_ip=private_ip, addresses=addresses, selection=selection, region=region
    )
    print_steps(out, steps)
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
