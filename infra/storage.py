"""The backup bucket: versioned, KMS-encrypted, TLS-only, Object Lock (governance), lifecycle, access logs.

Both buckets and the key are retained when the stack is deleted: ``cdk destroy`` never deletes backups.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import Bucket as BucketConfig
from lambdas.common.contracts import DUMP_PREFIX, bucket_name


class BackupStorage(Construct):
    """The protected bucket that holds dumps and reports, its KMS key, and its access-log bucket.

    With offsite copies of dumps, :class:`infra.offsite.OffsiteHome` gives the bucket its replication
    rule through :meth:`replicate`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: BucketConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.key = backup_key(
            self,
            "BackupKey",
            "schoolbackup: encrypts backups, reports, alarms and queues",
            "alias/schoolbackup",
        )
        self.log_bucket = access_log_bucket(self, "AccessLogBucket", config)
        self.bucket = protected_bucket(
            self,
            "BackupBucket",
            name=bucket_name(stack.account, stack.region),
            key=self.key,
            config=config,
            log_bucket=self.log_bucket,
            log_prefix="backup-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="dumps-to-ia-then-expire",
                    prefix=f"{DUMP_PREFIX}/",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(config.transition_to_ia_days),
                        )
                    ],
                    expiration=Duration.days(config.expiry_days),
                ),
                housekeeping_rule(config),
            ],
        )
        deny_foreign_encryption(self.bucket, [self.key.key_arn])
        require_write_once(self.bucket, f"{DUMP_PREFIX}/*")

        CfnOutput(
            self,
            "BackupBucketName",
            value=self.bucket.bucket_name,
            description="Where the dumps and reports are",
        )
        CfnOutput(self, "AccessLogBucketName", value=self.log_bucket.bucket_name)

    def replicate(self, rule: s3.CfnBucket.ReplicationRuleProperty, role: iam.IRole) -> None:
        """The bucket replicates by ``rule``, as ``role`` (S3 has no L2 for a destination in another
        stack and region: the CloudFormation property is set on the bucket itself)."""
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=role.role_arn, rules=[rule]
        )


def backup_key(scope: Construct, construct_id: str, description: str, alias: str) -> kms.Key:
    """A customer managed key with yearly rotation, retained when the stack goes, named by ``alias``."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
        alias=alias,
    )


def access_log_bucket(scope: Construct, construct_id: str, config: BucketConfig) -> s3.Bucket:
    """Server access logs: S3's log delivery only writes with SSE-S3, so this bucket cannot use a KMS key."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=False,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-access-logs",
                expiration=Duration.days(config.access_log_expiry_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
    )


def housekeeping_rule(config: BucketConfig) -> s3.LifecycleRule:
    """Old versions expire, unfinished uploads are aborted, lone delete markers are removed."""
    return s3.LifecycleRule(
        id="noncurrent-and-housekeeping",
        noncurrent_version_expiration=Duration.days(config.noncurrent_expiry_days),
        abort_incomplete_multipart_upload_after=Duration.days(7),
        expired_object_delete_marker=True,
    )


def protected_bucket(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    key: kms.IKey,
    config: BucketConfig,
    log_bucket: s3.IBucket,
    log_prefix: str,
    lifecycle_rules: Sequence[s3.LifecycleRule],
) -> s3.Bucket:
    """A backup bucket: versioned, SSE-KMS with ``key`` (bucket key), public access blocked, TLS-only,
    bucket owner enforced, Object Lock (governance, ``config.object_lock_days``), access logs, retained."""
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=name,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        object_lock_enabled=True,
        object_lock_default_retention=s3.ObjectLockRetention.governance(
            Duration.days(config.object_lock_days)
        ),
        server_access_logs_bucket=log_bucket,
        server_access_logs_prefix=log_prefix,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=list(lifecycle_rules),
    )


