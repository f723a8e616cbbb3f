"""The one table from an AWS API operation to the IAM request(s) AWS authorizes for it.

Each row names the operation (service, API name), the IAM action, how the resource ARN is built, and the
request condition keys that the real request carries (``keys``: checked against the AWS service
authorization data in tests/iam/test_mapping.py, and every key a row emits must be declared). Some
operations are authorized more than once: S3 calls KMS on the caller's behalf for SSE-KMS objects, SNS
calls KMS for an encrypted topic, EC2 and RDS check the new resource and the tags written on create.
Those follow-up requests are built by the same row (``cause`` says so).

An operation that is not in the table raises :class:`UnmappedOperation`: a test that makes it fails
until the row is added, so no request is ever judged by a guess or silently skipped.

Facts the rows rely on (AWS documentation):
- S3 authorizes CreateMultipartUpload, UploadPart and CompleteMultipartUpload as ``s3:PutObject``;
  ``s3:ObjectCreationOperation`` is true for PutObject and CompleteMultipartUpload (the calls that
  create an object and accept ``If-None-Match``) and false for CreateMultipartUpload/UploadPart. SSE
  headers travel only on PutObject and CreateMultipartUpload.
- With SSE-KMS, S3 calls ``kms:GenerateDataKey`` for new objects/uploads and ``kms:Decrypt`` to read
  an object and to complete a multipart upload, as the caller, via ``s3.<region>.amazonaws.com``, with
  the bucket ARN as encryption context (S3 Bucket Keys).
- A publisher to a KMS-encrypted SNS topic needs ``kms:GenerateDataKey*`` and ``kms:Decrypt`` (via SNS,
  context ``aws:sns:topicArn``).
- RDS and EC2 check tag-on-create as ``rds:AddTagsToResource`` / ``ec2:CreateTags``
  (``ec2:CreateAction``), and List/Describe calls without an identifier against ``*`` patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from lambdas.common.contracts import OFFSITE_KEY_ALIAS, STAGING_KEY_ALIAS, offsite_bucket_name
from tests.iam.stack import ACCOUNT, PARTITION, REGION, StackModel

Value = str | tuple[str, ...]
Context = dict[str, Value]
Params = Mapping[str, Any]

NEW_IMAGE: Final = "ami-0000000000000000a"  # stand-ins for ids AWS assigns only after the check
NEW_SNAPSHOT: Final = "snap-0000000000000000a"
SOURCE_SNAPSHOT: Final = "snap-0000000000000000b"  # a snapshot of the image CopyImage copies


class UnmappedOperation(KeyError):
    """A recorded operation has no row in the table."""


@dataclass(frozen=True)
class IamRequest:
    action: str
    resource: str
    context: Mapping[str, Value]
    cause: str

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()) if not k.startswith("aws:"))
        return f"{self.action} on {self.resource}" + (f" [{keys}]" if keys else "") + f" (from {self.cause})"


@dataclass
class World:
    """How names in a test translate to the deployed stack, and what AWS knows about resources.

    ``tags(kind, id)`` gives the tags of an ``instance``, ``image``, ``snapshot``, ``db`` or
    ``db-snapshot`` as they are at the time of the request; ``image_snapshots(image_id)`` the EBS
    snapshots behind an AMI.
    """

    stack: StackModel
    buckets: frozenset[str] = frozenset()  # names that stand for the backup bucket in this test
    topics: frozenset[str] = frozenset()  # ARNs that stand for the alarm topic
    keys: frozenset[str] = frozenset()  # ARNs/ids that stand for the bucket key
    secrets: Mapping[str, str] = field(default_factory=dict)  # test secret ARN -> configured ARN
    ids: Mapping[str, str] = field(default_factory=dict)  # test (moto) ids -> the stack's (drill network...)
    tags: Callable[[str, str], Mapping[str, str]] = lambda kind, rid: {}
    image_snapshots: Callable[[str], Sequence[str]] = lambda image: ()
    region: str = REGION  # of the call: the offsite region's calls name that region's ARNs
    account: str = ACCOUNT  # of the caller: a target account's role names that account's ARNs

    @property
    def rds_arn(self) -> str:
        return f"arn:{PARTITION}:rds:{self.region}:{self.account}"

    def bucket(self, name: str) -> str:
        return self.stack.backup_bucket if name in self.buckets else name

    def topic(self, arn: str) -> str:
        return self.stack.topic_arn if arn in self.topics else arn

    def kms_key(self, key: str | None) -> str:
        if key is None or key in self.keys:
            return self.stack.key_arn
        return key

    def secret(self, arn: str) -> str:
        return self.secrets.get(arn, arn)

    def id(self, value: str) -> str:
        """A subnet, security group, VPC, subnet group, document or profile of the test, as the stack's."""
        return self.ids.get(value, value)


Build = Callable[[Params, World], list[IamRequest]]


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    action: str
    keys: tuple[str, ...]  # request-specific condition keys the real request may carry
    build: Build
    note: str = ""
    follow_up: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (action, keys) of requests it causes


TABLE: dict[tuple[str, str], Operation] = {}


def _row(
    service: str,
    name: str,
    action: str,
    *,
    keys: tuple[str, ...] = (),
    note: str = "",
    follow_up: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        TABLE[(service, name)] = Operation(service, name, action, keys, build, note, follow_up)
        return build

    return register


def iam_requests(service: str, operation: str, params: Params, world: World) -> list[IamRequest]:
    """The IAM requests AWS authorizes for one API call; raises UnmappedOperation for unknown calls."""
    row = TABLE.get((service, operation))
    if row is None:
        raise UnmappedOperation(
            f"{service}.{operation} has no row in tests/iam/requests.py: add the IAM action, resource "
            "and condition keys it carries (AWS service authorization reference)"
        )
    requests = row.build(params, world)
    allowed = {row.action: set(row.keys)} | {a: set(k) for a, k in row.follow_up}
    for request in requests:
        undeclared = {
            k
            for k in request.context
            if not k.startswith("aws:") and _pattern(k) not in allowed[request.action]
        }
        if undeclared:
            raise AssertionError(f"{service}.{operation} emits undeclared keys {sorted(undeclared)}")
    return requests


def _pattern(key: str) -> str:
    """``aws:ResourceTag/Backup`` -> ``aws:ResourceTag/${TagKey}`` (how the authorization data names it)."""
    head, sep, _ = key.partition("/")
    if not sep:
        return key
    if head.startswith("kms:EncryptionContext:"):
        return key
    return f"{head}/${{TagKey}}"


def _req(action: str, resource: str, cause: str, context: Context | None = None) -> IamRequest:
    return IamRequest(action, resource, dict(context or {}), cause)


def _tag_context(prefixes: Sequence[str], tags: Mapping[str, str]) -> Context:
    return {f"{p}/{k}": v for p in prefixes for k, v in tags.items()}


def _request_tags(tags: Mapping[str, str], extra: Sequence[str] = ()) -> Context:
    if not tags:
        return {}
    ctx: Context = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    ctx["aws:TagKeys"] = tuple(tags)
    for prefix in extra:
        ctx.update({f"{prefix}/{k}": v for k, v in tags.items()})
    return ctx


def _aws_tags(tags: Any) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or []}


