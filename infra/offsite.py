"""Offsite copies: the second stack in the offsite region (the copy bucket and the offsite key), and the
names by which home-stack roles reach them.

The offsite region is another region of the SAME account and its names are deterministic (the bucket is
``offsite_bucket_name(account, region)``, the key has the alias ``OFFSITE_KEY_ALIAS``), so the home stack
names them without any cross-region reference: it deploys after the offsite stack (a stack dependency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import (
    Aws,
    CfnOutput,
    CfnRule,
    CfnRuleAssertion,
    Duration,
    Environment,
    Fn,
    Stack,
    Tags,
)
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alarms import HealthAlarms
from infra.config import Config
from infra.monitoring import AlarmTopic
from infra.nag import acknowledge
from infra.storage import (
    BackupStorage,
    access_log_bucket,
    backup_key,
    deny_foreign_encryption,
    housekeeping_rule,
    protected_bucket,
    require_write_once,
)
from lambdas.common.contracts import (
    DUMP_PREFIX,
    KIND_DUMP,
    OFFSITE_KEY_ALIAS,
    OFFSITE_REPLICATION_RULE,
    alarm_prefix,
    offsite_bucket_name,
    offsite_stack_name,
)


def offsite_bucket_arn(stack: Stack, region: str) -> str:
    """The copy bucket's ARN, ``arn:<partition>:s3:::schoolbackup-offsite-<account>-<region>``."""
    return f"arn:{stack.partition}:s3:::{offsite_bucket_name(stack.account, region)}"


def offsite_key_arn_pattern(stack: Stack, region: str) -> str:
    """Every key of this account in ``region``: ``arn:<partition>:kms:<region>:<account>:key/*``. Only
    with the alias condition of :func:`offsite_key_statements` does it mean the offsite key."""
    return f"arn:{stack.partition}:kms:{region}:{stack.account}:key/*"


def offsite_alias_arn(stack: Stack, region: str) -> str:
    """The offsite key's alias as an ARN (what S3 replication accepts as the replica key)."""
    return f"arn:{stack.partition}:kms:{region}:{stack.account}:{OFFSITE_KEY_ALIAS}"


def offsite_key_statements(
    stack: Stack,
    region: str,
    actions: Sequence[str],
    sid: str,
    via_service: str | None = None,
) -> list[iam.PolicyStatement]:
    """``actions`` on the offsite key, for a role of the home stack.

    The key lives in another stack, so it is named as ``key/*`` in the offsite region, narrowed to the
    one key whose alias is ``alias/schoolbackup-offsite`` (``kms:ResourceAliases``). With
    ``via_service`` (e.g. ``"s3"``, ``"rds"``, ``"ec2"``) the key is usable only through that service
    in the offsite region (``kms:ViaService <service>.<region>.amazonaws.com``); a full endpoint
    name (``"s3.eu-central-1.amazonaws.com"``) is taken as given.
    """
    conditions: dict[str, dict[str, str]] = {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": OFFSITE_KEY_ALIAS},
    }
    if via_service is not None:
        endpoint = via_service if "." in via_service else f"{via_service}.{region}.amazonaws.com"
        conditions["StringEquals"] = {"kms:ViaService": endpoint}
    return [
        iam.PolicyStatement(
            sid=sid,
            actions=list(actions),
            resources=[offsite_key_arn_pattern(stack, region)],
            conditions=conditions,
        )
    ]


