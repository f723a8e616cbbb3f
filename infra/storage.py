"""The backup bucket: versioned, KMS-encrypted, TLS-only, Object Lock (governance), lifecycle, access logs.

Both buckets and the key are retained when the stack is deleted: ``cdk destroy`` never deletes backups.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import Bucket as BucketConfig
from lambdas.common.naming import DUMP_PREFIX


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
            bucket_name=f"schoolbackup-{stack.account}-{stack.region}",
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
        # Deny uploads that are not encrypted with our key. A request without SSE headers gets the bucket
        # default (our key) and passes both statements, as does the restore_test Lambda's put_object (no SSE
        # headers). The dump script sends `--sse aws:kms --sse-kms-key-id <key ARN>`: the key-id header is
        # compared as sent, so it must be the ARN (the document's KmsKeyArn parameter allows only that).
        # The key-id condition alone does not stop a client that asks for SSE-S3 (`AES256` sends no key-id
        # header, so ...IfExists passes); the algorithm statement does.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyNonKmsEncryption",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyWrongKmsKey",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": self.key.key_arn
                    }
                },
            )
        )

        CfnOutput(
            self,
            "BackupBucketName",
            value=self.bucket.bucket_name,
            description="Where the dumps and reports are",
        )
        CfnOutput(self, "AccessLogBucketName", value=self.log_bucket.bucket_name)