EC2: Final = f"arn:{PARTITION}:ec2:{REGION}"
_EC2_ACCOUNT_TYPES: Final = {
    "vpce-": "vpc-endpoint",
    "vol-": "volume",
    "eni-": "network-interface",
    "subnet-": "subnet",
    "sg-": "security-group",
    "vpc-": "vpc",
}
NEW_INSTANCE: Final = "i-0000000000000000a"
NEW_VOLUME: Final = "vol-0000000000000000a"
NEW_INTERFACE: Final = "eni-0000000000000000a"
NEW_ENDPOINT: Final = "vpce-0000000000000000a"


def _ec2_arn(resource_id: str, region: str = REGION) -> str:
    if region != REGION and resource_id.startswith(("ami-", "snap-")):  # prune in the offsite region
        return f"arn:{PARTITION}:ec2:{region}::{_ec2_kind(resource_id)}/{resource_id}"
    for prefix, rtype in _EC2_ACCOUNT_TYPES.items():
        if resource_id.startswith(prefix):
            return f"{EC2}:{ACCOUNT}:{rtype}/{resource_id}"
    if resource_id.startswith("i-"):
        return f"{EC2}:{ACCOUNT}:instance/{resource_id}"
    if resource_id.startswith("ami-"):
        return f"{EC2}::image/{resource_id}"
    if resource_id.startswith("snap-"):
        return f"{EC2}::snapshot/{resource_id}"
    raise UnmappedOperation(f"EC2 resource id {resource_id!r} is not modelled")


def _ec2_kind(resource_id: str) -> str:
    kinds = {"i": "instance", "ami": "image", "snap": "snapshot", "vpce": "vpc-endpoint", "vol": "volume"}
    return kinds[resource_id.split("-", 1)[0]]


for _op in (
    "DescribeInstances",
    "DescribeImages",
    "DescribeSnapshots",
    "DescribeVolumes",
    "DescribeVpcEndpoints",
):

    @_row("ec2", _op, f"ec2:{_op}", note="no resource-level permissions: always '*'")
    def _describe(params: Params, world: World, op: str = _op) -> list[IamRequest]:
        return [_req(f"ec2:{op}", "*", f"ec2.{op}")]


_RESOURCE_TAG_KEYS = ("aws:ResourceTag/${TagKey}", "ec2:ResourceTag/${TagKey}")
_REQUEST_TAG_KEYS = ("aws:RequestTag/${TagKey}", "aws:TagKeys")


def _created(action: str, cause: str, new: dict[str, str], params: Params) -> list[IamRequest]:
    """``ec2:<action>`` on each new resource (resource type -> its id) with the request tags asked for it;
    for tags given, AWS's second check of the same call: ec2:CreateTags with ec2:CreateAction=<action>."""
    specs = {s["ResourceType"]: _aws_tags(s.get("Tags")) for s in params.get("TagSpecifications", [])}
    out = []
    for rtype, new_id in new.items():
        tags = specs.get(rtype, {})
        out.append(_req(f"ec2:{action}", _ec2_arn(new_id), cause, _request_tags(tags)))
        if tags:
            out.append(
                _req(
                    "ec2:CreateTags",
                    _ec2_arn(new_id),
                    f"{cause} (TagSpecifications {rtype})",
                    {**_request_tags(tags), "ec2:CreateAction": action},
                )
            )
    return out


@_row(
    "ec2",
    "CreateImage",
    "ec2:CreateImage",
    keys=(*_RESOURCE_TAG_KEYS, *_REQUEST_TAG_KEYS),
    note="checked on the instance (its tags), the new image and the new snapshots; tags given with "
    "TagSpecifications are also checked as ec2:CreateTags with ec2:CreateAction=CreateImage",
    follow_up=(("ec2:CreateTags", (*_REQUEST_TAG_KEYS, "ec2:CreateAction")),),
)
def _create_image(params: Params, world: World) -> list[IamRequest]:
    instance = params["InstanceId"]
    cause = "ec2.CreateImage"
    on_instance = _tag_context(("aws:ResourceTag", "ec2:ResourceTag"), world.tags("instance", instance))
    return [
        _req("ec2:CreateImage", _ec2_arn(instance), cause, on_instance),
        *_created("CreateImage", cause, {"image": NEW_IMAGE, "snapshot": NEW_SNAPSHOT}, params),
    ]


@_row(
    "ec2",
    "CreateTags",
    "ec2:CreateTags",
    keys=(*_REQUEST_TAG_KEYS, *_RESOURCE_TAG_KEYS),
    note="one check per resource, with its current tags",
)
def _create_tags(params: Params, world: World) -> list[IamRequest]:
    tags = _aws_tags(params.get("Tags"))
    return [
        _req(
            "ec2:CreateTags",
            _ec2_arn(rid, world.region),
            "ec2.CreateTags",
            {
                **_request_tags(tags),
                **_tag_context(("aws:ResourceTag", "ec2:ResourceTag"), world.tags(_ec2_kind(rid), rid)),
            },
        )
        for rid in params["Resources"]
    ]


@_row(
    "ec2",
    "DeregisterImage",
    "ec2:DeregisterImage",
    keys=_RESOURCE_TAG_KEYS,
    note="with DeleteAssociatedSnapshots each snapshot is also checked as ec2:DeleteSnapshot",
    follow_up=(("ec2:DeleteSnapshot", _RESOURCE_TAG_KEYS),),
)
def _deregister(params: Params, world: World) -> list[IamRequest]:
    image = params["ImageId"]
    out = [
        _req(
            "ec2:DeregisterImage",
            _ec2_arn(image, world.region),
            "ec2.DeregisterImage",
            _tag_context(("aws:ResourceTag", "ec2:ResourceTag"), world.tags("image", image)),
        )
    ]
    if params.get("DeleteAssociatedSnapshots"):
        for snap in world.image_snapshots(image):
            out.append(
                _req(
                    "ec2:DeleteSnapshot",
                    _ec2_arn(snap),
                    "ec2.DeregisterImage(DeleteAssociatedSnapshots)",
                    _tag_context(("aws:ResourceTag", "ec2:ResourceTag"), world.tags("snapshot", snap)),
                )
            )
    return out