class OffsiteStack(Stack):
    """The offsite region's part: the offsite key, the copy bucket (and its access-log bucket), and the
    alarm when replication falls behind (with a topic of its own: an alarm mails only through a topic of
    its region)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, home_stack: str, **kwargs: Any
    ) -> None:
        region = config.offsite.region
        super().__init__(
            scope,
            construct_id,
            env=Environment(region=region),
            description="schoolbackup: the offsite copies (copy bucket and key)",
            **kwargs,
        )
        Tags.of(self).add("Application", "schoolbackup")
        self.key = backup_key(
            self,
            "OffsiteKey",
            "schoolbackup: encrypts the offsite copies and their alarms",
            OFFSITE_KEY_ALIAS,
        )
        self.log_bucket = access_log_bucket(self, "AccessLogBucket", config.bucket)
        self.bucket = protected_bucket(
            self,
            "CopyBucket",
            name=offsite_bucket_name(self.account, region),
            key=self.key,
            config=config.bucket,
            log_bucket=self.log_bucket,
            log_prefix="copy-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-dump-copies",
                    prefix=f"{DUMP_PREFIX}/",
                    expiration=Duration.days(config.offsite.retention.max_age_days),
                ),
                housekeeping_rule(config.bucket),
            ],
        )
        self._write_once()

        self.alarms = AlarmTopic(self, "Alarms", key=self.key, emails=config.notification_emails)
        self.latency_alarm = self._latency_alarm(config, home_stack)

        CfnOutput(
            self,
            "CopyBucketName",
            value=self.bucket.bucket_name,
            description="Where the replicated dumps are (offsite)",
        )
        CfnOutput(self, "OffsiteKeyArn", value=self.key.key_arn, description="The key of the offsite copies")
        CfnOutput(self, "OffsiteAccessLogBucketName", value=self.log_bucket.bucket_name)

    def _write_once(self) -> None:
        """As write-once as the home bucket. Replication writes replicas with ``s3:ReplicateObject`` (not
        PutObject), so the If-None-Match rule on PutObject binds everybody else and never replication;
        replicas must be SSE-KMS (not SSE-S3 or SSE-C), and nobody replicates a delete into the copies.

        The key-id header of a replica is not compared: AWS does not document in which form (key ARN,
        key id or the alias ARN of the rule) replication presents it, and a wrong guess would deny every
        replica. Which key a replica gets is fixed by the replication rule (the offsite key), and the
        replication role, the only principal allowed to replicate here, may use no other customer key."""
        deny_foreign_encryption(
            self.bucket,
            [self.key.key_arn],
            actions=("s3:PutObject", "s3:ReplicateObject"),
            key_id_actions=("s3:PutObject",),
        )
        require_write_once(self.bucket, f"{DUMP_PREFIX}/*")
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyReplicatedDeletes",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:ReplicateDelete"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )

    def _latency_alarm(self, config: Config, home_stack: str) -> cw.Alarm:
        """S3 publishes ReplicationLatency in the destination's region, so the alarm lives here. The
        source bucket's name holds the home region, which this stack does not know (the home stack takes
        the CLI's region): a Metrics Insights query selects the rule by destination bucket and rule id.

        No uploads means no datapoints: missing data is not breaching. A replication that stopped
        altogether is caught by ReplicationFailed at home and by the age check of the offsite dumps."""
        schema = 'SCHEMA("AWS/S3", DestinationBucket, RuleId, SourceBucket)'
        where = f"DestinationBucket = '{self.bucket.bucket_name}' AND RuleId = '{OFFSITE_REPLICATION_RULE}'"
        query = f"SELECT MAX(ReplicationLatency) FROM {schema} WHERE {where}"  # noqa: S608 (no input)
        alarms = HealthAlarms(self, prefix=alarm_prefix(home_stack), topic=self.alarms.topic, config=config)
        return alarms.alarm(
            "ReplicationLate",
            cw.MathExpression(expression=query, period=Duration.minutes(5), label="replication latency"),
            threshold=config.offsite.replication_alarm_minutes * 60,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=alarms.describe("ReplicationLate"),
        )


class OffsiteHome(Construct):
    """The home stack's part of offsite copies: a CloudFormation rule that the offsite region is not the
    home region and, when dumps are copied, their S3 replication into the copy bucket (the role S3
    assumes, the rule on the backup bucket, the alarm when replications fail)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        storage: BackupStorage,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config, self.storage = config, storage
        region = config.offsite.region
        stack = Stack.of(self)
        CfnRule(
            self,
            "OffsiteRegionDiffers",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_not(Fn.condition_equals(Aws.REGION, region)),
                    assert_description=(
                        f"offsite.region ({region}) is the region this stack is deployed to: offsite copies "
                        "must go to another region; change offsite.region in cdk.json"
                    ),
                )
            ],
        )
        self.role: iam.Role | None = None
        self.failed_alarm: cw.Alarm | None = None
        if not config.offsite.copies(KIND_DUMP):
            return
        self.role = self._role(stack, region)
        storage.replicate(self._rule(stack, region), self.role)
        alarms = HealthAlarms(self, prefix=alarm_prefix(stack.stack_name), topic=topic, config=config)
        self.failed_alarm = alarms.alarm(
            "ReplicationFailed",
            cw.Metric(
                namespace="AWS/S3",
                metric_name="OperationsFailedReplication",
                dimensions_map={
                    "SourceBucket": storage.bucket.bucket_name,
                    "DestinationBucket": offsite_bucket_name(stack.account, region),
                    "RuleId": OFFSITE_REPLICATION_RULE,
                },
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # published in the source's region only when an operation failed: no data is no failure
            missing=cw.TreatMissingData.NOT_BREACHING,
            description=alarms.describe("ReplicationFailed"),
        )

    def _role(self, stack: Stack, region: str) -> iam.Role:
        """The role S3 assumes to replicate ``dumps/``, for this bucket of this account only."""
        bucket, key = self.storage.bucket, self.storage.key
        role = iam.Role(
            self,
            "ReplicationRole",
            description="schoolbackup: S3 replicates the dumps into the offsite copy bucket",
            # No aws:SourceAccount/SourceArn condition: AWS documents the replication role's trust policy
            # without them and does not say S3 sends them when it assumes the role (if it did not, every
            # replication would fail). No other account can make S3 use this role: naming it in a
            # replication configuration takes iam:PassRole on it, in this account.
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
        )
        dumps = f"{DUMP_PREFIX}/*"
        statements = [
            iam.PolicyStatement(
                sid="ReadReplicationConfiguration",
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[bucket.bucket_arn],
            ),
            # Object Lock on the source: AWS replicates a locked object's retention and legal hold
            # (the copy bucket has Object Lock, as AWS requires) when the role may read them.
            iam.PolicyStatement(
                sid="ReadDumpsForReplication",
                actions=[
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                    "s3:GetObjectRetention",
                    "s3:GetObjectLegalHold",
                ],
                resources=[bucket.arn_for_objects(dumps)],
            ),
            # Not s3:ReplicateDelete (delete markers are not replicated, and the copy bucket denies it),
            # not s3:ObjectOwnerOverrideToBucketOwner (same account: the owner does not change).
            iam.PolicyStatement(
                sid="ReplicateDumps",
                actions=["s3:ReplicateObject", "s3:ReplicateTags"],
                resources=[f"{offsite_bucket_arn(stack, region)}/{dumps}"],
            ),
            # S3 decrypts the source object with the home key. (The evaluator of tests/iam cannot see an
            # encryption-context value, so none is required here; only this bucket uses the key via S3.)
            iam.PolicyStatement(
                sid="DecryptDumps",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
            # kms:Decrypt too: with S3 Bucket Keys (both buckets use them) replication must be able to
            # decrypt with the replica's key (S3 user guide, replicating encrypted objects, bucket keys).
            *offsite_key_statements(
                stack,
                region,
                ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"],
                "EncryptReplicas",
                via_service="s3",
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        for objects in (
            "<StorageBackupBucketF1474890.Arn>/dumps/*",
            f"arn:<AWS::Partition>:s3:::schoolbackup-offsite-<AWS::AccountId>-{region}/dumps/*",
        ):
            acknowledge(
                role,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::{objects}]",
                "Replication reads and writes every dump object under dumps/ (new keys every night), "
                "nothing else in either bucket.",
            )
        acknowledge(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:{region}:<AWS::AccountId>:key/*]",
            "The offsite key lives in the offsite stack; key/* is narrowed to it by kms:ResourceAliases "
            "(alias/schoolbackup-offsite) and to S3 in the offsite region by kms:ViaService.",
        )
        return role

    def _rule(self, stack: Stack, region: str) -> s3.CfnBucket.ReplicationRuleProperty:
        """One rule: ``dumps/`` (SSE-KMS objects) to the copy bucket, re-encrypted with the offsite key;
        delete markers stay at home; replication metrics on.

        No Replication Time Control: it costs per GB replicated and promises 15 minutes, while a dump is
        needed offsite within hours (``offsite.replication_alarm_minutes``); the metrics (latency,
        failures) are available without it."""
        return s3.CfnBucket.ReplicationRuleProperty(
            id=OFFSITE_REPLICATION_RULE,
            status="Enabled",
            priority=1,
            filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=f"{DUMP_PREFIX}/"),
            delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(status="Disabled"),
            source_selection_criteria=s3.CfnBucket.SourceSelectionCriteriaProperty(
                sse_kms_encrypted_objects=s3.CfnBucket.SseKmsEncryptedObjectsProperty(status="Enabled")
            ),
            destination=s3.CfnBucket.ReplicationDestinationProperty(
                bucket=offsite_bucket_arn(stack, region),
                encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(
                    replica_kms_key_id=offsite_alias_arn(stack, region)
                ),
                # no EventThreshold: S3 refuses one without Replication Time Control
                metrics=s3.CfnBucket.MetricsProperty(status="Enabled"),
            ),
        )


def add_offsite_stack(scope: Construct, home: Stack, config: Config) -> OffsiteStack | None:
    """With offsite copies, the offsite stack of ``home`` (``<home>-Offsite`` in ``offsite.region``);
    ``home`` deploys after it, so one ``cdk deploy --all`` deploys both in order."""
    if not config.offsite.enabled:
        return None
    offsite = OffsiteStack(
        scope, offsite_stack_name(home.stack_name), config=config, home_stack=home.stack_name
    )
    home.add_stack_dependency(
        offsite, "the replication rule and the roles name the copy bucket and the offsite key"
    )
    return offsite
