"""Offsite copies into another account, as IAM judges them: the home account H acting on the target account
T's copy bucket, offsite key and roles, T's roles acting in T and on H's staging key and staging copies.

A request of one account's principal on another account's bucket, key or role is allowed only when the
principal's identity policy AND the resource's policy (bucket policy, key policy, trust policy) allow it
(tests/iam/check.py takes the resource's account from the stack that holds it). EC2 and RDS have no
resource policies: a staging copy shared with T (ModifyDBSnapshotAttribute, ModifyImageAttribute) is
then copied by T's ``-copy`` role on its own identity policy, so those requests are judged in T.

The three stacks are synthesized for the example config with ``offsite.account`` = T and
``offsite.home_account`` = H: the home stack (H), ``<stack>-Offsite`` (T, offsite region) and
``<stack>-OffsiteStaging`` (H, offsite region). Requests the jobs make are built from the one table of
tests/iam/requests.py where a row exists (CopyDBSnapshot, CopyImage, the deletions, the shares), the rest
(what S3 replication and the services do as the caller) by hand, as tests/iam/cases.py does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from lambdas.common.contracts import (
    COPIED_FROM_KEY,
    JOB_AMI,
    JOB_KEY,
    JOB_RDS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    OFFSITE_KEY_ALIAS,
    OFFSITE_ROLE_NAME,
    OFFSITE_ROLE_USES,
    SOURCE_KEY,
    STAGE_KEY,
    STAGE_STAGING,
    STAGING_KEY_ALIAS,
    offsite_role_name,
)
from tests.iam.cases import replication, server
from tests.iam.check import IMPLICIT, Principal, Verdict, evaluate
from tests.iam.requests import IamRequest, Value, World, iam_requests
from tests.iam.stack import PARTITION, REGION, StackModel, stack_for

HOME: Final = "111111111111"  # H: the home stack's account
TARGET: Final = "222222222222"  # T: the copies' account
THIRD: Final = "333333333333"  # anybody else
XREGION: Final = "eu-central-1"  # the offsite region (home: tests.iam.stack.REGION)
CROSS_ACCOUNT: Mapping[str, Any] = {
    "offsite": {
        "enabled": True,
        "region": XREGION,
        "kinds": ["dump", "rds", "ami"],
        "account": TARGET,
        "home_account": HOME,
    }
}
ALLOWED: Final = "allowed"

DUMP: Final = "dumps/i-0123456789abcdef0/2026/11/27/20261127T0030Z/files.tar.gz"
SNAPSHOT: Final = "sb-school-db-20261127-0230"
ORIGINAL_ARN: Final = f"arn:{PARTITION}:rds:{REGION}:{HOME}:snapshot:{SNAPSHOT}"  # at home
STAGING_ARN: Final = f"arn:{PARTITION}:rds:{XREGION}:{HOME}:snapshot:{SNAPSHOT}"  # H, offsite region
COPY_ARN: Final = f"arn:{PARTITION}:rds:{XREGION}:{TARGET}:snapshot:{SNAPSHOT}"  # T, offsite region
STAGING_IMAGE: Final = "ami-05a9e0000000000aa"  # H's staging copy of an AMI, offsite region
STAGING_EBS: Final = "snap-05a9e0000000000aa"
HOME_IMAGE: Final = "ami-0aaaaaaaaaaaaaaaa"  # the original at home
COPY_IMAGE: Final = "ami-0c0b0000000000bbb"  # T's copy
COPY_EBS: Final = "snap-0c0b0000000000bbb"

RDS_TAGS: Final = {MANAGED_BY_KEY: MANAGED_BY_VALUE, JOB_KEY: JOB_RDS, SOURCE_KEY: "school-db"}
AMI_TAGS: Final = {MANAGED_BY_KEY: MANAGED_BY_VALUE, JOB_KEY: JOB_AMI, SOURCE_KEY: "i-0aaaaaaaaaaaaaaaa"}
RDS_COPY_TAGS: Final = {**RDS_TAGS, COPIED_FROM_KEY: ORIGINAL_ARN}
AMI_COPY_TAGS: Final = {
    **AMI_TAGS,
    COPIED_FROM_KEY: f"arn:{PARTITION}:ec2:{REGION}::image/{HOME_IMAGE}",
}
RDS_STAGING_TAGS: Final = {**RDS_COPY_TAGS, STAGE_KEY: STAGE_STAGING}
AMI_STAGING_TAGS: Final = {**AMI_COPY_TAGS, STAGE_KEY: STAGE_STAGING}
THEIRS: Final = {"Name": "made by hand", JOB_KEY: JOB_RDS}

_SSE = "s3:x-amz-server-side-encryption"


def cross_account_stack() -> StackModel:
    """The home stack's model (H) with the offsite stack's (T) and the staging stack's (H, offsite
    region) as its peers."""
    stack = stack_for(CROSS_ACCOUNT)
    if stack.offsite is None or stack.offsite.account != TARGET:
        raise LookupError("no offsite stack in the target account")
    return stack


def target(stack: StackModel) -> StackModel:
    assert stack.offsite is not None
    return stack.offsite


# --- who asks ---------------------------------------------------------------------------------------
Who = Callable[[StackModel], Principal]


def h_function(name: str) -> Who:
    """The role of ``lambdas.<name>.handler`` in H."""
    return lambda stack: Principal.function(stack, f"lambdas.{name}.handler")


def t_role(use: str) -> Who:
    """A session of T's ``<prefix>-<use>`` role (as the H job that assumed it uses it)."""

    def build(stack: StackModel) -> Principal:
        model, name = target(stack), offsite_role_name(OFFSITE_ROLE_NAME, use)
        found = [r.logical_id for r in model.of_type("AWS::IAM::Role") if model.name(r.logical_id) == name]
        if len(found) != 1:
            raise LookupError(f"expected one role {name} in the offsite stack, found {found}")
        return Principal.role_session(model, found[0], f"schoolbackup-{use}", f"T's {name} role")

    return build