@_row("ec2", "DeleteSnapshot", "ec2:DeleteSnapshot", keys=_RESOURCE_TAG_KEYS)
def _delete_snapshot(params: Params, world: World) -> list[IamRequest]:
    snap = params["SnapshotId"]
    return [
        _req(
            "ec2:DeleteSnapshot",
            _ec2_arn(snap, world.region),
            "ec2.DeleteSnapshot",
            _tag_context(("aws:ResourceTag", "ec2:ResourceTag"), world.tags("snapshot", snap)),
        )
    ]


def _resource_tags(world: World, rid: str) -> Context:
    return _tag_context(("aws:ResourceTag", "ec2:ResourceTag"), world.tags(_ec2_kind(rid), rid))


@_row(
    "ec2",
    "RunInstances",
    "ec2:RunInstances",
    keys=(*_RESOURCE_TAG_KEYS, *_REQUEST_TAG_KEYS),
    note="checked on the image (its tags), the subnet and security group, and the new instance, volume "
    "and network interface (tags given with TagSpecifications; also as ec2:CreateTags with "
    "ec2:CreateAction=RunInstances); an instance profile is also iam:PassRole of its role",
    follow_up=(
        ("ec2:CreateTags", (*_REQUEST_TAG_KEYS, "ec2:CreateAction")),
        ("iam:PassRole", ("iam:PassedToService",)),
    ),
)
def _run_instances(params: Params, world: World) -> list[IamRequest]:
    cause = "ec2.RunInstances"
    interfaces = params.get("NetworkInterfaces", [])
    subnets = [i["SubnetId"] for i in interfaces if i.get("SubnetId")] + (
        [params["SubnetId"]] if params.get("SubnetId") else []
    )
    groups = [g for i in interfaces for g in i.get("Groups", [])] + list(params.get("SecurityGroupIds", []))
    image = params["ImageId"]
    out = [_req("ec2:RunInstances", _ec2_arn(image), cause, _resource_tags(world, image))]
    out += [_req("ec2:RunInstances", _ec2_arn(world.id(x)), cause) for x in (*subnets, *groups)]
    new = {"instance": NEW_INSTANCE, "volume": NEW_VOLUME, "network-interface": NEW_INTERFACE}
    out += _created("RunInstances", cause, new, params)
    profile = params.get("IamInstanceProfile", {}).get("Name")
    if profile:
        role = world.stack.instance_profile_role(world.id(profile))
        out.append(
            _req(
                "iam:PassRole",
                role,
                f"{cause} (IamInstanceProfile)",
                {"iam:PassedToService": "ec2.amazonaws.com"},
            )
        )
    return out


@_row("ec2", "TerminateInstances", "ec2:TerminateInstances", keys=_RESOURCE_TAG_KEYS)
def _terminate(params: Params, world: World) -> list[IamRequest]:
    return [
        _req("ec2:TerminateInstances", _ec2_arn(i), "ec2.TerminateInstances", _resource_tags(world, i))
        for i in params["InstanceIds"]
    ]


@_row(
    "ec2",
    "CreateVpcEndpoint",
    "ec2:CreateVpcEndpoint",
    keys=_REQUEST_TAG_KEYS,
    note="checked on the VPC, each subnet and security group, and the new endpoint (its request tags; "
    "also as ec2:CreateTags with ec2:CreateAction=CreateVpcEndpoint)",
    follow_up=(("ec2:CreateTags", (*_REQUEST_TAG_KEYS, "ec2:CreateAction")),),
)
def _create_endpoint(params: Params, world: World) -> list[IamRequest]:
    cause = "ec2.CreateVpcEndpoint"
    parts = [params["VpcId"], *params.get("SubnetIds", []), *params.get("SecurityGroupIds", [])]
    out = [_req("ec2:CreateVpcEndpoint", _ec2_arn(world.id(x)), cause) for x in parts]
    return out + _created("CreateVpcEndpoint", cause, {"vpc-endpoint": NEW_ENDPOINT}, params)


@_row("ec2", "DeleteVpcEndpoints", "ec2:DeleteVpcEndpoints", keys=_RESOURCE_TAG_KEYS)
def _delete_endpoints(params: Params, world: World) -> list[IamRequest]:
    return [
        _req("ec2:DeleteVpcEndpoints", _ec2_arn(e), "ec2.DeleteVpcEndpoints", _resource_tags(world, e))
        for e in params["VpcEndpointIds"]
    ]


@_row("ec2", "DeleteVolume", "ec2:DeleteVolume", keys=_RESOURCE_TAG_KEYS)
def _delete_volume(params: Params, world: World) -> list[IamRequest]:
    volume = params["VolumeId"]
    return [_req("ec2:DeleteVolume", _ec2_arn(volume), "ec2.DeleteVolume", _resource_tags(world, volume))]


RDS: Final = f"arn:{PARTITION}:rds:{REGION}:{ACCOUNT}"
_DB_TAG_KEYS = ("aws:ResourceTag/${TagKey}", "rds:db-tag/${TagKey}")
_SNAPSHOT_TAG_KEYS = ("aws:ResourceTag/${TagKey}", "rds:snapshot-tag/${TagKey}")
_RDS_REQUEST_TAG_KEYS = ("aws:RequestTag/${TagKey}", "aws:TagKeys", "rds:req-tag/${TagKey}")


@_row("rds", "DescribeDBInstances", "rds:DescribeDBInstances", note="db:<id>, or db:* for a listing")
def _describe_dbs(params: Params, world: World) -> list[IamRequest]:
    db = params.get("DBInstanceIdentifier")
    return [_req("rds:DescribeDBInstances", f"{RDS}:db:{db or '*'}", "rds.DescribeDBInstances")]


@_row("rds", "DescribeDBClusters", "rds:DescribeDBClusters")
def _describe_clusters(params: Params, world: World) -> list[IamRequest]:
    cluster = params.get("DBClusterIdentifier")
    return [_req("rds:DescribeDBClusters", f"{RDS}:cluster:{cluster or '*'}", "rds.DescribeDBClusters")]


