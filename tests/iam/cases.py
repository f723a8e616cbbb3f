"""The requests that must be denied, and what AWS services do for the stack, as IAM cases.

``MUST_DENY`` is the table of things nobody may do (each names the statement that decides it);
``service_requests`` derives, from the template itself, every request an AWS service makes for the
stack (schedules starting jobs, alarms and rules mailing, S3 writing access logs, Lambda writing
logs), each also from another account, which must be denied (confused deputy).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.iam.check import IMPLICIT, TLS_ONLY, Principal, Verdict, evaluate
from tests.iam.requests import IamRequest, Value, World, iam_requests
from tests.iam.stack import ACCOUNT, OTHER_ACCOUNT, PARTITION, REGION, StackModel, example_settings

SERVER_INSTANCE = "i-0123456789abcdef0"
_DUMP = "dumps/i-0123456789abcdef0/2026/11/27/20261127T0030Z/files.tar.gz"
_OURS = {"ManagedBy": "schoolbackup", "BackupJob": "ami-weekly", "BackupSource": "i-0aaaaaaaaaaaaaaaa"}
_THEIRS = {"BackupJob": "ami-weekly", "Name": "made by hand"}


def server(stack: StackModel) -> Principal:
    role = example_settings()["dump"]["server_role_name"]
    return Principal.role_session(stack, role, SERVER_INSTANCE, "the dump on the server")


def drill_server(stack: StackModel) -> Principal:
    """A session of the drill's instance role: the restored server."""
    (profile,) = stack.of_type("AWS::IAM::InstanceProfile")
    (role,) = profile.properties["Roles"]
    return Principal.role_session(stack, role["Ref"], "i-0dddddddddddddddd", "the restored server")


def function(name: str) -> Callable[[StackModel], Principal]:
    return lambda stack: Principal.function(stack, f"lambdas.{name}.handler")


def service(
    name: str, source: Callable[[StackModel], str], account: str = ACCOUNT
) -> Callable[[StackModel], Principal]:
    return lambda stack: Principal.service(name, source(stack), account)


@dataclass(frozen=True)
class Case:
    name: str
    who: Callable[[StackModel], Principal]
    service: str
    operation: str
    params: Callable[[StackModel], dict[str, Any]]
    decided_by: str  # a statement Sid, TLS_ONLY or IMPLICIT
    action: str | None = None  # which of the operation's IAM requests must be denied (default: the first)
    context: Mapping[str, str] = field(default_factory=dict)  # overrides, e.g. plain HTTP
    tags: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    # a request no API call of a client makes (S3 replication's own): built directly, not by the table
    request: Callable[[StackModel], IamRequest] | None = None

    def verdict(self, stack: StackModel) -> Verdict:
        if self.request is not None:
            subject = self.request(stack)
        else:
            world = World(
                stack, buckets=frozenset({stack.backup_bucket}), tags=lambda k, r: self.tags.get((k, r), {})
            )
            requests = iam_requests(self.service, self.operation, self.params(stack), world)
            subject = next(r for r in requests if self.action in (None, r.action))
        request = IamRequest(
            subject.action, subject.resource, {**subject.context, **self.context}, subject.cause
        )
        return evaluate(stack, self.who(stack), request)


def _bucket(stack: StackModel, **params: Any) -> dict[str, Any]:
    return {"Bucket": stack.backup_bucket, **params}


def _put(key: str = _DUMP, **params: Any) -> Callable[[StackModel], dict[str, Any]]:
    return lambda stack: _bucket(stack, Key=key, IfNoneMatch="*", **params)