def deny_foreign_encryption(
    bucket: s3.Bucket,
    key_ids: Sequence[str],
    actions: Sequence[str] = ("s3:PutObject",),
    key_id_actions: Sequence[str] | None = None,
) -> None:
    """Objects are encrypted with our key: a request without SSE headers gets the bucket default
    (our key); one that asks for anything else is denied. ``key_ids`` are the values of the key-id
    header that name our key (its ARN). ``key_id_actions`` (default: ``actions``) are the actions whose
    key-id header is compared; the encryption type and SSE-C are checked for all ``actions``.

    Each statement applies only when its header is sent (``Null: false``). A Deny with
    ``StringNotEqualsIfExists`` would also match a request that carries no such header ("if the
    key is not present, the condition is true"), and S3 sends no SSE headers on UploadPart and
    CompleteMultipartUpload, nor does a plain PutObject: it denied the dump's own parts.
    The key-id header is compared as sent, so a client naming our key must use its ARN.
    """
    objects = bucket.arn_for_objects("*")
    sse = "s3:x-amz-server-side-encryption"
    allowed: str | list[str] = key_ids[0] if len(key_ids) == 1 else list(key_ids)
    statements: dict[str, dict[str, dict[str, str | list[str]]]] = {
        "DenyOtherEncryption": {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}},
        "DenyOtherKmsKey": {
            "Null": {f"{sse}-aws-kms-key-id": "false"},
            "StringNotEquals": {f"{sse}-aws-kms-key-id": allowed},
        },
        # SSE-C: the bucket could not decrypt what it stores; nobody here needs it.
        "DenyCustomerProvidedKeys": {"Null": {f"{sse}-customer-algorithm": "false"}},
    }
    for sid, conditions in statements.items():
        denied = key_id_actions if sid == "DenyOtherKmsKey" and key_id_actions is not None else actions
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(denied),
                resources=[objects],
                conditions=conditions,
            )
        )


def require_write_once(bucket: s3.Bucket, pattern: str) -> None:
    """Under ``pattern`` every object is created with ``If-None-Match: *`` (AWS's documented pattern
    for enforcing conditional writes), so nothing stored there can be replaced, by anyone.

    ``s3:ObjectCreationOperation`` is true for PutObject and CompleteMultipartUpload (the requests
    that create the object and accept the header) and false for CreateMultipartUpload and
    UploadPart, which cannot carry it. CopyObject into the prefix is refused as a consequence.
    """
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyOverwritingDumps",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(pattern)],
            conditions={
                "Null": {"s3:if-none-match": "true"},
                "Bool": {"s3:ObjectCreationOperation": "true"},
            },
        )
    )


def read_statements(
    bucket: s3.IBucket, key: kms.IKey, prefixes: Sequence[str], sid: str = ""
) -> list[iam.PolicyStatement]:
    """List (only under ``prefixes``), read and decrypt what is under ``prefixes``; with ``sid``, the
    statements are ``List<sid>``, ``Read<sid>`` and ``Decrypt<sid>``."""
    return [
        iam.PolicyStatement(
            sid=f"List{sid}" if sid else None,
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
        ),
        iam.PolicyStatement(
            sid=f"Read{sid}" if sid else None,
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes],
        ),
        iam.PolicyStatement(
            sid=f"Decrypt{sid}" if sid else None, actions=["kms:Decrypt"], resources=[key.key_arn]
        ),
    ]


def write_once_statements(
    bucket: s3.IBucket, key: kms.IKey, prefix: str, sid: str = ""
) -> list[iam.PolicyStatement]:
    """Create the records under ``prefix``, once each: only with If-None-Match, so no run (a retry, a
    bug, a stolen role) replaces a record an earlier run wrote. Encrypted with the bucket key. With
    ``sid``, the statements are ``Create<sid>Once`` and ``Encrypt<sid>``."""
    return [
        iam.PolicyStatement(
            sid=f"Create{sid}Once" if sid else None,
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{prefix}*")],
            conditions={"Null": {"s3:if-none-match": "false"}},
        ),
        iam.PolicyStatement(
            sid=f"Encrypt{sid}" if sid else None, actions=["kms:GenerateDataKey"], resources=[key.key_arn]
        ),
    ]