def admin(account: str) -> Who:
    """An administrator (AdministratorAccess) of ``account``: allowed everything by its own IAM."""
    arn = f"arn:{PARTITION}:iam::{account}:role/Admin"
    who = {HOME: "H", TARGET: "T"}.get(account, f"account {account}")
    principal = Principal(
        label=f"an administrator of {who}",
        arn=f"arn:{PARTITION}:sts::{account}:assumed-role/Admin/admin",
        identity=(
            {
                "name": "AdministratorAccess",
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                },
            },
        ),
        context={
            "aws:PrincipalArn": arn,
            "aws:PrincipalAccount": account,
            "aws:PrincipalType": "AssumedRole",
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
        },
    )
    return lambda stack: principal


# --- what is asked --------------------------------------------------------------------------------------
Requests = Callable[[StackModel], list[IamRequest]]


def request(action: str, resource: Callable[[StackModel], str], cause: str, **context: Value) -> Requests:
    return lambda stack: [IamRequest(action, resource(stack), dict(context), cause)]


def call(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    account: str,
    region: str = XREGION,
    tags: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
    action: str | None = None,
    resource: str | None = None,
) -> Requests:
    """The IAM requests of one API call made in ``region`` with ``account``'s credentials (the table of
    tests/iam/requests.py); with ``action``/``resource`` only those of that action (on that resource)."""
    known = dict(tags or {})

    def build(stack: StackModel) -> list[IamRequest]:
        world = World(stack, tags=lambda k, r: known.get((k, r), {}), region=region, account=account)
        out = iam_requests(service, operation, params, world)
        return [
            r
            for r in out
            if (action is None or r.action == action) and (resource is None or r.resource == resource)
        ]

    return build


def copy_object(action: str, key: str = DUMP, **context: Value) -> Requests:
    return request(
        action, lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{key}", "S3 replication", **context
    )


def copy_bucket(action: str, **context: Value) -> Requests:
    return request(action, lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}", "on the copy bucket", **context)


def _kms(service: str | None, caller: str, *, grant: str | None = None, s3: bool = False) -> dict[str, Value]:
    context: dict[str, Value] = {"kms:CallerAccount": caller}
    if service is not None:
        context.update({"kms:ViaService": f"{service}.{XREGION}.amazonaws.com", "aws:ViaAWSService": "true"})
    if s3:
        context["kms:EncryptionContextKeys"] = ("aws:s3:arn",)
    if grant is not None:
        context["kms:GrantIsForAWSResource"] = grant
    return context


def offsite_key(action: str, service: str | None, caller: str, **extra: Any) -> Requests:
    """``action`` on T's offsite key, through ``service`` in the offsite region (None: directly)."""
    cause = f"{service or 'a direct call'} using T's offsite key"
    return request(action, lambda s: s.offsite_key_arn, cause, **_kms(service, caller, **extra))