MUST_DENY: tuple[Case, ...] = (
    # --- the server can only add dumps
    Case("server deletes a dump", server, "s3", "DeleteObject", lambda s: _bucket(s, Key=_DUMP), IMPLICIT),
    Case(
        "server deletes a dump version",
        server,
        "s3",
        "DeleteObject",
        lambda s: _bucket(s, Key=_DUMP, VersionId="v1"),
        IMPLICIT,
    ),
    Case(
        "server overwrites a dump (PutObject without If-None-Match)",
        server,
        "s3",
        "PutObject",
        lambda s: _bucket(s, Key=_DUMP),
        "DenyOverwritingDumps",
    ),
    Case(
        "server overwrites a dump by completing a multipart upload without If-None-Match",
        server,
        "s3",
        "CompleteMultipartUpload",
        lambda s: _bucket(s, Key=_DUMP, UploadId="u"),
        "DenyOverwritingDumps",
    ),
    Case("server reads a dump", server, "s3", "GetObject", lambda s: _bucket(s, Key=_DUMP), IMPLICIT),
    Case(
        "server lists the dumps",
        server,
        "s3",
        "ListObjectsV2",
        lambda s: _bucket(s, Prefix="dumps/"),
        IMPLICIT,
    ),
    Case(
        "server lists a slot's objects",
        server,
        "s3",
        "ListObjectsV2",
        lambda s: _bucket(s, Prefix=_DUMP.rsplit("/", 1)[0] + "/"),
        IMPLICIT,
    ),
    Case(
        "server re-locks a dump (PutObjectRetention)",
        server,
        "s3",
        "PutObjectRetention",
        lambda s: _bucket(s, Key=_DUMP),
        IMPLICIT,
    ),
    Case(
        "server bypasses governance retention",
        server,
        "s3",
        "PutObjectRetention",
        lambda s: _bucket(s, Key=_DUMP, BypassGovernanceRetention=True),
        IMPLICIT,
        action="s3:BypassGovernanceRetention",
    ),
    Case(
        "server sets a legal hold",
        server,
        "s3",
        "PutObjectLegalHold",
        lambda s: _bucket(s, Key=_DUMP),
        IMPLICIT,
    ),
    Case("server tags a dump", server, "s3", "PutObjectTagging", lambda s: _bucket(s, Key=_DUMP), IMPLICIT),
    Case(
        "server changes a dump's ACL", server, "s3", "PutObjectAcl", lambda s: _bucket(s, Key=_DUMP), IMPLICIT
    ),
    Case(
        "server writes outside dumps/",
        server,
        "s3",
        "PutObject",
        _put("reports/restore-tests/x.json"),
        IMPLICIT,
    ),
    Case(
        "server changes the lifecycle",
        server,
        "s3",
        "PutBucketLifecycleConfiguration",
        _bucket,
        IMPLICIT,
    ),
    Case("server changes versioning", server, "s3", "PutBucketVersioning", _bucket, IMPLICIT),
    Case(
        "server changes Object Lock",
        server,
        "s3",
        "PutObjectLockConfiguration",
        _bucket,
        IMPLICIT,
    ),
    Case("server replaces the bucket policy", server, "s3", "PutBucketPolicy", _bucket, IMPLICIT),
    Case("server deletes the bucket policy", server, "s3", "DeleteBucketPolicy", _bucket, IMPLICIT),
    Case(
        "server uploads with SSE-S3",
        server,
        "s3",
        "PutObject",
        _put(ServerSideEncryption="AES256"),
        "DenyOtherEncryption",
    ),
    Case(
        "server starts a multipart upload with SSE-S3",
        server,
        "s3",
        "CreateMultipartUpload",
        lambda s: _bucket(s, Key=_DUMP, ServerSideEncryption="AES256"),
        "DenyOtherEncryption",
    ),
    Case(
        "server uploads with the aws/s3 key",
        server,
        "s3",
        "PutObject",
        _put(
            ServerSideEncryption="aws:kms", SSEKMSKeyId=f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:alias/aws/s3"
        ),
        "DenyOtherKmsKey",
    ),
    Case(
        "server uploads with a customer-provided key (SSE-C)",
        server,
        "s3",
        "PutObject",
        _put(SSECustomerAlgorithm="AES256"),
        "DenyCustomerProvidedKeys",
    ),
    Case(
        "server uploads over plain HTTP",
        server,
        "s3",
        "PutObject",
        _put(),
        TLS_ONLY,
        context={"aws:SecureTransport": "false"},
    ),
    Case(
        "server reads another secret",
        server,
        "secretsmanager",
        "GetSecretValue",
        lambda s: {
            "SecretId": f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:school/admin-Xy12Ab"
        },
        IMPLICIT,
    ),
    # --- prune never touches what is not ours
    Case(
        "prune deregisters an AMI without ManagedBy=schoolbackup",
        function("prune"),
        "ec2",
        "DeregisterImage",
        lambda s: {"ImageId": "ami-0bbbbbbbbbbbbbbbb"},
        IMPLICIT,
        tags={("image", "ami-0bbbbbbbbbbbbbbbb"): _THEIRS},
    ),
    Case(
        "prune deletes an EBS snapshot without ManagedBy=schoolbackup",
        function("prune"),
        "ec2",
        "DeleteSnapshot",
        lambda s: {"SnapshotId": "snap-0bbbbbbbbbbbbbbbb"},
        IMPLICIT,
        tags={("snapshot", "snap-0bbbbbbbbbbbbbbbb"): _THEIRS},
    ),
    Case(
        "prune deletes an sb- RDS snapshot without ManagedBy=schoolbackup",
        function("prune"),
        "rds",
        "DeleteDBSnapshot",
        lambda s: {"DBSnapshotIdentifier": "sb-school-db-20261101-0230"},
        IMPLICIT,
        tags={("db-snapshot", "sb-school-db-20261101-0230"): _THEIRS},
    ),
    Case(
        "prune deletes a tagged RDS snapshot that is not named sb-*",
        function("prune"),
        "rds",
        "DeleteDBSnapshot",
        lambda s: {"DBSnapshotIdentifier": "before-upgrade"},
        IMPLICIT,
        tags={("db-snapshot", "before-upgrade"): _OURS},
    ),
    # --- the restore drill touches only what it made (BackupJob=drill) and never writes a backup
    Case(
        "drill terminates the production web server",
        function("drill"),
        "ec2",
        "TerminateInstances",
        lambda s: {"InstanceIds": [SERVER_INSTANCE]},
        IMPLICIT,
        tags={("instance", SERVER_INSTANCE): {"Backup": "true", "Name": "web"}},
    ),
    Case(
        "drill terminates an instance tagged BackupJob=drill by someone else (no ManagedBy)",
        function("drill"),
        "ec2",
        "TerminateInstances",
        lambda s: {"InstanceIds": ["i-0cccccccccccccccc"]},
        IMPLICIT,
        tags={("instance", "i-0cccccccccccccccc"): {"BackupJob": "drill"}},
    ),
    Case(
        "drill deletes the production database",
        function("drill"),
        "rds",
        "DeleteDBInstance",
        lambda s: {"DBInstanceIdentifier": "school-db", "SkipFinalSnapshot": True},
        IMPLICIT,
        tags={("db", "school-db"): {"Backup": "true"}},
    ),
    Case(
        "drill restores a snapshot over a name that is not a drill database",
        function("drill"),
        "rds",
        "RestoreDBInstanceFromDBSnapshot",
        lambda s: {
            "DBInstanceIdentifier": "school-db-new",
            "DBSnapshotIdentifier": "sb-school-db-20261101-0230",
            "Tags": [{"Key": "BackupJob", "Value": "drill"}],
        },
        IMPLICIT,
        tags={("db-snapshot", "sb-school-db-20261101-0230"): _OURS},
    ),
    Case(
        "drill launches a server from an AMI that is not schoolbackup's",
        function("drill"),
        "ec2",
        "RunInstances",
        lambda s: {"ImageId": "ami-0bbbbbbbbbbbbbbbb", "MinCount": 1, "MaxCount": 1},
        IMPLICIT,
        tags={("image", "ami-0bbbbbbbbbbbbbbbb"): _THEIRS},
    ),
    Case(
        "drill writes a dump",
        function("drill"),
        "s3",
        "PutObject",
        _put(),
        IMPLICIT,
    ),
    Case(
        "the restored server (drill instance role) writes a dump",
        drill_server,
        "s3",
        "PutObject",
        _put(),
        IMPLICIT,
    ),
    Case(
        "the restored server (drill instance role) deletes a dump",
        drill_server,
        "s3",
        "DeleteObject",
        lambda s: _bucket(s, Key=_DUMP),
        IMPLICIT,
    ),
    Case(
        "the restored server reads the production DB secret",
        drill_server,
        "secretsmanager",
        "GetSecretValue",
        lambda s: {"SecretId": example_settings()["dump"]["db_secret_arn"]},
        IMPLICIT,
    ),
    # --- the other functions stay in their lane
    Case(
        "verify writes to the bucket", function("verify"), "s3", "PutObject", _put("reports/x.json"), IMPLICIT
    ),
    Case(
        "restore_test writes under dumps/",
        function("restore_test"),
        "s3",
        "PutObject",
        _put(),
        IMPLICIT,
    ),
    Case(
        "restore_test writes the weekly mail's record",
        function("restore_test"),
        "s3",
        "PutObject",
        _put("reports/weekly/20261130T0630Z.json"),
        IMPLICIT,
    ),
    Case(
        "report writes a restore-test record",
        function("report"),
        "s3",
        "PutObject",
        _put("reports/restore-tests/20261130T0600Z.json"),
        IMPLICIT,
    ),
    Case(
        "restore_test replaces its record (PutObject without If-None-Match)",
        function("restore_test"),
        "s3",
        "PutObject",
        lambda s: _bucket(s, Key="reports/restore-tests/20261130T0600Z.json"),
        IMPLICIT,
    ),
    Case(
        "report replaces its weekly record (PutObject without If-None-Match)",
        function("report"),
        "s3",
        "PutObject",
        lambda s: _bucket(s, Key="reports/weekly/20261130T0630Z.json"),
        IMPLICIT,
    ),
    Case(
        "report deletes a dump",
        function("report"),
        "s3",
        "DeleteObject",
        lambda s: _bucket(s, Key=_DUMP),
        IMPLICIT,
    ),
    Case(
        "rds_snapshot snapshots an instance that is neither tagged nor listed",
        function("rds_snapshot"),
        "rds",
        "CreateDBSnapshot",
        lambda s: {
            "DBInstanceIdentifier": "payroll-db",
            "DBSnapshotIdentifier": "sb-payroll-db-20261127-0230",
        },
        IMPLICIT,
        tags={("db", "payroll-db"): {"Name": "payroll"}},
    ),
    Case(
        "ami_backup images an instance that is not tagged",
        function("ami_backup"),
        "ec2",
        "CreateImage",
        lambda s: {"InstanceId": "i-0cccccccccccccccc", "Name": "x"},
        IMPLICIT,
        tags={("instance", "i-0cccccccccccccccc"): {"Name": "other server"}},
    ),
    Case(
        "ami_backup writes a tag that is not one of schoolbackup's",
        function("ami_backup"),
        "ec2",
        "CreateTags",
        lambda s: {"Resources": ["snap-0ddddddddddddddd1"], "Tags": [{"Key": "Backup", "Value": "true"}]},
        IMPLICIT,
    ),
    # --- confused deputy: AWS services acting for another account
    Case(
        "CloudWatch publishes to the topic for another account's alarm",
        service(
            "cloudwatch.amazonaws.com",
            lambda s: f"arn:{PARTITION}:cloudwatch:{REGION}:{OTHER_ACCOUNT}:alarm:x",
            OTHER_ACCOUNT,
        ),
        "sns",
        "Publish",
        lambda s: {"TopicArn": s.topic_arn},
        IMPLICIT,
    ),
    Case(
        "EventBridge publishes to the topic for another account's rule",
        service(
            "events.amazonaws.com",
            lambda s: f"arn:{PARTITION}:events:{REGION}:{OTHER_ACCOUNT}:rule/x",
            OTHER_ACCOUNT,
        ),
        "sns",
        "Publish",
        lambda s: {"TopicArn": s.topic_arn},
        IMPLICIT,
    ),
    Case(
        "EventBridge publishes to the topic for another rule of ours",
        service(
            "events.amazonaws.com", lambda s: f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/someone-elses"
        ),
        "sns",
        "Publish",
        lambda s: {"TopicArn": s.topic_arn},
        IMPLICIT,
    ),
)