@_row(
    "rds",
    "DescribeDBSnapshots",
    "rds:DescribeDBSnapshots",
    note="snapshot:<id> when named; a listing is checked on db:<id or *> and snapshot:*",
)
def _describe_db_snapshots(params: Params, world: World) -> list[IamRequest]:
    cause, rds = "rds.DescribeDBSnapshots", world.rds_arn
    if params.get("DBSnapshotIdentifier"):
        return [_req("rds:DescribeDBSnapshots", f"{rds}:snapshot:{params['DBSnapshotIdentifier']}", cause)]
    db = params.get("DBInstanceIdentifier") or "*"
    return [
        _req("rds:DescribeDBSnapshots", f"{rds}:db:{db}", cause),
        _req("rds:DescribeDBSnapshots", f"{rds}:snapshot:*", cause),
    ]


@_row("rds", "DescribeAccountAttributes", "rds:DescribeAccountAttributes", note="account-wide: '*'")
def _account_attributes(params: Params, world: World) -> list[IamRequest]:
    return [_req("rds:DescribeAccountAttributes", "*", "rds.DescribeAccountAttributes")]


@_row(
    "rds",
    "CreateDBSnapshot",
    "rds:CreateDBSnapshot",
    keys=(*_DB_TAG_KEYS, *_RDS_REQUEST_TAG_KEYS),
    note="checked on the instance (its tags) and the new snapshot; Tags also as rds:AddTagsToResource",
    follow_up=(("rds:AddTagsToResource", _RDS_REQUEST_TAG_KEYS),),
)
def _create_db_snapshot(params: Params, world: World) -> list[IamRequest]:
    db, name = params["DBInstanceIdentifier"], params["DBSnapshotIdentifier"]
    tags = _aws_tags(params.get("Tags"))
    cause = "rds.CreateDBSnapshot"
    out = [
        _req(
            "rds:CreateDBSnapshot",
            f"{RDS}:db:{db}",
            cause,
            _tag_context(("aws:ResourceTag", "rds:db-tag"), world.tags("db", db)),
        ),
        _req("rds:CreateDBSnapshot", f"{RDS}:snapshot:{name}", cause, _request_tags(tags, ("rds:req-tag",))),
    ]
    if tags:
        out.append(
            _req(
                "rds:AddTagsToResource",
                f"{RDS}:snapshot:{name}",
                f"{cause} (Tags)",
                _request_tags(tags, ("rds:req-tag",)),
            )
        )
    return out


@_row("rds", "DeleteDBSnapshot", "rds:DeleteDBSnapshot", keys=_SNAPSHOT_TAG_KEYS)
def _delete_db_snapshot(params: Params, world: World) -> list[IamRequest]:
    name = params["DBSnapshotIdentifier"]
    return [
        _req(
            "rds:DeleteDBSnapshot",
            f"{world.rds_arn}:snapshot:{name}",
            "rds.DeleteDBSnapshot",
            _tag_context(("aws:ResourceTag", "rds:snapshot-tag"), world.tags("db-snapshot", name)),
        )
    ]


@_row(
    "rds",
    "RestoreDBInstanceFromDBSnapshot",
    "rds:RestoreDBInstanceFromDBSnapshot",
    keys=(*_SNAPSHOT_TAG_KEYS, *_RDS_REQUEST_TAG_KEYS),
    note="checked on the snapshot (its tags), the new instance (request tags; Tags also as "
    "rds:AddTagsToResource) and the subnet group; ManageMasterUserPassword makes RDS create the master "
    "secret as the caller (secretsmanager:CreateSecret and TagResource on rds!db-*)",
    follow_up=(
        ("rds:AddTagsToResource", _RDS_REQUEST_TAG_KEYS),
        ("secretsmanager:CreateSecret", ()),
        ("secretsmanager:TagResource", ()),
    ),
)
def _restore_db(params: Params, world: World) -> list[IamRequest]:
    db, snap = params["DBInstanceIdentifier"], params["DBSnapshotIdentifier"]
    tags = _aws_tags(params.get("Tags"))
    cause = "rds.RestoreDBInstanceFromDBSnapshot"
    out = [  # the new instance first: what a must-deny case about the name is about
        _req(
            "rds:RestoreDBInstanceFromDBSnapshot",
            f"{RDS}:db:{db}",
            cause,
            _request_tags(tags, ("rds:req-tag",)),
        ),
        _req(
            "rds:RestoreDBInstanceFromDBSnapshot",
            f"{RDS}:snapshot:{snap}",
            cause,
            _tag_context(("aws:ResourceTag", "rds:snapshot-tag"), world.tags("db-snapshot", snap)),
        ),
    ]
    if params.get("DBSubnetGroupName"):
        group = world.id(params["DBSubnetGroupName"])
        out.append(_req("rds:RestoreDBInstanceFromDBSnapshot", f"{RDS}:subgrp:{group}", cause))
    if tags:
        out.append(
            _req(
                "rds:AddTagsToResource",
                f"{RDS}:db:{db}",
                f"{cause} (Tags)",
                _request_tags(tags, ("rds:req-tag",)),
            )
        )
    if params.get("ManageMasterUserPassword"):
        secret = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-00000000-0000-0000-0000-000000000000-AbCdEf"
        for action in ("secretsmanager:CreateSecret", "secretsmanager:TagResource"):
            out.append(_req(action, secret, f"{cause} (ManageMasterUserPassword)"))
    return out


@_row("rds", "DeleteDBInstance", "rds:DeleteDBInstance", keys=_DB_TAG_KEYS)
def _delete_db(params: Params, world: World) -> list[IamRequest]:
    db = params["DBInstanceIdentifier"]
    return [
        _req(
            "rds:DeleteDBInstance",
            f"{RDS}:db:{db}",
            "rds.DeleteDBInstance",
            _tag_context(("aws:ResourceTag", "rds:db-tag"), world.tags("db", db)),
        )
    ]


_SSE_KEYS = (
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-server-side-encryption-customer-algorithm",
)
_PUT_KEYS = (*_SSE_KEYS, "s3:ObjectCreationOperation", "s3:if-none-match", "s3:if-match")
# The evaluator cannot see kms:EncryptionContext:<key> values (it matches variable keys only after a
# "/"), so requests name only the context keys; no policy of ours conditions on a context value
# (tests/iam/test_mapping.py proves it), so nothing is decided by what is left out.
_KMS_VIA_KEYS = ("kms:ViaService", "kms:CallerAccount", "kms:EncryptionContextKeys")