def staging_key(action: str, service: str | None, caller: str, **extra: Any) -> Requests:
    """``action`` on H's staging key (offsite region), through ``service`` (None: directly)."""
    cause = f"{service or 'a direct call'} using H's staging key"
    return request(action, lambda s: s.staging_key_arn, cause, **_kms(service, caller, **extra))


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _specs(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": t, "Tags": _tags(tags)} for t in ("image", "snapshot")]


@dataclass(frozen=True)
class XCase:
    """Who asks what, and what IAM must decide: ``ALLOWED`` (every request of it), ``IMPLICIT`` or the
    Sid of the Deny statement (its one request)."""

    name: str
    who: Who
    requests: Requests
    expect: str

    def verdicts(self, stack: StackModel) -> list[Verdict]:
        requests = self.requests(stack)
        if not requests:
            raise LookupError(f"{self.name}: no request built")
        if self.expect != ALLOWED and len(requests) != 1:
            raise LookupError(f"{self.name}: a denial is about one request, not {len(requests)}")
        principal = self.who(stack)
        return [evaluate(stack, principal, r) for r in requests]


def outcome(verdict: Verdict, expect: str) -> bool:
    """The verdict is as the case requires."""
    if verdict.problems:
        return False
    if expect == ALLOWED:
        return verdict.decision.allowed
    if expect == IMPLICIT:
        return verdict.decision.result == "ImplicitlyDenied"
    return verdict.decision.result == "ExplicitlyDenied" and expect in verdict.deciders()


# --- the cases ------------------------------------------------------------------------------------------
_KMS_HEADERS = {
    _SSE: "aws:kms",
    f"{_SSE}-aws-kms-key-id": f"arn:{PARTITION}:kms:{XREGION}:{TARGET}:{OFFSITE_KEY_ALIAS}",
}


def _replication() -> Iterator[XCase]:
    """H's replication role writes replicas into T's copy bucket under T's offsite key, nothing else."""
    yield from (
        XCase(
            "replication writes a replica (SSE-KMS, T's offsite key by its alias)",
            replication,
            copy_object("s3:ReplicateObject", **_KMS_HEADERS),
            ALLOWED,
        ),
        XCase("replication copies a replica's tags", replication, copy_object("s3:ReplicateTags"), ALLOWED),
        XCase(
            "replication makes T the owner of a replica",
            replication,
            copy_object("s3:ObjectOwnerOverrideToBucketOwner"),
            ALLOWED,
        ),
        XCase(
            "replication reads a dump version at home",
            replication,
            request(
                "s3:GetObjectVersionForReplication",
                lambda s: f"arn:{PARTITION}:s3:::{s.backup_bucket}/{DUMP}",
                "S3 replication",
            ),
            ALLOWED,
        ),
        XCase(
            "replication replicates a delete into T's copies",
            replication,
            copy_object("s3:ReplicateDelete"),
            "DenyReplicatedDeletes",
        ),
        XCase(
            "replication writes a replica outside dumps/",
            replication,
            copy_object("s3:ReplicateObject", "reports/x.json", **_KMS_HEADERS),
            IMPLICIT,
        ),
        XCase(
            "replication writes an SSE-S3 replica",
            replication,
            copy_object("s3:ReplicateObject", **{_SSE: "AES256"}),
            "DenyOtherEncryption",
        ),
        XCase(
            "replication deletes a copy's version",
            replication,
            request(
                "s3:DeleteObjectVersion",
                lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}",
                "s3.DeleteObject",
            ),
            IMPLICIT,
        ),
        XCase(
            "replication suspends versioning of the copy bucket",
            replication,
            copy_bucket("s3:PutBucketVersioning"),
            IMPLICIT,
        ),
    )
    for action in ("kms:GenerateDataKey", "kms:Encrypt"):
        yield XCase(
            f"replication encrypts a replica with T's offsite key via S3 ({action})",
            replication,
            offsite_key(action, "s3", HOME, s3=True),
            ALLOWED,
        )
        for other in ("rds", "ec2"):
            yield XCase(
                f"replication uses T's offsite key via {other.upper()} ({action})",
                replication,
                offsite_key(action, other, HOME),
                IMPLICIT,
            )
        yield XCase(
            f"replication uses T's offsite key directly ({action})",
            replication,
            offsite_key(action, None, HOME),
            IMPLICIT,
        )
    # the identity side: other roles of H cannot replicate, though T's bucket policy trusts account H
    for label, who in (
        ("the dump server", server),
        ("the prune function", h_function("prune")),
        ("the offsite_copy function", h_function("offsite_copy")),
        ("the verify function", h_function("verify")),
    ):
        yield XCase(
            f"{label} replicates into T's copy bucket",
            who,
            copy_object("s3:ReplicateObject", **_KMS_HEADERS),
            IMPLICIT,
        )
        yield XCase(
            f"{label} encrypts with T's offsite key via S3",
            who,
            offsite_key("kms:GenerateDataKey", "s3", HOME, s3=True),
            IMPLICIT,
        )
    # the resource side: H's administrator gets only what T's policies grant account H
    h_admin = admin(HOME)
    yield from (
        XCase(
            "H's administrator (deploying the replication rule) reads the copy bucket's versioning",
            h_admin,
            copy_bucket("s3:GetBucketVersioning"),
            ALLOWED,
        ),
        XCase(
            "H's administrator suspends versioning of T's copy bucket",
            h_admin,
            copy_bucket("s3:PutBucketVersioning"),
            IMPLICIT,
        ),
        XCase(
            "H's administrator replaces T's copy bucket policy",
            h_admin,
            copy_bucket("s3:PutBucketPolicy"),
            IMPLICIT,
        ),
        XCase(
            "H's administrator deletes a copy's version",
            h_admin,
            request(
                "s3:DeleteObjectVersion",
                lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}",
                "s3.DeleteObject",
            ),
            IMPLICIT,
        ),
        XCase(
            "H's administrator reads a copy",
            h_admin,
            request("s3:GetObject", lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}", "s3.GetObject"),
            IMPLICIT,
        ),
        XCase(
            "H's administrator replicates a delete into T's copies",
            h_admin,
            copy_object("s3:ReplicateDelete"),
            "DenyReplicatedDeletes",
        ),
        XCase(
            "H's administrator decrypts with T's offsite key directly",
            h_admin,
            offsite_key("kms:Decrypt", None, HOME),
            IMPLICIT,
        ),
        XCase(
            "H's administrator changes T's offsite key policy",
            h_admin,
            request("kms:PutKeyPolicy", lambda s: s.offsite_key_arn, "kms.PutKeyPolicy"),
            IMPLICIT,
        ),
    )
    third = admin(THIRD)
    yield from (
        XCase(
            "an administrator of a third account replicates into T's copy bucket",
            third,
            copy_object("s3:ReplicateObject", **_KMS_HEADERS),
            IMPLICIT,
        ),
        XCase(
            "an administrator of a third account encrypts with T's offsite key via S3",
            third,
            offsite_key("kms:GenerateDataKey", "s3", THIRD, s3=True),
            IMPLICIT,
        ),
    )