# --- offsite copies: the copy bucket and the offsite key (judged against the stack with offsite on)
OFFSITE_REGION = "eu-central-1"
OFFSITE: Mapping[str, Any] = {
    "offsite": {"enabled": True, "region": OFFSITE_REGION, "kinds": ["dump", "rds", "ami"]}
}
_COPY_DUMP = _DUMP


def replication(stack: StackModel) -> Principal:
    """A session of the replication role, as S3 uses it to replicate."""
    (role,) = [
        r.logical_id
        for r in stack.of_type("AWS::IAM::Role")
        if "s3.amazonaws.com" in json.dumps(r.properties["AssumeRolePolicyDocument"])
    ]
    return Principal.role_session(stack, role, "s3-replication", "S3 replication (its role)")


def other_account_admin(stack: StackModel) -> Principal:
    """An administrator of another account: allowed everything by its own account, nothing by ours."""
    arn = f"arn:{PARTITION}:iam::{OTHER_ACCOUNT}:role/Admin"
    return Principal(
        label=f"an administrator of account {OTHER_ACCOUNT}",
        arn=f"arn:{PARTITION}:sts::{OTHER_ACCOUNT}:assumed-role/Admin/intruder",
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
            "aws:PrincipalAccount": OTHER_ACCOUNT,
            "aws:PrincipalType": "AssumedRole",
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
        },
    )