def _s3_object(params: Params, world: World) -> str:
    return f"arn:{PARTITION}:s3:::{world.bucket(params['Bucket'])}/{params['Key']}"


def _sse(params: Params, world: World) -> Context:
    ctx: Context = {}
    if params.get("ServerSideEncryption"):
        ctx["s3:x-amz-server-side-encryption"] = params["ServerSideEncryption"]
    if params.get("SSEKMSKeyId"):
        ctx["s3:x-amz-server-side-encryption-aws-kms-key-id"] = world.kms_key(params["SSEKMSKeyId"])
    if params.get("SSECustomerAlgorithm"):
        ctx["s3:x-amz-server-side-encryption-customer-algorithm"] = params["SSECustomerAlgorithm"]
    return ctx


def _conditional(params: Params) -> Context:
    ctx: Context = {}
    if params.get("IfNoneMatch"):
        ctx["s3:if-none-match"] = params["IfNoneMatch"]
    if params.get("IfMatch"):
        ctx["s3:if-match"] = params["IfMatch"]
    return ctx


def _kms_via_s3(action: str, params: Params, world: World, cause: str, key: str | None = None) -> IamRequest:
    """The KMS call S3 makes as the caller for an object of the backup bucket (SSE-KMS, bucket key)."""
    return _req(
        action,
        world.kms_key(key),
        f"{cause} -> S3 calls KMS",
        {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:CallerAccount": ACCOUNT,
            "kms:EncryptionContextKeys": ("aws:s3:arn",),
            "aws:ViaAWSService": "true",
        },
    )


def _encrypted(params: Params, world: World) -> bool:
    """SSE-KMS applies: the backup bucket (default encryption with our key) or an explicit aws:kms."""
    return (
        world.bucket(params["Bucket"]) == world.stack.backup_bucket
        or params.get("ServerSideEncryption") == "aws:kms"
    )


_KMS_FOLLOW_UP = (("kms:GenerateDataKey", _KMS_VIA_KEYS), ("kms:Decrypt", _KMS_VIA_KEYS))


@_row("s3", "ListObjectsV2", "s3:ListBucket", keys=("s3:prefix", "s3:delimiter", "s3:max-keys"))
def _list(params: Params, world: World) -> list[IamRequest]:
    ctx: Context = {}
    if "Prefix" in params:
        ctx["s3:prefix"] = params["Prefix"]
    if params.get("Delimiter"):
        ctx["s3:delimiter"] = params["Delimiter"]
    if params.get("MaxKeys") is not None:
        ctx["s3:max-keys"] = str(params["MaxKeys"])
    return [
        _req(
            "s3:ListBucket", f"arn:{PARTITION}:s3:::{world.bucket(params['Bucket'])}", "s3.ListObjectsV2", ctx
        )
    ]


# The offsite copy bucket's objects are replicas under the offsite key (another stack, in the call's
# region): S3 decrypts them with that key, which the home roles name by its alias (kms:ResourceAliases).
OFFSITE_KEY_STAND_IN: Final = "0ff51te0-0000-4000-8000-000000000000"


def _offsite_decrypt(params: Params, world: World, cause: str) -> IamRequest | None:
    """kms:Decrypt of an object in the copy bucket of the call's region, or None for other buckets."""
    if params["Bucket"] != offsite_bucket_name(world.account, world.region):
        return None
    offsite_stack = getattr(world.stack, "offsite", None)  # the offsite stack's model: its key (and policy)
    key = (
        offsite_stack.key_arn
        if offsite_stack is not None
        else f"arn:{PARTITION}:kms:{world.region}:{world.account}:key/{OFFSITE_KEY_STAND_IN}"
    )
    return _req(
        "kms:Decrypt",
        key,
        f"{cause} -> S3 calls KMS (offsite key)",
        {
            "kms:ViaService": f"s3.{world.region}.amazonaws.com",
            "kms:CallerAccount": world.account,
            "kms:EncryptionContextKeys": ("aws:s3:arn",),
            "kms:ResourceAliases": (OFFSITE_KEY_ALIAS,),
            "aws:ViaAWSService": "true",
        },
    )


for _op in ("GetObject", "HeadObject"):

    @_row(
        "s3",
        _op,
        "s3:GetObject",
        note="s3:GetObjectVersion with a VersionId; in the offsite copy bucket decrypted with the offsite key",
        follow_up=(*_KMS_FOLLOW_UP[:1], ("kms:Decrypt", (*_KMS_VIA_KEYS, "kms:ResourceAliases"))),
    )
    def _get(params: Params, world: World, op: str = _op) -> list[IamRequest]:
        action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
        out = [_req(action, _s3_object(params, world), f"s3.{op}")]
        offsite = _offsite_decrypt(params, world, f"s3.{op}") if op == "GetObject" else None
        if offsite is not None:
            out.append(offsite)
        elif _encrypted(params, world) and op == "GetObject":
            out.append(_kms_via_s3("kms:Decrypt", params, world, f"s3.{op}"))
        return out


@_row("s3", "PutObject", "s3:PutObject", keys=_PUT_KEYS, follow_up=_KMS_FOLLOW_UP)
def _put(params: Params, world: World) -> list[IamRequest]:
    ctx = {**_sse(params, world), **_conditional(params), "s3:ObjectCreationOperation": "true"}
    out = [_req("s3:PutObject", _s3_object(params, world), "s3.PutObject", ctx)]
    if _encrypted(params, world):
        out.append(
            _kms_via_s3("kms:GenerateDataKey", params, world, "s3.PutObject", params.get("SSEKMSKeyId"))
        )
    return out


@_row("s3", "CreateMultipartUpload", "s3:PutObject", keys=_PUT_KEYS, follow_up=_KMS_FOLLOW_UP)
def _create_mpu(params: Params, world: World) -> list[IamRequest]:
    ctx = {**_sse(params, world), "s3:ObjectCreationOperation": "false"}
    out = [_req("s3:PutObject", _s3_object(params, world), "s3.CreateMultipartUpload", ctx)]
    if _encrypted(params, world):
        out.append(
            _kms_via_s3(
                "kms:GenerateDataKey", params, world, "s3.CreateMultipartUpload", params.get("SSEKMSKeyId")
            )
        )
    return out


