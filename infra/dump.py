"""The dump as an SSM Command document, its daily schedule, the server's policy and its alarm.

- The document embeds ``lambdas/dump/schoolbackup-dump.sh`` and its helpers (``s3put.py``, the
  write-once S3 client; ``dbsecret.py``, which keeps the DB password in memory) verbatim (read at synth). Its name ends with a hash of its content, so a changed script is a new
  document (CloudFormation replaces it) and the schedule, which names it, runs the new script the
  next night; the schedule also asks for ``$LATEST`` explicitly. Its settings come
  from document parameters; SSM substitutes ``{{ Param }}`` textually into the shell script, so every
  parameter has an ``allowedPattern`` that admits no quote, ``$``, backtick, ``;``, ``|``, ``&``, space
  (except as the path separator), newline or backslash, and every value is single-quoted in its export.
- EventBridge Scheduler calls ``ssm:SendCommand`` (universal target) with the scheduled time; the
  command output goes to a log group with retention (``CloudWatchOutputConfig`` is set by the sender).
- The server's existing role (``dump.server_role_name``) gets a policy that can only *add* objects
  under ``dumps/`` (write-once: the bucket policy requires ``If-None-Match``), abort its own failed
  uploads, ask whether a slot's ``manifest.json`` exists (nothing else can be listed), use the bucket
  key for that, read the one DB secret and write the command output.
- A failed, timed-out or cancelled command on any server is mailed through the alarm topic.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Final

from aws_cdk import ArnFormat, CfnOutput, RemovalPolicy, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import Config
from infra.monitoring import AlarmTopic
from infra.nag import acknowledge
from infra.schedules import SCHEDULED_TIME, JobSchedules
from infra.storage import BackupStorage
from lambdas.common.contracts import DUMP_PREFIX, dump_log_group_name
from lambdas.common.messages import say

JOB: Final = "dump"
SCRIPT: Final = Path(__file__).resolve().parent.parent / "lambdas" / "dump" / "schoolbackup-dump.sh"
# Helper programs next to the script: the shell variable the document sets to each one's source.
HELPERS: Final[dict[str, Path]] = {
    "SB_S3PUT_PY": SCRIPT.with_name("s3put.py"),
    "SB_DBSECRET_PY": SCRIPT.with_name("dbsecret.py"),
}
# The script stops itself this long before the document's timeout, so its cleanup always runs
# (the SSM agent SIGKILLs the process group at the timeout).
TIME_LIMIT_MARGIN_SECONDS: Final = 300
# The manifest check: ListBucket with the manifest's key as prefix; no other listing is possible.
MANIFEST_PREFIX_PATTERN: Final = f"{DUMP_PREFIX}/i-*/????/??/??/????????T????Z/manifest.json"
DOCUMENT_VERSION: Final = "$LATEST"
FAILED_STATUSES: Final = ("Failed", "TimedOut", "Cancelled")

# Patterns use only syntax that Python, Java (SSM) and POSIX ERE read the same way: no \d, no lookaround.
# None admits ' " ` $ ; | & < > ( ) \ or newlines, so a value cannot leave its single quotes.
_PATH_CHARS: Final = r"[A-Za-z0-9_.@+=:/-]"
PATTERNS: Final[dict[str, str]] = {
    "Bucket": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    "Prefix": rf"^{DUMP_PREFIX}(/[A-Za-z0-9_.-]+)*$",
    "Paths": rf"^/{_PATH_CHARS}*( /{_PATH_CHARS}*)*$",
    "DbEngine": r"^(mysql|postgres|none)$",
    "DbHost": r"^([A-Za-z0-9._:-]{1,253})?$",
    "DbPort": r"^([0-9]{1,5})?$",
    "DbName": r"^([A-Za-z0-9_][A-Za-z0-9_-]{0,62})?$",
    "DbSecretArn": r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+)?$",
    "Compression": r"^(gzip|zstd)$",
    "DbConsistency": r"^(single-transaction|lock-tables)$",
    "MaxPartMiB": r"^[0-9]{1,4}$",
    "KmsKeyArn": r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$",
    "ScheduledTime": r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?Z)?$",
    "Region": r"^([a-z]{2}(-[a-z]+)+-[0-9]+)?$",
}
# Document parameter -> environment variable of the script.
VARIABLES: Final[dict[str, str]] = {
    "Bucket": "SB_BUCKET",
    "Prefix": "SB_PREFIX",
    "Paths": "SB_PATHS",
    "DbEngine": "SB_DB_ENGINE",
    "DbHost": "SB_DB_HOST",
    "DbPort": "SB_DB_PORT",
    "DbName": "SB_DB_NAME",
    "DbSecretArn": "SB_DB_SECRET_ARN",
    "Compression": "SB_COMPRESSION",
    "DbConsistency": "SB_DB_CONSISTENCY",
    "MaxPartMiB": "SB_MAX_PART_MIB",
    "KmsKeyArn": "SB_KMS_KEY_ID",
    "ScheduledTime": "SB_SCHEDULED_TIME",
    "Region": "SB_REGION",
}
_DESCRIPTIONS: Final[dict[str, str]] = {
    "Bucket": "Backup bucket name",
    "Prefix": "Key prefix of the dumps (the server may only write under dumps/)",
    "Paths": "Absolute paths to archive, separated by single spaces",
    "DbEngine": "mysql, postgres or none",
    "DbHost": "Database host (empty: host from the secret)",
    "DbPort": "Database port (empty: port from the secret or the engine default)",
    "DbName": "Database name (empty: dbname from the secret)",
    "DbSecretArn": "Secrets Manager secret with username and password (empty only with DbEngine none)",
    "Compression": "gzip or zstd",
    "DbConsistency": "MySQL: single-transaction (InnoDB consistent, writes go on) or lock-tables (all consistent)",
    "MaxPartMiB": "Largest upload part in MiB (5-5120); an upload keeps up to 3 in memory",
    "KmsKeyArn": "KMS key ARN of the bucket (SSE-KMS)",
    "ScheduledTime": "ISO-8601 UTC time that names the dump folder, e.g. 2026-11-27T01:00:00Z (empty: now)",
    "Region": "AWS region (empty: from the instance metadata)",
}


def script_lines() -> list[str]:
    return SCRIPT.read_text(encoding="utf-8").splitlines()


def helper_lines() -> dict[str, list[str]]:
    return {var: path.read_text(encoding="utf-8").splitlines() for var, path in HELPERS.items()}


def time_limit_seconds(timeout_seconds: int) -> int:
    """The script's own time limit: before the document's timeout, leaving time for its cleanup."""
    return max(timeout_seconds - TIME_LIMIT_MARGIN_SECONDS, timeout_seconds * 9 // 10)


def run_command(
    lines: list[str], helpers: dict[str, list[str]], constants: dict[str, str] | None = None
) -> list[str]:
    """The script with the exports (parameters, then ``constants``) and the helpers (shell variables
    holding their source, not exported) inserted after its shebang, which stays the first line."""
    shebang, body = lines[0], lines[1:]
    if not shebang.startswith("#!"):
        raise ValueError(f"{SCRIPT} must start with a shebang line, got {shebang!r}")
    if any("{{" in line for line in body):
        raise ValueError(f"{SCRIPT} must not contain '{{{{': SSM would read it as a parameter")
    exports = [f"export {var}='{{{{ {param} }}}}'" for param, var in VARIABLES.items()]
    exports += [f"export {var}='{value}'" for var, value in (constants or {}).items()]
    embedded: list[str] = []
    for var, text in helpers.items():
        end = f"{var}_END"
        if any("{{" in line for line in text):
            raise ValueError(
                f"{HELPERS.get(var, var)} must not contain '{{{{': SSM would read it as a parameter"
            )
        if end in text:
            raise ValueError(f"{HELPERS.get(var, var)} must not contain a line {end!r}")
        embedded += [f"{var}=$(cat <<'{end}'", *text, end, ")"]
    return [
        shebang,
        "# settings from the SSM document parameters (each checked by its allowedPattern)",
        *exports,
        "# the dump's helpers, lambdas/dump/*.py (shell variables, not exported)",
        *embedded,
        *body,
    ]


def document_name(stack_name: str, content: dict[str, Any]) -> str:
    """``<stack>-Dump-<hash of the content>``: a changed script or parameter is a new document."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return f"{stack_name}-Dump-{digest[:10]}"