def copy_object(action: str, key: str = _COPY_DUMP, **context: Value) -> Callable[[StackModel], IamRequest]:
    return lambda s: IamRequest(
        action, f"arn:{PARTITION}:s3:::{s.copy_bucket}/{key}", dict(context), "S3 replication"
    )


def offsite_key(action: str) -> Callable[[StackModel], IamRequest]:
    """``action`` on the offsite key as S3 asks for it while writing a replica (SSE-KMS, bucket key)."""
    return lambda s: IamRequest(
        action,
        s.offsite_key_arn,
        {
            "kms:ViaService": f"s3.{OFFSITE_REGION}.amazonaws.com",
            "kms:CallerAccount": ACCOUNT,
            "kms:EncryptionContextKeys": ("aws:s3:arn",),
        },
        "S3 writing a replica",
    )


def _copy(stack: StackModel, **params: Any) -> dict[str, Any]:
    return {"Bucket": stack.copy_bucket, **params}


def _alias_arn() -> str:
    return f"arn:{PARTITION}:kms:{OFFSITE_REGION}:{ACCOUNT}:alias/schoolbackup-offsite"


_SSE_KMS = "s3:x-amz-server-side-encryption"
_NONE: Callable[[StackModel], dict[str, Any]] = lambda s: {}  # noqa: E731 (requests built directly)