@_row(
    "s3",
    "UploadPart",
    "s3:PutObject",
    keys=_PUT_KEYS,
    note="carries no SSE and no conditional headers",
    follow_up=_KMS_FOLLOW_UP,
)
def _upload_part(params: Params, world: World) -> list[IamRequest]:
    out = [
        _req(
            "s3:PutObject",
            _s3_object(params, world),
            "s3.UploadPart",
            {"s3:ObjectCreationOperation": "false"},
        )
    ]
    if _encrypted(params, world):
        out.append(_kms_via_s3("kms:Decrypt", params, world, "s3.UploadPart"))
    return out


@_row("s3", "CompleteMultipartUpload", "s3:PutObject", keys=_PUT_KEYS, follow_up=_KMS_FOLLOW_UP)
def _complete_mpu(params: Params, world: World) -> list[IamRequest]:
    ctx = {**_conditional(params), "s3:ObjectCreationOperation": "true"}
    out = [_req("s3:PutObject", _s3_object(params, world), "s3.CompleteMultipartUpload", ctx)]
    if _encrypted(params, world):
        out.append(_kms_via_s3("kms:Decrypt", params, world, "s3.CompleteMultipartUpload"))
    return out


@_row("s3", "AbortMultipartUpload", "s3:AbortMultipartUpload")
def _abort_mpu(params: Params, world: World) -> list[IamRequest]:
    return [_req("s3:AbortMultipartUpload", _s3_object(params, world), "s3.AbortMultipartUpload")]


@_row("s3", "DeleteObject", "s3:DeleteObject", note="s3:DeleteObjectVersion with a VersionId")
def _delete_object(params: Params, world: World) -> list[IamRequest]:
    action = "s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"
    return [_req(action, _s3_object(params, world), "s3.DeleteObject")]


# Requests only the must-deny table makes (a server must never be able to make them).
for _op, _action in (
    ("PutObjectRetention", "s3:PutObjectRetention"),
    ("PutObjectLegalHold", "s3:PutObjectLegalHold"),
    ("PutObjectTagging", "s3:PutObjectTagging"),
    ("PutObjectAcl", "s3:PutObjectAcl"),
):

    @_row("s3", _op, _action)
    def _object_write(params: Params, world: World, op: str = _op, action: str = _action) -> list[IamRequest]:
        out = [_req(action, _s3_object(params, world), f"s3.{op}")]
        if params.get("BypassGovernanceRetention"):
            out.append(_req("s3:BypassGovernanceRetention", _s3_object(params, world), f"s3.{op}(Bypass)"))
        return out


