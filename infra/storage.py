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
    """The protected bucket that holds dumps and reports, its KMS key, and its access-log bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, config: BucketConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.key = kms.Key(
            self,
            "BackupKey",
            description="schoolbackup: encrypts backups, reports, alarms and queues",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            alias="alias/schoolbackup",
        )

        # Server access logs: S3's log delivery only writes with SSE-S3, so this bucket cannot use the KMS key.
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
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

        self.bucket = s3.Bucket(
            self,
            "BackupBucket",
            bucket_name=bucket_name(stack.account, stack.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.governance(
                Duration.days(config.object_lock_days)
            ),
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="backup-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
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
                s3.LifecycleRule(
                    id="noncurrent-and-housekeeping",
                    noncurrent_version_expiration=Duration.days(config.noncurrent_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    expired_object_delete_marker=True,
                ),
            ],
        )
        self._deny_foreign_encryption()
        self._require_write_once(f"{DUMP_PREFIX}/*")

        CfnOutput(
            self,
            "BackupBucketName",
            value=self.bucket.bucket_name,
            description="Where the dumps and reports are",
        )
        CfnOutput(self, "AccessLogBucketName", value=self.log_bucket.bucket_name)

    def _deny_foreign_encryption(self) -> None:
        """Objects are encrypted with our key: a request without SSE headers gets the bucket default
        (our key); one that asks for anything else is denied.

        Each statement applies only when its header is sent (``Null: false``). A Deny with
        ``StringNotEqualsIfExists`` would also match a request that carries no such header ("if the
        key is not present, the condition is true"), and S3 sends no SSE headers on UploadPart and
        CompleteMultipartUpload, nor does a plain PutObject: it denied the dump's own parts.
        The key-id header is compared as sent, so a client naming our key must use its ARN.
        """
        objects = self.bucket.arn_for_objects("*")
        sse = "s3:x-amz-server-side-encryption"
        statements = {
            "DenyOtherEncryption": {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}},
            "DenyOtherKmsKey": {
                "Null": {f"{sse}-aws-kms-key-id": "false"},
                "StringNotEquals": {f"{sse}-aws-kms-key-id": self.key.key_arn},
            },
            # SSE-C: the bucket could not decrypt what it stores; nobody here needs it.
            "DenyCustomerProvidedKeys": {"Null": {f"{sse}-customer-algorithm": "false"}},
        }
        for sid, conditions in statements.items():
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:PutObject"],
                    resources=[objects],
                    conditions=conditions,
                )
            )

    def _require_write_once(self, pattern: str) -> None:
        """Under ``pattern`` every object is created with ``If-None-Match: *`` (AWS's documented pattern
        for enforcing conditional writes), so nothing stored there can be replaced, by anyone.

        ``s3:ObjectCreationOperation`` is true for PutObject and CompleteMultipartUpload (the requests
        that create the object and accept the header) and false for CreateMultipartUpload and
        UploadPart, which cannot carry it. CopyObject into the prefix is refused as a consequence.
        """
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyOverwritingDumps",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(pattern)],
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