# What S3 replication must be able to do: a replica in the copy bucket, encrypted with the offsite key.
OFFSITE_ALLOWED: tuple[Case, ...] = (
    Case(
        "replication writes a replica",
        replication,
        "s3",
        "",
        _NONE,
        "",
        request=copy_object("s3:ReplicateObject"),
    ),
    Case(
        "replication writes a replica encrypted with the offsite key (named by its alias)",
        replication,
        "s3",
        "",
        _NONE,
        "",
        request=copy_object(
            "s3:ReplicateObject", **{_SSE_KMS: "aws:kms", f"{_SSE_KMS}-aws-kms-key-id": _alias_arn()}
        ),
    ),
    Case(
        "replication copies a replica's tags",
        replication,
        "s3",
        "",
        _NONE,
        "",
        request=copy_object("s3:ReplicateTags"),
    ),
    Case(
        "replication encrypts a replica (GenerateDataKey)",
        replication,
        "kms",
        "",
        _NONE,
        "",
        request=offsite_key("kms:GenerateDataKey"),
    ),
    Case(
        "replication decrypts with the offsite key (replicas use S3 Bucket Keys)",
        replication,
        "kms",
        "",
        _NONE,
        "",
        request=offsite_key("kms:Decrypt"),
    ),
    Case(
        "replication encrypts a replica (Encrypt)",
        replication,
        "kms",
        "",
        _NONE,
        "",
        request=offsite_key("kms:Encrypt"),
    ),
    Case(
        "replication reads a dump version at home",
        replication,
        "s3",
        "",
        _NONE,
        "",
        request=lambda s: IamRequest(
            "s3:GetObjectVersionForReplication",
            f"arn:{PARTITION}:s3:::{s.backup_bucket}/{_DUMP}",
            {},
            "S3 replication",
        ),
    ),
    Case(
        "replication decrypts a dump at home",
        replication,
        "kms",
        "",
        _NONE,
        "",
        request=lambda s: IamRequest(
            "kms:Decrypt",
            s.key_arn,
            {
                "kms:ViaService": f"s3.{REGION}.amazonaws.com",
                "kms:CallerAccount": ACCOUNT,
                "kms:EncryptionContextKeys": ("aws:s3:arn",),
            },
            "S3 reading a dump to replicate",
        ),
    ),
)

