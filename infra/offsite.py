"""Offsite copies: the second stack in the offsite region (the copy bucket and the offsite key), and the
names by which home-stack roles reach them.

The offsite region is another region of the same account, or of another one (``offsite.account``, the
target account). Its names are deterministic (the bucket is ``offsite_bucket_name(account, region)``, the
key has the alias ``OFFSITE_KEY_ALIAS``), so the home stack names them without any cross-stack reference:
it deploys after the offsite stack (a stack dependency).

With a target account there are three stacks (one ``cdk deploy --all``, the target bootstrapped with
``cdk bootstrap --trust <home account>``): the offsite stack in the target account (which also lets the
home account replicate into it and holds the roles the home jobs assume there), the staging stack in the
home account's offsite region (the staging key of the copy job's staging copies) and the home stack,
pinned to ``offsite.home_account``, deployed last.
"""

from __future__ import annotations

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
from infra.health import target_read_statements
from infra.monitoring import AlarmTopic
from infra.nag import acknowledge
from infra.offsite_copy import target_copy_statements, target_copy_wildcards
from infra.offsite_names import offsite_alias_arn, offsite_bucket_arn, offsite_key_statements, via
from infra.prune import offsite_wildcard_reasons, target_prune_statements
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
    KIND_AMI,
    KIND_DUMP,
    KIND_RDS,
    OFFSITE_KEY_ALIAS,
    OFFSITE_REPLICATION_RULE,
    PRUNED_KINDS,
    STAGING_KEY_ALIAS,
    alarm_prefix,
    offsite_bucket_name,
    offsite_role_name,
    offsite_stack_name,
    staging_stack_name,
)


def target_account(config: Config, stack: Stack) -> str:
    """The account of the offsite copies: ``offsite.account`` (copies into another account), else the
    stack's own."""
    return (
        config.offsite.account if config.offsite.cross_account and config.offsite.account else stack.account
    )


def home_environment(config: Config) -> Environment | None:
    """The home stack's environment: with a target account pinned to ``offsite.home_account`` (a deploy
    with other credentials fails before it changes anything; the region stays the CLI's), else None
    (the CLI's account and region, as always)."""
    if not config.offsite.cross_account or config.offsite.home_account is None:
        return None
    return Environment(account=config.offsite.home_account)


def copies_snapshots(config: Config) -> bool:
    """The copy job copies RDS snapshots or AMIs (with a target account: through the staging stack)."""
    return config.offsite.copies(KIND_RDS) or config.offsite.copies(KIND_AMI)