def _write_once() -> Iterator[XCase]:
    """The copy bucket stays write-once for everybody, T's own roles included."""
    everybody: list[tuple[str, Who]] = [
        *((f"T's -{use} role", t_role(use)) for use in OFFSITE_ROLE_USES),
        ("H's replication role", replication),
        ("H's offsite_copy function", h_function("offsite_copy")),
        ("H's prune function", h_function("prune")),
    ]
    obj: Callable[[StackModel], str] = lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}"  # noqa: E731
    for label, who in everybody:
        yield XCase(
            f"{label} overwrites a copy (PutObject without If-None-Match)",
            who,
            request("s3:PutObject", obj, "s3.PutObject", **{"s3:ObjectCreationOperation": "true"}),
            "DenyOverwritingDumps",
        )
        yield XCase(
            f"{label} deletes a copy's version",
            who,
            request("s3:DeleteObjectVersion", obj, "s3.DeleteObject"),
            IMPLICIT,
        )
        yield XCase(
            f"{label} bypasses governance retention of a copy",
            who,
            request("s3:BypassGovernanceRetention", obj, "s3.PutObjectRetention(Bypass)"),
            IMPLICIT,
        )
        yield XCase(
            f"{label} shortens a copy's retention",
            who,
            request("s3:PutObjectRetention", obj, "s3.PutObjectRetention"),
            IMPLICIT,
        )
    yield XCase(
        "T's administrator overwrites a copy (PutObject without If-None-Match)",
        admin(TARGET),
        request("s3:PutObject", obj, "s3.PutObject", **{"s3:ObjectCreationOperation": "true"}),
        "DenyOverwritingDumps",
    )
    yield XCase(
        "T's administrator writes an SSE-S3 copy",
        admin(TARGET),
        request(
            "s3:PutObject",
            obj,
            "s3.PutObject",
            **{"s3:ObjectCreationOperation": "true", "s3:if-none-match": "*", _SSE: "AES256"},
        ),
        "DenyOtherEncryption",
    )


def _trust() -> Iterator[XCase]:
    """Each of T's roles trusts account H (H's IAM picks who), never a third account; each H job may
    assume only its own role there."""

    def arn(use: str) -> Callable[[StackModel], str]:
        return lambda s: f"arn:{PARTITION}:iam::{TARGET}:role/{offsite_role_name(OFFSITE_ROLE_NAME, use)}"

    mine = {"offsite_copy": "copy", "prune": "prune", "verify": "read", "report": "read"}
    for use in OFFSITE_ROLE_USES:
        assume = request("sts:AssumeRole", arn(use), "sts.AssumeRole")
        yield XCase(f"H's administrator assumes T's -{use} role", admin(HOME), assume, ALLOWED)
        yield XCase(
            f"an administrator of a third account assumes T's -{use} role", admin(THIRD), assume, IMPLICIT
        )
        yield XCase(f"the dump server assumes T's -{use} role", server, assume, IMPLICIT)
        yield XCase(f"H's replication role assumes T's -{use} role", replication, assume, IMPLICIT)
        for function, own in mine.items():
            yield XCase(
                f"H's {function} function assumes T's -{use} role",
                h_function(function),
                assume,
                ALLOWED if use == own else IMPLICIT,
            )