OFFSITE_MUST_DENY: tuple[Case, ...] = (
    # --- replication only adds replicas
    Case(
        "replication replicates a delete into the copies",
        replication,
        "s3",
        "",
        _NONE,
        "DenyReplicatedDeletes",
        request=copy_object("s3:ReplicateDelete"),
    ),
    Case(
        "replication deletes a copy",
        replication,
        "s3",
        "DeleteObject",
        lambda s: _copy(s, Key=_COPY_DUMP),
        IMPLICIT,
    ),
    Case(
        "replication deletes a copy's version",
        replication,
        "s3",
        "DeleteObject",
        lambda s: _copy(s, Key=_COPY_DUMP, VersionId="v1"),
        IMPLICIT,
    ),
    Case(
        "replication overwrites a copy (PutObject without If-None-Match)",
        replication,
        "s3",
        "PutObject",
        lambda s: _copy(s, Key=_COPY_DUMP),
        "DenyOverwritingDumps",
    ),
    Case(
        "replication puts a copy (PutObject, If-None-Match)",
        replication,
        "s3",
        "PutObject",
        lambda s: _copy(s, Key=_COPY_DUMP, IfNoneMatch="*"),
        IMPLICIT,
    ),
    # A replica's key id is not compared by the copy bucket (its form is undocumented); the replication
    # rule names the offsite key, and the role may use no other customer key of the offsite region.
    Case(
        "replication encrypts a replica with another key of this account",
        replication,
        "kms",
        "",
        _NONE,
        IMPLICIT,
        request=lambda s: IamRequest(
            "kms:GenerateDataKey",
            f"arn:{PARTITION}:kms:{OFFSITE_REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
            {
                "kms:ViaService": f"s3.{OFFSITE_REGION}.amazonaws.com",
                "kms:CallerAccount": ACCOUNT,
                "kms:EncryptionContextKeys": ("aws:s3:arn",),
            },
            "S3 writing a replica",
        ),
    ),
    Case(
        "replication writes an SSE-S3 replica",
        replication,
        "s3",
        "",
        _NONE,
        "DenyOtherEncryption",
        request=copy_object("s3:ReplicateObject", **{_SSE_KMS: "AES256"}),
    ),
    Case(
        "replication replaces the copy bucket's policy", replication, "s3", "PutBucketPolicy", _copy, IMPLICIT
    ),
    Case(
        "replication changes the copy bucket's lifecycle",
        replication,
        "s3",
        "PutBucketLifecycleConfiguration",
        _copy,
        IMPLICIT,
    ),
    Case(
        "replication writes outside dumps/",
        replication,
        "s3",
        "",
        _NONE,
        IMPLICIT,
        request=copy_object("s3:ReplicateObject", "reports/x.json"),
    ),
    Case(
        "replication reads a report at home",
        replication,
        "s3",
        "GetObject",
        lambda s: _bucket(s, Key="reports/weekly/x.json"),
        IMPLICIT,
    ),
    # --- the web server has nothing offsite
    Case(
        "server writes a dump into the copy bucket",
        server,
        "s3",
        "PutObject",
        lambda s: _copy(s, Key=_COPY_DUMP, IfNoneMatch="*"),
        IMPLICIT,
    ),
    Case(
        "server replicates into the copy bucket",
        server,
        "s3",
        "",
        _NONE,
        IMPLICIT,
        request=copy_object("s3:ReplicateObject"),
    ),
    Case("server reads a copy", server, "s3", "GetObject", lambda s: _copy(s, Key=_COPY_DUMP), IMPLICIT),
    Case(
        "server deletes a copy",
        server,
        "s3",
        "DeleteObject",
        lambda s: _copy(s, Key=_COPY_DUMP, VersionId="v1"),
        IMPLICIT,
    ),
    Case(
        "server lists the copies",
        server,
        "s3",
        "ListObjectsV2",
        lambda s: _copy(s, Prefix="dumps/"),
        IMPLICIT,
    ),
    Case("server replaces the copy bucket's policy", server, "s3", "PutBucketPolicy", _copy, IMPLICIT),
    Case(
        "server uses the offsite key",
        server,
        "kms",
        "",
        _NONE,
        IMPLICIT,
        request=offsite_key("kms:GenerateDataKey"),
    ),
    Case(
        "server decrypts with the offsite key",
        server,
        "kms",
        "",
        _NONE,
        IMPLICIT,
        request=offsite_key("kms:Decrypt"),
    ),
    # --- another account, however privileged there
    Case(
        "another account writes into the copy bucket",
        other_account_admin,
        "s3",
        "PutObject",
        lambda s: _copy(s, Key=_COPY_DUMP, IfNoneMatch="*"),
        IMPLICIT,
    ),
    Case(
        "another account reads a copy",
        other_account_admin,
        "s3",
        "GetObject",
        lambda s: _copy(s, Key=_COPY_DUMP),
        IMPLICIT,
    ),
    Case(
        "another account replicates into the copy bucket",
        other_account_admin,
        "s3",
        "",
        _NONE,
        IMPLICIT,
        request=copy_object("s3:ReplicateObject"),
    ),
    Case(
        "another account replaces the copy bucket's policy",
        other_account_admin,
        "s3",
        "PutBucketPolicy",
        _copy,
        IMPLICIT,
    ),
    Case(
        "another account uses the offsite key",
        other_account_admin,
        "kms",
        "",
        _NONE,
        IMPLICIT,
        request=offsite_key("kms:Decrypt"),
    ),
)