class OffsiteStack(Stack):
    """The offsite region's part: the offsite key, the copy bucket (and its access-log bucket), and the
    alarm when replication falls behind (with a topic of its own: an alarm mails only through a topic of
    its region).

    Copies into another account (``offsite.account``): this stack is in that account (the target), and
    also lets the home account replicate into the copy bucket under the offsite key, and holds the roles
    that the home stack's jobs assume there (``<offsite.role_name>-copy``, ``-prune``, ``-read``), each
    trusted by the home account (whose own IAM decides which of its roles may assume which)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, home_stack: str, **kwargs: Any
    ) -> None:
        region = config.offsite.region
        target = config.offsite.account if config.offsite.cross_account else None
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=target, region=region),
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
        # copies into another account: what the home account may do here, and the roles it assumes
        self.target_roles: dict[str, iam.Role] = {}
        if config.offsite.cross_account:
            home = config.offsite.home_account
            assert home is not None, "the configuration requires offsite.home_account with offsite.account"
            self._grant_home(home, region)
            self.target_roles = self._target_roles(config, home, region)

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

    def _grant_home(self, home: str, region: str) -> None:
        """S3 replication of the home account's bucket, as the home account's replication role: encrypt
        the replicas with the offsite key (only through S3 here), write them under ``dumps/`` as this
        account's objects (owner override), read the bucket's versioning (S3 checks it when the home
        stack sets the replication rule). Never ``s3:ReplicateDelete`` (denied to all) nor
        ``s3:PutBucketVersioning``."""
        principal = iam.AccountPrincipal(home)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="HomeReplicationEncryptsReplicas",
                principals=[principal],
                actions=["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": via("s3", region)}},
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="HomeReplicatesDumps",
                principals=[principal],
                actions=["s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"],
                resources=[self.bucket.arn_for_objects(f"{DUMP_PREFIX}/*")],
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="HomeReadsVersioning",
                principals=[principal],
                actions=["s3:GetBucketVersioning", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )

    def _target_roles(self, config: Config, home: str, region: str) -> dict[str, iam.Role]:
        """The roles the home jobs assume, by use: ``read`` (verify, report, backupctl status, prune
        --dry-run), and with copies of rds or ami ``copy`` (the copy job's side here) and ``prune``."""
        kinds = tuple(k for k in PRUNED_KINDS if config.offsite.copies(k))
        dumps = config.offsite.copies(KIND_DUMP) and config.dump.enabled
        reads, read_reasons = target_read_statements(
            self, region, kinds, dumps=dumps, key_arn=self.key.key_arn
        )
        built: dict[str, tuple[str, str, list[iam.PolicyStatement], dict[str, str]]] = {
            "read": (
                "ReadRole",
                "schoolbackup: verify, report and backupctl of the home account read the offsite copies",
                reads,
                read_reasons,
            )
        }
        if kinds:
            built["copy"] = (
                "CopyRole",
                "schoolbackup: the home account's copy job copies its shared staging copies into this account",
                target_copy_statements(
                    self, region, home_account=home, key_arn=self.key.key_arn, staging_alias=STAGING_KEY_ALIAS
                ),
                target_copy_wildcards(region, home),
            )
            built["prune"] = (
                "PruneRole",
                "schoolbackup: the home account's prune applies the offsite retention to the copies here",
                target_prune_statements(self, region, kinds),
                offsite_wildcard_reasons(region, kinds, listings=True),
            )
        return {
            use: self._target_role(
                construct_id,
                name=offsite_role_name(config.offsite.role_name, use),
                home=home,
                description=description,
                statements=statements,
                wildcards=wildcards,
            )
            for use, (construct_id, description, statements, wildcards) in built.items()
        }

    def _target_role(
        self,
        construct_id: str,
        *,
        name: str,
        home: str,
        description: str,
        statements: list[iam.PolicyStatement],
        wildcards: dict[str, str],
    ) -> iam.Role:
        role = iam.Role(
            self,
            construct_id,
            role_name=name,
            description=description,
            # the home account's IAM decides which of its principals may assume it (its jobs' roles)
            assumed_by=iam.AccountPrincipal(home),
        )
        for statement in statements:
            role.add_to_policy(statement)
        for resource, reason in wildcards.items():
            acknowledge(role, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)
        return role

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
        self.target = config.offsite.account if config.offsite.cross_account else None
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
                    "DestinationBucket": offsite_bucket_name(target_account(config, stack), region),
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
            # Not s3:ReplicateDelete (delete markers are not replicated, and the copy bucket denies it);
            # s3:ObjectOwnerOverrideToBucketOwner only into another account (the replicas become its own).
            iam.PolicyStatement(
                sid="ReplicateDumps",
                actions=["s3:ReplicateObject", "s3:ReplicateTags"]
                + (["s3:ObjectOwnerOverrideToBucketOwner"] if self.target else []),
                resources=[f"{offsite_bucket_arn(stack, region, self.target)}/{dumps}"],
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
                account=self.target,
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        target = self.target or "<AWS::AccountId>"  # as cdk-nag names the account of the copies
        for objects in (
            "<StorageBackupBucketF1474890.Arn>/dumps/*",
            f"arn:<AWS::Partition>:s3:::schoolbackup-offsite-{target}-{region}/dumps/*",
        ):
            acknowledge(
                role,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::{objects}]",
                "Replication reads and writes every dump object under dumps/ (new keys every night), "
                "nothing else in either bucket.",
            )
        acknowledge(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:{region}:{target}:key/*]",
            "The offsite key lives in the offsite stack; key/* is narrowed to it by kms:ResourceAliases "
            "(alias/schoolbackup-offsite) and to S3 in the offsite region by kms:ViaService.",
        )
        return role

    def _rule(self, stack: Stack, region: str) -> s3.CfnBucket.ReplicationRuleProperty:
        """One rule: ``dumps/`` (SSE-KMS objects) to the copy bucket, re-encrypted with the offsite key;
        delete markers stay at home; replication metrics on.

        No Replication Time Control: it costs per GB replicated and promises 15 minutes, while a dump is
        needed offsite within hours (``offsite.replication_alarm_minutes``); the metrics (latency,
        failures) are available without it.

        Into another account: the replicas become that account's objects (AccessControlTranslation, owner
        Destination), its copy bucket and its offsite key (by alias ARN) are named with its id."""
        target = self.target
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
                bucket=offsite_bucket_arn(stack, region, target),
                account=target,
                access_control_translation=s3.CfnBucket.AccessControlTranslationProperty(owner="Destination")
                if target
                else None,
                encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(
                    replica_kms_key_id=offsite_alias_arn(stack, region, target)
                ),
                # no EventThreshold: S3 refuses one without Replication Time Control
                metrics=s3.CfnBucket.MetricsProperty(status="Enabled"),
            ),
        )


class StagingStack(Stack):
    """Copies into another account: the home account's part in the offsite region, the staging key.

    A snapshot under ``aws/rds`` or ``aws/ebs`` cannot be shared with another account, and a shared
    encrypted snapshot cannot be copied into another region by the account it is shared with: the copy
    job copies each original into this region under the staging key, shares that staging copy with the
    target account, which copies it (same region) under its offsite key. The target account may use the
    staging key only through RDS and EC2 in this region, and grants only for AWS resources."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any) -> None:
        region, home, target = config.offsite.region, config.offsite.home_account, config.offsite.account
        assert home is not None and target is not None, "a staging stack only with a target account"
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=home, region=region),
            description="schoolbackup: the staging key of copies into another account",
            **kwargs,
        )
        Tags.of(self).add("Application", "schoolbackup")
        self.key = backup_key(
            self,
            "StagingKey",
            "schoolbackup: encrypts the staging copies that the target account copies",
            STAGING_KEY_ALIAS,
        )
        self._grant_target(target, region)
        CfnOutput(self, "StagingKeyArn", value=self.key.key_arn, description="The key of the staging copies")

    def _grant_target(self, target: str, region: str) -> None:
        """What RDS and EC2 of the target account ask of the source key while copying a shared staging
        copy (decrypt it, re-encrypt it under the offsite key, grants for themselves)."""
        principal = iam.AccountPrincipal(target)
        services = {"kms:ViaService": [via("rds", region), via("ec2", region)]}
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TargetAccountCopiesStagingCopies",
                principals=[principal],
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"],
                resources=["*"],
                conditions={"StringEquals": services},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TargetAccountGrantsForStagingCopies",
                principals=[principal],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={"StringEquals": services, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )


def add_offsite_stack(scope: Construct, home: Stack, config: Config) -> OffsiteStack | None:
    """With offsite copies, the offsite stack of ``home`` (``<home>-Offsite`` in ``offsite.region``, in
    ``offsite.account`` when set) and, copying rds or ami into another account, the staging stack
    (``<home>-OffsiteStaging``, :func:`add_staging_stack`); ``home`` deploys after them, so one
    ``cdk deploy --all`` deploys all in order."""
    if not config.offsite.enabled:
        return None
    offsite = OffsiteStack(
        scope, offsite_stack_name(home.stack_name), config=config, home_stack=home.stack_name
    )
    home.add_stack_dependency(
        offsite, "the replication rule and the roles name the copy bucket and the offsite key"
    )
    add_staging_stack(scope, home, config)
    return offsite


def add_staging_stack(scope: Construct, home: Stack, config: Config) -> StagingStack | None:
    """Copies of rds or ami into another account: the staging stack of ``home``, before ``home``."""
    if not config.offsite.cross_account or not copies_snapshots(config):
        return None
    staging = StagingStack(scope, staging_stack_name(home.stack_name), config=config)
    home.add_stack_dependency(staging, "the copy job's role names the staging key (by its alias)")
    return staging