def check_default(param: str, value: str) -> str:
    """Refuse at synth a default that SSM would refuse at deploy (tokens are checked by SSM itself)."""
    if not Token.is_unresolved(value) and not re.match(PATTERNS[param], value):
        raise ValueError(
            f"dump document parameter {param}: default {value!r} does not match {PATTERNS[param]}"
        )
    return value


class DumpJob(Construct):
    """The ``dump`` document, schedule, server policy and failure rule (nothing when dump is disabled)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        storage: BackupStorage,
        schedules: JobSchedules,
        alarms: AlarmTopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.document_name: str | None = None
        self.log_group: logs.LogGroup | None = None
        if not config.dump.enabled:
            return
        self.config, self.storage = config, storage
        stack = Stack.of(self)
        self.log_group_name = dump_log_group_name(stack.stack_name)
        self.log_group = self._output_log_group()
        self.document_name, self.document = self._document()
        self.schedule = self._schedule(schedules)
        self.server_policy = self._server_policy()
        self.failure_rule = self._failure_rule(alarms)
        CfnOutput(self, "DumpDocumentName", value=self.document_name, description="SSM document of the dump")
        CfnOutput(
            self, "DumpLogGroupName", value=self.log_group_name, description="Output of the dump commands"
        )

    @property
    def timeout_seconds(self) -> int:
        return self.config.dump.timeout_minutes * 60

    def _output_log_group(self) -> logs.LogGroup:
        """Where the SSM agent writes the command output (CloudWatchOutputConfig), with retention."""
        group = logs.LogGroup(
            self, "Logs", log_group_name=self.log_group_name, removal_policy=RemovalPolicy.DESTROY
        )
        cfn_log_group = group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = self.config.log_retention_days
        return group

    def _document(self) -> tuple[str, ssm.CfnDocument]:
        """The Command document: parameters with their patterns, and the script with its helpers."""
        dump, storage, stack = self.config.dump, self.storage, Stack.of(self)
        timeout_seconds = self.timeout_seconds
        defaults = {
            "Bucket": storage.bucket.bucket_name,
            "Prefix": DUMP_PREFIX,
            "Paths": " ".join(dump.paths),
            "DbEngine": dump.engine,
            "DbHost": dump.db_host,
            "DbPort": str(dump.db_port),
            "DbName": dump.db_name,
            "DbSecretArn": dump.db_secret_arn,
            "Compression": dump.compression,
            "DbConsistency": dump.mysql_consistency,
            "MaxPartMiB": str(dump.max_part_mib),
            "KmsKeyArn": storage.key.key_arn,
            "ScheduledTime": "",
            "Region": stack.region,
        }
        parameters = {
            name: {
                "type": "String",
                "description": _DESCRIPTIONS[name],
                "default": check_default(name, defaults[name]),
                "allowedPattern": PATTERNS[name],
            }
            for name in VARIABLES
        }
        content = {
            "schemaVersion": "2.2",
            "description": (
                "schoolbackup: stream files and a database dump of this server to S3, write-once, manifest "
                "last (script lambdas/dump/schoolbackup-dump.sh)"
            ),
            "parameters": parameters,
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": "dump",
                    "precondition": {"StringEquals": ["platformType", "Linux"]},
                    "inputs": {
                        "timeoutSeconds": timeout_seconds,
                        "runCommand": run_command(
                            script_lines(),
                            helper_lines(),
                            {"SB_TIME_LIMIT_SECONDS": str(time_limit_seconds(timeout_seconds))},
                        ),
                    },
                }
            ],
        }
        # The name changes with the content: CloudFormation replaces the document (version 1, the
        # default) instead of adding a version that SendCommand would not run by default.
        name = document_name(stack.stack_name, stack.resolve(content))
        document = ssm.CfnDocument(
            self,
            "Document",
            name=name,
            document_type="Command",
            document_format="JSON",
            target_type="/AWS::EC2::Instance",
            update_method="Replace",
            content=content,
        )
        return name, document

    def _schedule(self, schedules: JobSchedules) -> Any:
        """SendCommand through the Scheduler's universal target, to the listed or the tagged servers."""
        selection, stack = self.config.selection, Stack.of(self)
        region, account, partition = stack.region, stack.account, stack.partition
        document_arn = f"arn:{partition}:ssm:{region}:{account}:document/{self.document_name}"
        instance_arn = f"arn:{partition}:ec2:{region}:{account}:instance"
        timeout_seconds = self.timeout_seconds
        if selection.ec2_instance_ids:
            command_targets: dict[str, Any] = {"InstanceIds": list(selection.ec2_instance_ids)}
            instance_statement = iam.PolicyStatement(
                sid="SendToListedInstances",
                actions=["ssm:SendCommand"],
                resources=[f"{instance_arn}/{i}" for i in selection.ec2_instance_ids],
            )
        else:
            command_targets = {
                "Targets": [{"Key": f"tag:{selection.tag.key}", "Values": [selection.tag.value]}]
            }
            instance_statement = iam.PolicyStatement(
                sid="SendToTaggedInstances",
                actions=["ssm:SendCommand"],
                resources=[f"{instance_arn}/*"],
                conditions={"StringEquals": {f"ssm:resourceTag/{selection.tag.key}": selection.tag.value}},
            )
        payload = {
            "DocumentName": self.document_name,
            "DocumentVersion": DOCUMENT_VERSION,
            **command_targets,
            "Parameters": {"ScheduledTime": [SCHEDULED_TIME]},
            "TimeoutSeconds": timeout_seconds,
            "Comment": "schoolbackup daily dump",
            "CloudWatchOutputConfig": {
                "CloudWatchLogGroupName": self.log_group_name,
                "CloudWatchOutputEnabled": True,
            },
            "MaxConcurrency": "1",
            "MaxErrors": "0",
        }
        schedule = schedules.sdk_job(
            JOB,
            "ssm:sendCommand",
            payload,
            [
                iam.PolicyStatement(
                    sid="SendDumpDocument", actions=["ssm:SendCommand"], resources=[document_arn]
                ),
                instance_statement,
            ],
        )
        schedule.node.add_dependency(self.document)
        if not selection.ec2_instance_ids:
            role = schedules.node.find_child(f"{JOB}-role")
            acknowledge(
                role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]",
                f"SendCommand on instance/* is limited by the ssm:resourceTag/{selection.tag.key}="
                f"{selection.tag.value} condition to the servers selected for backup; the document is fixed.",
            )

        return schedule

    def _server_policy(self) -> iam.Policy:
        """The server's role may only add dumps, find a slot's manifest, use the key, read its secret."""
        dump, storage, stack = self.config.dump, self.storage, Stack.of(self)
        region = stack.region
        assert self.log_group is not None
        cfn_log_group = self.log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        bucket_id = stack.resolve(stack.get_logical_id(storage.bucket.node.default_child))  # type: ignore[arg-type]
        log_group_id = stack.resolve(stack.get_logical_id(cfn_log_group))
        server_role = iam.Role.from_role_name(self, "ServerRole", dump.server_role_name)
        policy = iam.Policy(
            self,
            "ServerPolicy",
            roles=[server_role],
            statements=[
                # The contract puts a dump under dumps/<instance-id>/. IAM has no policy variable that is
                # the bare instance id: ${aws:userid} is "<role-id>:<instance-id>" and
                # ${ec2:SourceInstanceARN} is the full instance ARN, neither of which is a key prefix. So
                # the server may add objects anywhere under dumps/ (never delete, never overwrite: the
                # bucket policy requires If-None-Match there; never touch retention, tags, ACLs or other
                # prefixes), and abort its own multipart uploads.
                iam.PolicyStatement(
                    sid="AddDumpObjects",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[storage.bucket.arn_for_objects(f"{DUMP_PREFIX}/*")],
                ),
                # "Is this slot done?" before a re-run uploads anything: a listing whose prefix is a
                # manifest key answers only that (S3 lists keys starting with the prefix).
                iam.PolicyStatement(
                    sid="FindSlotManifest",
                    actions=["s3:ListBucket"],
                    resources=[storage.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": MANIFEST_PREFIX_PATTERN}},
                ),
                # SSE-KMS with the bucket key: GenerateDataKey for each upload, Decrypt for multipart
                # uploads (aws s3 cp from a stream); only through S3 in this region.
                iam.PolicyStatement(
                    sid="EncryptDumpObjects",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[storage.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="ReadDbSecret",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[dump.db_secret_arn],
                ),
                # The SSM agent writes the command output (CloudWatchOutputConfig) into this group only.
                iam.PolicyStatement(
                    sid="WriteCommandOutput",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:log-stream:*"],
                ),
                # The agent first checks that the group exists (DescribeLogGroups); denied, it would try to
                # create it and drop the output. DescribeLogGroups is only grantable on log-group:*.
                iam.PolicyStatement(
                    sid="FindCommandOutputGroup",
                    actions=["logs:DescribeLogGroups"],
                    resources=[
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                ),
            ],
        )
        acknowledge(
            policy,
            "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
            "<AWS::AccountId>:log-group:*]",
            "logs:DescribeLogGroups has no narrower resource; the SSM agent needs it to find the dump's "
            "output group. It reveals only log group names, no log content.",
        )
        acknowledge(
            policy,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{DUMP_PREFIX}/*]",
            "Dump keys are dumps/<instance-id>/<time>/..., named at run time; IAM has no policy variable "
            "holding the bare instance id, so PutObject (only add, never delete or change retention) "
            "is limited to the dumps/ prefix.",
        )
        acknowledge(
            policy,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{log_group_id}.Arn>:log-stream:*]",
            "The SSM agent names the output log streams per command at run time; the wildcard is "
            "limited to the dump log group.",
        )

        return policy

    def _failure_rule(self, alarms: AlarmTopic) -> events.Rule:
        """A failed, timed-out or cancelled dump on any server is mailed through the alarm topic."""
        stack, log_group_name = Stack.of(self), self.log_group_name
        failure_rule_name = f"{stack.stack_name}-dump-failed"
        rule = events.Rule(
            self,
            "Failed",
            rule_name=failure_rule_name,
            description="schoolbackup: a dump command failed, timed out or was cancelled on a server",
            event_pattern=events.EventPattern(
                source=["aws.ssm"],
                detail_type=["EC2 Command Invocation Status-change Notification"],
                detail={"document-name": [self.document_name], "status": list(FAILED_STATUSES)},
            ),
        )
        instance = events.EventField.from_path("$.detail.instance-id")
        status = events.EventField.from_path("$.detail.status")
        command = events.EventField.from_path("$.detail.command-id")
        rule.add_target(
            alarms.rule_target(
                failure_rule_name,
                events.RuleTargetInput.from_text(
                    # No other <...> in this text: EventBridge reads every <name> as a placeholder.
                    say(
                        "dump.failed_mail",
                        self.config.language,
                        instance=instance,
                        status=status,
                        command=command,
                        document=self.document_name,
                        log_group=log_group_name,
                    )
                ),
            )
        )

        return rule