def kms_cases() -> Iterator[Case]:
    """The key, used directly by a service acting for another account (no S3/SNS in between)."""
    for svc, arn in (
        ("cloudwatch.amazonaws.com", f"arn:{PARTITION}:cloudwatch:{REGION}:{OTHER_ACCOUNT}:alarm:x"),
        ("events.amazonaws.com", f"arn:{PARTITION}:events:{REGION}:{OTHER_ACCOUNT}:rule/x"),
    ):
        for action in ("kms:Decrypt", "kms:GenerateDataKey"):
            yield Case(
                f"{svc} uses the key ({action}) for another account",
                service(svc, lambda s, a=arn: a, OTHER_ACCOUNT),
                "sns",
                "Publish",
                lambda s: {"TopicArn": s.topic_arn},
                IMPLICIT,
                action=action,
            )


@dataclass(frozen=True)
class ServiceRequest:
    label: str
    principal: Principal
    request: IamRequest


def _world(stack: StackModel) -> World:
    tag = example_settings()["selection"]
    return World(
        stack,
        buckets=frozenset({stack.backup_bucket}),
        tags=lambda kind, rid: {tag["tag_key"]: tag["tag_value"]} if kind == "instance" else {},
    )


def service_requests(stack: StackModel, account: str = ACCOUNT) -> Iterator[ServiceRequest]:
    """Every request an AWS service makes for the stack, as that service acting for ``account``
    (the targets' own calls, made with the stack's roles, only for our account)."""
    world = _world(stack)
    yield from _schedules(stack, world, account)
    yield from _publishers(stack, world, account)
    yield from _access_logs(stack, account)
    if account == ACCOUNT:
        yield from _function_logs(stack, world)