def _t_read() -> Iterator[XCase]:
    read = t_role("read")
    managed = {("db-snapshot", SNAPSHOT): RDS_COPY_TAGS, ("image", COPY_IMAGE): AMI_COPY_TAGS}
    managed |= {("snapshot", COPY_EBS): AMI_COPY_TAGS}
    obj = lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}"  # noqa: E731
    yield from (
        XCase(
            "-read lists T's DB snapshots",
            read,
            call("rds", "DescribeDBSnapshots", {}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-read lists T's images",
            read,
            call("ec2", "DescribeImages", {"Owners": ["self"]}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-read lists T's EBS snapshots",
            read,
            call("ec2", "DescribeSnapshots", {}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-read lists the copied dumps",
            read,
            copy_bucket("s3:ListBucket", **{"s3:prefix": "dumps/i-0123456789abcdef0/"}),
            ALLOWED,
        ),
        XCase("-read reads a copied dump", read, request("s3:GetObject", obj, "s3.GetObject"), ALLOWED),
        XCase(
            "-read decrypts a copied dump (via S3)",
            read,
            offsite_key("kms:Decrypt", "s3", TARGET, s3=True),
            ALLOWED,
        ),
        XCase(
            "-read decrypts with the offsite key directly",
            read,
            offsite_key("kms:Decrypt", None, TARGET),
            IMPLICIT,
        ),
        XCase(
            "-read deletes a managed RDS copy",
            read,
            call("rds", "DeleteDBSnapshot", {"DBSnapshotIdentifier": SNAPSHOT}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "-read deregisters a managed AMI copy",
            read,
            call("ec2", "DeregisterImage", {"ImageId": COPY_IMAGE}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "-read deletes a managed EBS snapshot copy",
            read,
            call("ec2", "DeleteSnapshot", {"SnapshotId": COPY_EBS}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "-read copies H's staging snapshot",
            read,
            call(
                "rds",
                "CopyDBSnapshot",
                {"SourceDBSnapshotIdentifier": STAGING_ARN, "TargetDBSnapshotIdentifier": SNAPSHOT},
                account=TARGET,
                resource=COPY_ARN,
            ),
            IMPLICIT,
        ),
        XCase(
            "-read copies H's staging AMI",
            read,
            call(
                "ec2",
                "CopyImage",
                {"SourceImageId": STAGING_IMAGE, "SourceRegion": XREGION, "Name": "x"},
                account=TARGET,
                resource=f"arn:{PARTITION}:ec2:{XREGION}::image/{STAGING_IMAGE}",
            ),
            IMPLICIT,
        ),
        XCase(
            "-read tags a copy",
            read,
            call(
                "ec2",
                "CreateTags",
                {"Resources": [COPY_IMAGE], "Tags": _tags({"Name": "x"})},
                account=TARGET,
                tags=managed,
            ),
            IMPLICIT,
        ),
        XCase(
            "-read writes into the copy bucket",
            read,
            request(
                "s3:PutObject",
                obj,
                "s3.PutObject",
                **{"s3:ObjectCreationOperation": "true", "s3:if-none-match": "*"},
            ),
            IMPLICIT,
        ),
        XCase(
            "-read deletes a copied dump", read, request("s3:DeleteObject", obj, "s3.DeleteObject"), IMPLICIT
        ),
        XCase(
            "-read decrypts with H's staging key via RDS",
            read,
            staging_key("kms:Decrypt", "rds", TARGET),
            IMPLICIT,
        ),
    )


def _t_prune() -> Iterator[XCase]:
    prune = t_role("prune")
    tags = {
        ("db-snapshot", SNAPSHOT): RDS_COPY_TAGS,
        ("db-snapshot", "sb-school-db-20261101-0230"): THEIRS,
        ("db-snapshot", "before-upgrade"): RDS_COPY_TAGS,
        ("image", COPY_IMAGE): AMI_COPY_TAGS,
        ("snapshot", COPY_EBS): AMI_COPY_TAGS,
        ("image", "ami-0bbbbbbbbbbbbbbbb"): THEIRS,
        ("snapshot", "snap-0bbbbbbbbbbbbbbbb"): THEIRS,
    }

    def delete_db(name: str, region: str = XREGION) -> Requests:
        return call(
            "rds",
            "DeleteDBSnapshot",
            {"DBSnapshotIdentifier": name},
            account=TARGET,
            region=region,
            tags=tags,
        )

    yield from (
        XCase(
            "-prune lists T's DB snapshots",
            prune,
            call("rds", "DescribeDBSnapshots", {}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-prune lists T's images",
            prune,
            call("ec2", "DescribeImages", {"Owners": ["self"]}, account=TARGET),
            ALLOWED,
        ),
        XCase("-prune deletes a managed RDS copy", prune, delete_db(SNAPSHOT), ALLOWED),
        XCase(
            "-prune deregisters a managed AMI copy",
            prune,
            call("ec2", "DeregisterImage", {"ImageId": COPY_IMAGE}, account=TARGET, tags=tags),
            ALLOWED,
        ),
        XCase(
            "-prune deletes a managed EBS snapshot copy",
            prune,
            call("ec2", "DeleteSnapshot", {"SnapshotId": COPY_EBS}, account=TARGET, tags=tags),
            ALLOWED,
        ),
        XCase(
            "-prune deletes an sb- RDS snapshot without ManagedBy",
            prune,
            delete_db("sb-school-db-20261101-0230"),
            IMPLICIT,
        ),
        XCase(
            "-prune deletes a tagged RDS snapshot not named sb-*",
            prune,
            delete_db("before-upgrade"),
            IMPLICIT,
        ),
        XCase(
            "-prune deletes a managed RDS snapshot of T's home region",
            prune,
            delete_db(SNAPSHOT, REGION),
            IMPLICIT,
        ),
        XCase(
            "-prune deregisters an AMI without ManagedBy",
            prune,
            call("ec2", "DeregisterImage", {"ImageId": "ami-0bbbbbbbbbbbbbbbb"}, account=TARGET, tags=tags),
            IMPLICIT,
        ),
        XCase(
            "-prune deletes an EBS snapshot without ManagedBy",
            prune,
            call(
                "ec2", "DeleteSnapshot", {"SnapshotId": "snap-0bbbbbbbbbbbbbbbb"}, account=TARGET, tags=tags
            ),
            IMPLICIT,
        ),
        XCase(
            "-prune copies H's staging snapshot",
            prune,
            call(
                "rds",
                "CopyDBSnapshot",
                {"SourceDBSnapshotIdentifier": STAGING_ARN, "TargetDBSnapshotIdentifier": SNAPSHOT},
                account=TARGET,
                resource=COPY_ARN,
            ),
            IMPLICIT,
        ),
        XCase(
            "-prune deletes a copied dump",
            prune,
            request(
                "s3:DeleteObject", lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}", "s3.DeleteObject"
            ),
            IMPLICIT,
        ),
        XCase(
            "-prune decrypts with H's staging key via RDS",
            prune,
            staging_key("kms:Decrypt", "rds", TARGET),
            IMPLICIT,
        ),
    )


_T_RDS_COPY = {
    "SourceDBSnapshotIdentifier": STAGING_ARN,
    "TargetDBSnapshotIdentifier": SNAPSHOT,
    "KmsKeyId": OFFSITE_KEY_ALIAS,
    "CopyTags": False,
    "Tags": _tags(RDS_COPY_TAGS),
}
_T_AMI_COPY = {
    "SourceImageId": STAGING_IMAGE,
    "SourceRegion": XREGION,
    "Name": "sb-i-0aaaaaaaaaaaaaaaa-20261127-0300",
    "Encrypted": True,
    "KmsKeyId": OFFSITE_KEY_ALIAS,
    "TagSpecifications": _specs(AMI_COPY_TAGS),
}


def _t_copy() -> Iterator[XCase]:
    copy = t_role("copy")
    managed = {("image", COPY_IMAGE): AMI_COPY_TAGS, ("snapshot", COPY_EBS): AMI_COPY_TAGS}
    managed |= {("db-snapshot", SNAPSHOT): RDS_COPY_TAGS}
    yield from (
        XCase(
            "-copy lists T's DB snapshots",
            copy,
            call("rds", "DescribeDBSnapshots", {}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-copy reads T's snapshot quota",
            copy,
            call("rds", "DescribeAccountAttributes", {}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-copy lists T's images",
            copy,
            call("ec2", "DescribeImages", {"Owners": ["self"]}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-copy lists T's EBS snapshots",
            copy,
            call("ec2", "DescribeSnapshots", {}, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-copy copies H's shared staging snapshot into T under the offsite key",
            copy,
            call("rds", "CopyDBSnapshot", _T_RDS_COPY, account=TARGET),
            ALLOWED,
        ),
        XCase(
            "-copy copies H's shared staging AMI into T under the offsite key",
            copy,
            call("ec2", "CopyImage", _T_AMI_COPY, account=TARGET),
            ALLOWED,
        ),
        XCase(
            # only as CopyImage makes it (tag-on-create): a later CreateTags could mark any AMI as a copy
            "-copy tags its AMI copy afterwards",
            copy,
            call(
                "ec2",
                "CreateTags",
                {"Resources": [COPY_IMAGE], "Tags": _tags(AMI_COPY_TAGS)},
                account=TARGET,
                tags=managed,
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy tags an AMI of T that schoolbackup did not make",
            copy,
            call(
                "ec2",
                "CreateTags",
                {"Resources": ["ami-0bbbbbbbbbbbbbbbb"], "Tags": _tags(AMI_COPY_TAGS)},
                account=TARGET,
                tags={("image", "ami-0bbbbbbbbbbbbbbbb"): {"Name": "T's own AMI"}},
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy copies a snapshot of a third account",
            copy,
            call(
                "rds",
                "CopyDBSnapshot",
                {**_T_RDS_COPY, "SourceDBSnapshotIdentifier": STAGING_ARN.replace(HOME, THIRD)},
                account=TARGET,
                resource=STAGING_ARN.replace(HOME, THIRD),
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy copies H's original at home (not the staging copy)",
            copy,
            call(
                "rds",
                "CopyDBSnapshot",
                {**_T_RDS_COPY, "SourceDBSnapshotIdentifier": ORIGINAL_ARN},
                account=TARGET,
                resource=ORIGINAL_ARN,
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy copies into a snapshot not named sb-*",
            copy,
            call(
                "rds",
                "CopyDBSnapshot",
                {**_T_RDS_COPY, "TargetDBSnapshotIdentifier": "before-upgrade"},
                account=TARGET,
                action="rds:CopyDBSnapshot",
                resource=f"arn:{PARTITION}:rds:{XREGION}:{TARGET}:snapshot:before-upgrade",
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy deletes a managed RDS copy",
            copy,
            call("rds", "DeleteDBSnapshot", {"DBSnapshotIdentifier": SNAPSHOT}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "-copy deregisters a managed AMI copy",
            copy,
            call("ec2", "DeregisterImage", {"ImageId": COPY_IMAGE}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "-copy deletes a managed EBS snapshot copy",
            copy,
            call("ec2", "DeleteSnapshot", {"SnapshotId": COPY_EBS}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "-copy deletes a copied dump",
            copy,
            request(
                "s3:DeleteObject", lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}", "s3.DeleteObject"
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy creates a grant on another key of T",
            copy,
            request(
                "kms:CreateGrant",
                lambda s: f"arn:{PARTITION}:kms:{XREGION}:{TARGET}:key/11111111-2222-3333-4444-555555555555",
                "RDS copying under another key",
                **_kms("rds", TARGET, grant="true"),
            ),
            IMPLICIT,
        ),
        XCase(
            "-copy creates a grant on the offsite key not for an AWS resource",
            copy,
            offsite_key("kms:CreateGrant", "rds", TARGET, grant="false"),
            IMPLICIT,
        ),
    )


def _staging_key() -> Iterator[XCase]:
    """H's staging key: T's -copy role may use it through RDS and EC2 of the offsite region only."""
    copy = t_role("copy")
    # RDS copies through a grant (DescribeKey, CreateGrant; Decrypt as today's copies of originals at
    # home); EBS also re-encrypts from the source key (ReEncryptFrom).
    uses = {
        "rds": ("kms:Decrypt", "kms:DescribeKey"),
        "ec2": ("kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"),
    }
    for service in ("rds", "ec2"):
        for action in uses[service]:
            yield XCase(
                f"-copy uses H's staging key via {service.upper()} ({action})",
                copy,
                staging_key(action, service, TARGET),
                ALLOWED,
            )
        yield XCase(
            f"-copy creates a grant on H's staging key for {service.upper()}",
            copy,
            staging_key("kms:CreateGrant", service, TARGET, grant="true"),
            ALLOWED,
        )
        yield XCase(
            f"-copy creates a grant on H's staging key via {service.upper()} not for an AWS resource",
            copy,
            staging_key("kms:CreateGrant", service, TARGET, grant="false"),
            IMPLICIT,
        )
        yield XCase(
            f"an administrator of a third account decrypts with H's staging key via {service.upper()}",
            admin(THIRD),
            staging_key("kms:Decrypt", service, THIRD),
            IMPLICIT,
        )
    yield from (
        XCase(
            "-copy decrypts with H's staging key directly",
            copy,
            staging_key("kms:Decrypt", None, TARGET),
            IMPLICIT,
        ),
        XCase(
            "-copy creates a grant on H's staging key directly",
            copy,
            staging_key("kms:CreateGrant", None, TARGET, grant="true"),
            IMPLICIT,
        ),
        XCase(
            "-copy decrypts with H's staging key via S3",
            copy,
            staging_key("kms:Decrypt", "s3", TARGET, s3=True),
            IMPLICIT,
        ),
        XCase(
            "-copy encrypts with H's staging key via RDS",
            copy,
            staging_key("kms:Encrypt", "rds", TARGET),
            IMPLICIT,
        ),
        XCase(
            "T's administrator decrypts with H's staging key directly",
            admin(TARGET),
            staging_key("kms:Decrypt", None, TARGET),
            IMPLICIT,
        ),
        XCase(
            "T's administrator changes H's staging key policy",
            admin(TARGET),
            request("kms:PutKeyPolicy", lambda s: s.staging_key_arn, "kms.PutKeyPolicy"),
            IMPLICIT,
        ),
    )


_H_RDS_STAGE = {
    "SourceDBSnapshotIdentifier": ORIGINAL_ARN,
    "TargetDBSnapshotIdentifier": SNAPSHOT,
    "SourceRegion": REGION,
    "KmsKeyId": STAGING_KEY_ALIAS,
    "CopyTags": False,
    "Tags": _tags(RDS_STAGING_TAGS),
}
_H_AMI_STAGE = {
    "SourceImageId": HOME_IMAGE,
    "SourceRegion": REGION,
    "Name": "sb-i-0aaaaaaaaaaaaaaaa-20261127-0300",
    "Encrypted": True,
    "KmsKeyId": STAGING_KEY_ALIAS,
    "TagSpecifications": _specs(AMI_STAGING_TAGS),
}


def _h_copy() -> Iterator[XCase]:
    """H's copy role: the staging copies in H's offsite region under the staging key, sharing and deleting
    only those (OffsiteStage=staging), and nothing of T."""
    copy = h_function("offsite_copy")
    unstaged = "sb-school-db-20261101-0230"
    tags = {
        ("db-snapshot", SNAPSHOT): RDS_STAGING_TAGS,
        ("db-snapshot", unstaged): RDS_COPY_TAGS,
        ("db-snapshot", "sb-other"): {**RDS_COPY_TAGS, STAGE_KEY: "final"},
        ("image", STAGING_IMAGE): AMI_STAGING_TAGS,
        ("snapshot", STAGING_EBS): AMI_STAGING_TAGS,
        ("image", "ami-0bbbbbbbbbbbbbbbb"): AMI_COPY_TAGS,
        ("snapshot", "snap-0bbbbbbbbbbbbbbbb"): AMI_COPY_TAGS,
        ("image", HOME_IMAGE): AMI_STAGING_TAGS,  # even so tagged, the original at home is not a stage
    }

    def rds(op: str, name: str, region: str = XREGION, **params: Any) -> Requests:
        return call(
            "rds", op, {"DBSnapshotIdentifier": name, **params}, account=HOME, region=region, tags=tags
        )

    def ec2(op: str, param: str, rid: str, region: str = XREGION, **params: Any) -> Requests:
        return call("ec2", op, {param: rid, **params}, account=HOME, region=region, tags=tags)

    share: dict[str, Any] = {"AttributeName": "restore", "ValuesToAdd": [TARGET]}
    launch: dict[str, Any] = {"LaunchPermission": {"Add": [{"UserId": TARGET}]}}
    volume: dict[str, Any] = {
        "Attribute": "createVolumePermission",
        "OperationType": "add",
        "UserIds": [TARGET],
    }
    home_tags = {**tags, ("db-snapshot", SNAPSHOT): RDS_STAGING_TAGS}
    yield from (
        XCase(
            "offsite_copy copies an original into H's offsite region under the staging key",
            copy,
            call("rds", "CopyDBSnapshot", _H_RDS_STAGE, account=HOME),
            ALLOWED,
        ),
        XCase(
            "offsite_copy copies an AMI into H's offsite region under the staging key",
            copy,
            call("ec2", "CopyImage", _H_AMI_STAGE, account=HOME),
            ALLOWED,
        ),
        XCase(
            # only as CopyImage makes it: OffsiteStage=staging is what the staging cleanup may delete
            "offsite_copy tags a staging AMI copy afterwards",
            copy,
            call(
                "ec2",
                "CreateTags",
                {"Resources": [STAGING_IMAGE], "Tags": _tags(AMI_STAGING_TAGS)},
                account=HOME,
                tags=tags,
            ),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy shares a staging snapshot with T",
            copy,
            rds("ModifyDBSnapshotAttribute", SNAPSHOT, **share),
            ALLOWED,
        ),
        XCase("offsite_copy deletes a staging snapshot", copy, rds("DeleteDBSnapshot", SNAPSHOT), ALLOWED),
        XCase(
            "offsite_copy shares a staging AMI with T",
            copy,
            ec2("ModifyImageAttribute", "ImageId", STAGING_IMAGE, **launch),
            ALLOWED,
        ),
        XCase(
            "offsite_copy shares a staging AMI's snapshot with T",
            copy,
            ec2("ModifySnapshotAttribute", "SnapshotId", STAGING_EBS, **volume),
            ALLOWED,
        ),
        XCase(
            "offsite_copy deregisters a staging AMI",
            copy,
            ec2("DeregisterImage", "ImageId", STAGING_IMAGE),
            ALLOWED,
        ),
        XCase(
            "offsite_copy deletes a staging AMI's snapshot",
            copy,
            ec2("DeleteSnapshot", "SnapshotId", STAGING_EBS),
            ALLOWED,
        ),
        # not what is not a stage
        XCase(
            "offsite_copy shares an original at home",
            copy,
            call(
                "rds",
                "ModifyDBSnapshotAttribute",
                {"DBSnapshotIdentifier": SNAPSHOT, **share},
                account=HOME,
                region=REGION,
                tags=home_tags,
            ),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy deletes an original at home",
            copy,
            call(
                "rds",
                "DeleteDBSnapshot",
                {"DBSnapshotIdentifier": SNAPSHOT},
                account=HOME,
                region=REGION,
                tags=home_tags,
            ),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy shares an sb- snapshot without OffsiteStage",
            copy,
            rds("ModifyDBSnapshotAttribute", unstaged, **share),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy deletes an sb- snapshot without OffsiteStage",
            copy,
            rds("DeleteDBSnapshot", unstaged),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy deletes a snapshot with another OffsiteStage",
            copy,
            rds("DeleteDBSnapshot", "sb-other"),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy shares an AMI without OffsiteStage",
            copy,
            ec2("ModifyImageAttribute", "ImageId", "ami-0bbbbbbbbbbbbbbbb", **launch),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy shares an EBS snapshot without OffsiteStage",
            copy,
            ec2("ModifySnapshotAttribute", "SnapshotId", "snap-0bbbbbbbbbbbbbbbb", **volume),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy deregisters an AMI without OffsiteStage",
            copy,
            ec2("DeregisterImage", "ImageId", "ami-0bbbbbbbbbbbbbbbb"),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy deletes an EBS snapshot without OffsiteStage",
            copy,
            ec2("DeleteSnapshot", "SnapshotId", "snap-0bbbbbbbbbbbbbbbb"),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy shares the original AMI at home",
            copy,
            ec2("ModifyImageAttribute", "ImageId", HOME_IMAGE, region=REGION, **launch),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy deregisters the original AMI at home",
            copy,
            ec2("DeregisterImage", "ImageId", HOME_IMAGE, region=REGION),
            IMPLICIT,
        ),
        # nothing of T with H's own credentials
        XCase(
            "offsite_copy creates a grant on T's offsite key via RDS",
            copy,
            offsite_key("kms:CreateGrant", "rds", HOME, grant="true"),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy copies into H's offsite region under T's offsite key (the same-account statements)",
            copy,
            offsite_key("kms:DescribeKey", "rds", HOME),
            IMPLICIT,
        ),
    )


def _h_lost_offsite() -> Iterator[XCase]:
    """With a target account, H's prune and verify no longer act in the offsite region themselves."""
    managed = {("db-snapshot", SNAPSHOT): RDS_COPY_TAGS}
    prune, verify = h_function("prune"), h_function("verify")
    yield from (
        XCase(
            "H's prune deletes a managed snapshot in H's offsite region (its old offsite statements)",
            prune,
            call("rds", "DeleteDBSnapshot", {"DBSnapshotIdentifier": SNAPSHOT}, account=HOME, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "H's prune deletes T's managed copy with its own credentials",
            prune,
            call("rds", "DeleteDBSnapshot", {"DBSnapshotIdentifier": SNAPSHOT}, account=TARGET, tags=managed),
            IMPLICIT,
        ),
        XCase(
            "H's verify reads a copied dump with its own credentials",
            verify,
            request("s3:GetObject", lambda s: f"arn:{PARTITION}:s3:::{s.copy_bucket}/{DUMP}", "s3.GetObject"),
            IMPLICIT,
        ),
        XCase(
            "H's verify lists the copied dumps with its own credentials",
            verify,
            copy_bucket("s3:ListBucket", **{"s3:prefix": "dumps/"}),
            IMPLICIT,
        ),
    )


def cross_account_cases() -> tuple[XCase, ...]:
    return (
        *_replication(),
        *_write_once(),
        *_trust(),
        *_t_read(),
        *_t_prune(),
        *_t_copy(),
        *_staging_key(),
        *_h_copy(),
        *_h_lost_offsite(),
    )


CASES: Final = cross_account_cases()


_MARK: Final = {STAGE_KEY: STAGE_STAGING}  # the tag that lets H's copy role share and delete


def _marking() -> Iterator[XCase]:
    """H's copy role may delete what carries OffsiteStage=staging; it must not be able to put that tag on
    what it did not make (else tag, then delete: any AMI or EBS snapshot of H's offsite region, any sb-
    RDS snapshot there, e.g. the copies of the same-account design before the target account)."""
    copy = h_function("offsite_copy")
    hand = {"Name": "the school's own AMI"}
    tags = {("image", "ami-0bbbbbbbbbbbbbbbb"): hand, ("snapshot", "snap-0bbbbbbbbbbbbbbbb"): hand}
    mark_ami = {MANAGED_BY_KEY: MANAGED_BY_VALUE, JOB_KEY: JOB_AMI, **_MARK}
    mark_rds = {MANAGED_BY_KEY: MANAGED_BY_VALUE, JOB_KEY: JOB_RDS, **_MARK}
    old_copy = "sb-school-db-20261101-0230"  # a copy made in H's offsite region before (no stage tag)
    yield from (
        XCase(
            "offsite_copy marks an AMI it did not make in H's offsite region as a staging copy",
            copy,
            call(
                "ec2",
                "CreateTags",
                {"Resources": ["ami-0bbbbbbbbbbbbbbbb"], "Tags": _tags(mark_ami)},
                account=HOME,
                tags=tags,
            ),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy marks an EBS snapshot it did not make in H's offsite region as a staging copy",
            copy,
            call(
                "ec2",
                "CreateTags",
                {"Resources": ["snap-0bbbbbbbbbbbbbbbb"], "Tags": _tags(mark_ami)},
                account=HOME,
                tags=tags,
            ),
            IMPLICIT,
        ),
        XCase(
            "offsite_copy marks an sb- RDS snapshot it did not stage as a staging copy",
            copy,
            request(
                "rds:AddTagsToResource",
                lambda s: f"arn:{PARTITION}:rds:{XREGION}:{HOME}:snapshot:{old_copy}",
                "rds.AddTagsToResource",
                **{f"aws:RequestTag/{k}": v for k, v in mark_rds.items()},
                **{f"rds:req-tag/{k}": v for k, v in mark_rds.items()},
                **{"aws:TagKeys": tuple(mark_rds)},
                **{
                    f"{p}/{k}": v
                    for p in ("aws:ResourceTag", "rds:snapshot-tag")
                    for k, v in RDS_COPY_TAGS.items()
                },
            ),
            IMPLICIT,
        ),
    )


MARKING: Final = tuple(_marking())