for _op, _action in (
    ("PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    ("PutBucketVersioning", "s3:PutBucketVersioning"),
    ("PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration"),
    ("PutBucketPolicy", "s3:PutBucketPolicy"),
    ("DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
):

    @_row("s3", _op, _action)
    def _bucket_write(params: Params, world: World, op: str = _op, action: str = _action) -> list[IamRequest]:
        return [_req(action, f"arn:{PARTITION}:s3:::{world.bucket(params['Bucket'])}", f"s3.{op}")]


@_row("cloudwatch", "GetMetricData", "cloudwatch:GetMetricData", note="no resource-level permissions")
def _metric_data(params: Params, world: World) -> list[IamRequest]:
    return [_req("cloudwatch:GetMetricData", "*", "cloudwatch.GetMetricData")]


@_row("cloudwatch", "DescribeAlarmHistory", "cloudwatch:DescribeAlarmHistory", note="alarm:<name> or alarm:*")
def _alarm_history(params: Params, world: World) -> list[IamRequest]:
    name = params.get("AlarmName") or "*"
    return [
        _req(
            "cloudwatch:DescribeAlarmHistory",
            f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "cloudwatch.DescribeAlarmHistory",
        )
    ]


@_row("cloudwatch", "DescribeAlarms", "cloudwatch:DescribeAlarms", note="alarm:*: a listing by prefix")
def _describe_alarms(params: Params, world: World) -> list[IamRequest]:
    return [
        _req(
            "cloudwatch:DescribeAlarms",
            f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:*",
            "cloudwatch.DescribeAlarms",
        )
    ]


_SNS_KMS_KEYS = ("kms:ViaService", "kms:CallerAccount", "kms:EncryptionContextKeys")


def kms_via_sns(action: str, key_arn: str, cause: str) -> IamRequest:
    return _req(
        action,
        key_arn,
        f"{cause} -> SNS calls KMS",
        {
            "kms:ViaService": f"sns.{REGION}.amazonaws.com",
            "kms:CallerAccount": ACCOUNT,
            "kms:EncryptionContextKeys": ("aws:sns:topicArn",),
            "aws:ViaAWSService": "true",
        },
    )


@_row(
    "sns",
    "Publish",
    "sns:Publish",
    note="the topic is KMS-encrypted: the publisher also needs kms:GenerateDataKey and kms:Decrypt",
    follow_up=(("kms:GenerateDataKey", _SNS_KMS_KEYS), ("kms:Decrypt", _SNS_KMS_KEYS)),
)
def _publish(params: Params, world: World) -> list[IamRequest]:
    topic = world.topic(params["TopicArn"])
    out = [_req("sns:Publish", topic, "sns.Publish")]
    if topic == world.stack.topic_arn:
        out += [
            kms_via_sns(a, world.stack.key_arn, "sns.Publish") for a in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return out


@_row("sns", "ListSubscriptionsByTopic", "sns:ListSubscriptionsByTopic", note="on the topic")
def _list_subscriptions(params: Params, world: World) -> list[IamRequest]:
    return [
        _req("sns:ListSubscriptionsByTopic", world.topic(params["TopicArn"]), "sns.ListSubscriptionsByTopic")
    ]


@_row("sesv2", "SendEmail", "ses:SendEmail", keys=("ses:FromAddress",), note="on the sender's identity")
def _send_email(params: Params, world: World) -> list[IamRequest]:
    sender = params["FromEmailAddress"]
    return [
        _req(
            "ses:SendEmail",
            f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/{sender}",
            "sesv2.SendEmail",
            {"ses:FromAddress": sender},
        )
    ]


@_row("secretsmanager", "GetSecretValue", "secretsmanager:GetSecretValue", keys=("secretsmanager:SecretId",))
def _secret(params: Params, world: World) -> list[IamRequest]:
    arn = world.secret(params["SecretId"])
    return [
        _req(
            "secretsmanager:GetSecretValue",
            arn,
            "secretsmanager.GetSecretValue",
            {"secretsmanager:SecretId": arn},
        )
    ]


@_row("sts", "AssumeRole", "sts:AssumeRole", note="a service assuming a role of the stack (its trust policy)")
def _assume_role(params: Params, world: World) -> list[IamRequest]:
    return [_req("sts:AssumeRole", params["RoleArn"], "sts.AssumeRole")]


@_row("lambda", "Invoke", "lambda:InvokeFunction")
def _invoke(params: Params, world: World) -> list[IamRequest]:
    name = params["FunctionName"]
    arn = name if name.startswith("arn:") else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return [_req("lambda:InvokeFunction", arn, "lambda.Invoke")]


@_row(
    "ssm",
    "SendCommand",
    "ssm:SendCommand",
    keys=("ssm:resourceTag/${TagKey}", "aws:ResourceTag/${TagKey}"),
    note="checked on the document and on each target instance (with its tags)",
)
def _send_command(params: Params, world: World) -> list[IamRequest]:
    document = world.id(params["DocumentName"])
    out = [
        _req(
            "ssm:SendCommand",
            f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:document/{document}",
            "ssm.SendCommand",
        )
    ]
    for instance in params.get("InstanceIds", []):
        out.append(
            _req(
                "ssm:SendCommand",
                _ec2_arn(instance),
                "ssm.SendCommand (target)",
                _tag_context(("ssm:resourceTag", "aws:ResourceTag"), world.tags("instance", instance)),
            )
        )
    return out


@_row("stepfunctions", "StartExecution", "states:StartExecution", note="on the state machine")
def _start_execution(params: Params, world: World) -> list[IamRequest]:
    return [_req("states:StartExecution", params["stateMachineArn"], "stepfunctions.StartExecution")]


@_row("ssm", "GetCommandInvocation", "ssm:GetCommandInvocation", note="no resource-level permissions: '*'")
def _command_invocation(params: Params, world: World) -> list[IamRequest]:
    return [_req("ssm:GetCommandInvocation", "*", "ssm.GetCommandInvocation")]


_SQS_KMS_KEYS = ("kms:ViaService", "kms:CallerAccount", "kms:EncryptionContextKeys")


@_row(
    "sqs",
    "SendMessage",
    "sqs:SendMessage",
    note="the queue is KMS-encrypted: the sender also needs kms:GenerateDataKey and kms:Decrypt via SQS",
    follow_up=(("kms:GenerateDataKey", _SQS_KMS_KEYS), ("kms:Decrypt", _SQS_KMS_KEYS)),
)
def _send_message(params: Params, world: World) -> list[IamRequest]:
    queue = params["QueueArn"]
    via = {
        "kms:ViaService": f"sqs.{REGION}.amazonaws.com",
        "kms:CallerAccount": ACCOUNT,
        "kms:EncryptionContextKeys": ("aws:sqs:arn",),
        "aws:ViaAWSService": "true",
    }
    return [
        _req("sqs:SendMessage", queue, "sqs.SendMessage"),
        *(
            _req(a, world.stack.key_arn, "sqs.SendMessage -> SQS calls KMS", via)
            for a in ("kms:GenerateDataKey", "kms:Decrypt")
        ),
    ]


for _op, _action in (("CreateLogStream", "logs:CreateLogStream"), ("PutLogEvents", "logs:PutLogEvents")):

    @_row("logs", _op, _action, note="log-stream ARN of the group")
    def _logs(params: Params, world: World, op: str = _op, action: str = _action) -> list[IamRequest]:
        arn = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{params['logGroupName']}:log-stream:{params['logStreamName']}"
        return [_req(action, arn, f"logs.{op}")]


# The IAM review (lambdas/common/jobs/iam_review.py): account-wide IAM reads, the policy simulator, the
# bucket policy, the stack's own template.
for _op in (
    "GenerateCredentialReport",
    "GetCredentialReport",
    "GetAccountSummary",
    "GetAccountAuthorizationDetails",
):

    @_row("iam", _op, f"iam:{_op}", note="no resource-level permissions: always '*'")
    def _iam_read(params: Params, world: World, op: str = _op) -> list[IamRequest]:
        return [_req(f"iam:{op}", "*", f"iam.{op}")]


@_row("iam", "SimulatePrincipalPolicy", "iam:SimulatePrincipalPolicy", note="on the user or role simulated")
def _simulate_principal(params: Params, world: World) -> list[IamRequest]:
    return [_req("iam:SimulatePrincipalPolicy", params["PolicySourceArn"], "iam.SimulatePrincipalPolicy")]


@_row("s3", "GetBucketPolicy", "s3:GetBucketPolicy")
def _bucket_policy(params: Params, world: World) -> list[IamRequest]:
    return [
        _req(
            "s3:GetBucketPolicy",
            f"arn:{PARTITION}:s3:::{world.bucket(params['Bucket'])}",
            "s3.GetBucketPolicy",
        )
    ]


@_row("kms", "GetKeyPolicy", "kms:GetKeyPolicy")
def _key_policy(params: Params, world: World) -> list[IamRequest]:
    return [_req("kms:GetKeyPolicy", world.kms_key(params["KeyId"]), "kms.GetKeyPolicy")]


STACK_ID: Final = "00000000-0000-0000-0000-000000000000"  # a stand-in: AWS assigns the id on creation

for _op in ("GetTemplate", "ListStackResources"):

    @_row("cloudformation", _op, f"cloudformation:{_op}", note="stack/<name>/<id> (the id: a stand-in)")
    def _stack_read(params: Params, world: World, op: str = _op) -> list[IamRequest]:
        name = params["StackName"]
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{STACK_ID}"
        )
        return [_req(f"cloudformation:{op}", arn, f"cloudformation.{op}")]


# --- the offsite copy job: copies made in the offsite region (the call's) from originals at home ---------
# The copy is encrypted with the offsite key, named by its alias; RDS and EBS then use that key as the caller
# (a forward access session: kms:ViaService <service>.<offsite region>, a grant for the AWS resource).
# Not modelled: an encrypted original's key at home (the recorder does not see which key that is); the
# role's statements for it are proven by tests/infra/test_offsite_copy_infra.py instead.
_KMS_COPY_KEYS = ("kms:ViaService", "kms:CallerAccount")
_GRANT_KEYS = (*_KMS_COPY_KEYS, "kms:GrantIsForAWSResource")


def _offsite_key_arn(key: str, world: World) -> str:
    """The key a copy is encrypted with: the offsite key, or (copies into another account: the copy in
    the home account's offsite region) the staging key, named by its alias in the caller's account."""
    aliases = {
        OFFSITE_KEY_ALIAS: lambda: world.stack.offsite_key_arn,
        STAGING_KEY_ALIAS: lambda: world.stack.staging_key_arn,
    }
    for alias, arn in aliases.items():
        if key in (alias, f"arn:{PARTITION}:kms:{world.region}:{world.account}:{alias}"):
            return arn()
    raise UnmappedOperation(
        f"a copy encrypted with {key!r}, not the offsite (or staging) key, is not modelled"
    )


def _kms_for_copy(
    service: str, actions: Sequence[str], key: str, world: World, cause: str
) -> list[IamRequest]:
    arn = _offsite_key_arn(key, world)
    context: Context = {
        "kms:ViaService": f"{service}.{world.region}.amazonaws.com",
        "kms:CallerAccount": world.account,
        "aws:ViaAWSService": "true",
    }
    return [
        _req(
            action,
            arn,
            f"{cause} -> {service.upper()} uses the offsite key",
            {**context, "kms:GrantIsForAWSResource": "true"} if action == "kms:CreateGrant" else context,
        )
        for action in actions
    ]


_RDS_COPY_KMS = ("kms:DescribeKey", "kms:CreateGrant")


@_row(
    "rds",
    "CopyDBSnapshot",
    "rds:CopyDBSnapshot",
    keys=_RDS_REQUEST_TAG_KEYS,
    note="checked on the new snapshot in the call's region (request tags; Tags also as rds:AddTagsToResource) "
    "and, through the presigned request (SourceRegion), on the source snapshot in its region; with KmsKeyId "
    "RDS describes the key and creates a grant on it as the caller",
    follow_up=(
        ("rds:AddTagsToResource", _RDS_REQUEST_TAG_KEYS),
        ("kms:DescribeKey", _KMS_COPY_KEYS),
        ("kms:CreateGrant", _GRANT_KEYS),
    ),
)
def _copy_db_snapshot(params: Params, world: World) -> list[IamRequest]:
    source, target = params["SourceDBSnapshotIdentifier"], params["TargetDBSnapshotIdentifier"]
    tags = _aws_tags(params.get("Tags"))
    cause = "rds.CopyDBSnapshot"
    source_arn = source if source.startswith("arn:") else f"{world.rds_arn}:snapshot:{source}"
    out = [
        _req(
            "rds:CopyDBSnapshot",
            f"{world.rds_arn}:snapshot:{target}",
            cause,
            _request_tags(tags, ("rds:req-tag",)),
        ),
        _req("rds:CopyDBSnapshot", source_arn, f"{cause} (PreSignedUrl, in the source region)"),
    ]
    if tags:
        out.append(
            _req(
                "rds:AddTagsToResource",
                f"{world.rds_arn}:snapshot:{target}",
                f"{cause} (Tags)",
                _request_tags(tags, ("rds:req-tag",)),
            )
        )
    if params.get("KmsKeyId"):
        out += _kms_for_copy("rds", _RDS_COPY_KMS, params["KmsKeyId"], world, cause)
    return out


_EC2_COPY_KMS = ("kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant")


@_row(
    "ec2",
    "CopyImage",
    "ec2:CopyImage",
    keys=_REQUEST_TAG_KEYS,
    note="checked on the source image and its snapshots (their region) and on the new image and snapshot in the call's region "
    "(tags given with TagSpecifications; also as ec2:CreateTags with ec2:CreateAction=CopyImage); Encrypted "
    "with KmsKeyId: EBS describes the key, generates data keys and creates a grant on it as the caller",
    follow_up=(
        ("ec2:CreateTags", (*_REQUEST_TAG_KEYS, "ec2:CreateAction")),
        ("kms:DescribeKey", _KMS_COPY_KEYS),
        ("kms:GenerateDataKeyWithoutPlaintext", _KMS_COPY_KEYS),
        ("kms:CreateGrant", _GRANT_KEYS),
    ),
)
def _copy_image(params: Params, world: World) -> list[IamRequest]:
    cause = "ec2.CopyImage"
    specs = {s["ResourceType"]: _aws_tags(s.get("Tags")) for s in params.get("TagSpecifications", [])}
    source = params["SourceRegion"]
    out = [
        _req("ec2:CopyImage", _ec2_arn(params["SourceImageId"], source), cause),
        # since October 2024 also on the source image's snapshots (ids not in the call: a stand-in)
        _req("ec2:CopyImage", _ec2_arn(SOURCE_SNAPSHOT, source), f"{cause} (the source's snapshots)"),
    ]
    for rtype, new_id in (("image", NEW_IMAGE), ("snapshot", NEW_SNAPSHOT)):
        tags, arn = specs.get(rtype, {}), _ec2_arn(new_id, world.region)
        out.append(_req("ec2:CopyImage", arn, cause, _request_tags(tags)))
        if tags:
            out.append(
                _req(
                    "ec2:CreateTags",
                    arn,
                    f"{cause} (TagSpecifications {rtype})",
                    {**_request_tags(tags), "ec2:CreateAction": "CopyImage"},
                )
            )
    if params.get("Encrypted") and params.get("KmsKeyId"):
        out += _kms_for_copy("ec2", _EC2_COPY_KMS, params["KmsKeyId"], world, cause)
    return out


# --- copies into another account: sharing the staging copy (the home account, its offsite region) -----
@_row(
    "rds",
    "ModifyDBSnapshotAttribute",
    "rds:ModifyDBSnapshotAttribute",
    keys=_SNAPSHOT_TAG_KEYS,
    note="on the snapshot (its tags); sharing it (restore) with another account",
)
def _modify_db_snapshot_attribute(params: Params, world: World) -> list[IamRequest]:
    name = params["DBSnapshotIdentifier"]
    return [
        _req(
            "rds:ModifyDBSnapshotAttribute",
            name if name.startswith("arn:") else f"{world.rds_arn}:snapshot:{name}",
            "rds.ModifyDBSnapshotAttribute",
            _tag_context(("aws:ResourceTag", "rds:snapshot-tag"), world.tags("db-snapshot", name)),
        )
    ]


for _op, _param in (("ModifyImageAttribute", "ImageId"), ("ModifySnapshotAttribute", "SnapshotId")):

    @_row("ec2", _op, f"ec2:{_op}", keys=_RESOURCE_TAG_KEYS, note="on the image or snapshot (its tags)")
    def _modify_ec2_attribute(
        params: Params, world: World, op: str = _op, param: str = _param
    ) -> list[IamRequest]:
        rid = params[param]
        return [_req(f"ec2:{op}", _ec2_arn(rid, world.region), f"ec2.{op}", _resource_tags(world, rid))]