def _schedules(stack: StackModel, world: World, account: str) -> Iterator[ServiceRequest]:
    for res in stack.of_type("AWS::Scheduler::Schedule"):
        props = stack.resolve(res.properties)
        name, target = props["Name"], props["Target"]
        role_arn = target["RoleArn"]
        role = next(
            r.logical_id
            for r in stack.of_type("AWS::IAM::Role")
            if stack.get_att(r.logical_id, "Arn") == role_arn
        )
        group = (
            f"arn:{PARTITION}:scheduler:{REGION}:{account}:schedule-group/{props.get('GroupName', 'default')}"
        )
        scheduler = Principal.service("scheduler.amazonaws.com", group, account)
        for r in iam_requests("sts", "AssumeRole", {"RoleArn": role_arn}, world):
            yield ServiceRequest(f"schedule {name}: assume its role", scheduler, r)
        if account != ACCOUNT:
            continue
        session = Principal.role_session(stack, role, name, f"schedule {name}")
        if ":aws-sdk:ssm:sendCommand" in target["Arn"]:
            payload = json.loads(target["Input"])
            ids = payload.get("InstanceIds") or [SERVER_INSTANCE]
            calls = iam_requests("ssm", "SendCommand", {**payload, "InstanceIds": ids}, world)
        elif ":states:" in target["Arn"]:
            calls = iam_requests("stepfunctions", "StartExecution", {"stateMachineArn": target["Arn"]}, world)
        else:
            calls = iam_requests("lambda", "Invoke", {"FunctionName": target["Arn"]}, world)
        calls += iam_requests("sqs", "SendMessage", {"QueueArn": target["DeadLetterConfig"]["Arn"]}, world)
        for r in calls:
            yield ServiceRequest(f"schedule {name}", session, r)


def _publishers(stack: StackModel, world: World, account: str) -> Iterator[ServiceRequest]:
    """Alarms (CloudWatch) and rules (EventBridge) that mail through the topic."""
    topic = stack.topic_arn
    sources: list[tuple[str, str, str]] = []
    for res in stack.of_type("AWS::CloudWatch::Alarm"):
        props = stack.resolve(res.properties)
        if topic in props.get("AlarmActions", []):
            arn = f"arn:{PARTITION}:cloudwatch:{REGION}:{account}:alarm:{props['AlarmName']}"
            sources.append((f"alarm {props['AlarmName']}", "cloudwatch.amazonaws.com", arn))
    for res in stack.of_type("AWS::Events::Rule"):
        props = stack.resolve(res.properties)
        if any(t["Arn"] == topic for t in props.get("Targets", [])):
            arn = f"arn:{PARTITION}:events:{REGION}:{account}:rule/{props['Name']}"
            sources.append((f"rule {props['Name']}", "events.amazonaws.com", arn))
    for label, svc, arn in sources:
        who = Principal.service(svc, arn, account)
        for r in iam_requests("sns", "Publish", {"TopicArn": topic}, world):
            yield ServiceRequest(label, who, r)


def _access_logs(stack: StackModel, account: str) -> Iterator[ServiceRequest]:
    for res in stack.of_type("AWS::S3::Bucket"):
        logging = res.properties.get("LoggingConfiguration")
        if not logging:
            continue
        target = stack.resolve(logging["DestinationBucketName"])
        who = Principal.service("logging.s3.amazonaws.com", stack.get_att(res.logical_id, "Arn"), account)
        key = f"{logging.get('LogFilePrefix', '')}2026-11-27-01-00-00-ABCDEF"
        request = IamRequest(
            "s3:PutObject", f"arn:{PARTITION}:s3:::{target}/{key}", {}, "S3 server access logging"
        )
        yield ServiceRequest(f"access logs of {stack.name(res.logical_id)}", who, request)


def _function_logs(stack: StackModel, world: World) -> Iterator[ServiceRequest]:
    for fn in stack.of_type("AWS::Lambda::Function"):
        handler = fn.properties["Handler"]
        principal = Principal.function(stack, handler.rsplit(".", 1)[0])
        group = stack.function_log_group(handler)
        for op in ("CreateLogStream", "PutLogEvents"):
            params = {"logGroupName": group, "logStreamName": "2026/11/27/[$LATEST]0123456789abcdef"}
            for r in iam_requests("logs", op, params, world):
                yield ServiceRequest(f"the {principal.label.split()[1]} function's own log", principal, r)
