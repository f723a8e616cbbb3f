"""The restore drill: an isolated network, the drill function, its state machine, schedules and alarms.

Isolation (what the restored server can reach): the drill VPC has no internet gateway, no NAT and no
peering; its only ways out are an S3 gateway endpoint whose policy allows reading this stack's dumps
and nothing else, and the interface endpoints the drill creates for its own run (SSM, Secrets Manager)
and deletes again. The restored server gets the drill's instance profile (SSM agent, read the dumps,
read the secret RDS made for the restored database), never the school server's role, no public IP,
IMDSv2 only. Its security group lets nothing in; the database's lets in only the restored server.
So the restored server cannot reach the production database, cannot send mail and cannot write a
backup.

The state machine waits (Wait states); every Lambda call is a few seconds. Every task has a timeout,
every failure path (a step's error, a failed check, a timeout of a task or of the drill's runtime)
ends in the teardown, which runs until nothing of the drill is left (or gives up and reports the
leftovers). An execution stopped by hand skips the teardown: the daily cleanup finds what it left
(``BackupJob=drill``, older than the drill's maximum runtime) and removes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Final

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.alarms import HealthAlarms
from infra.config import Config
from infra.functions import FunctionFactory, acknowledge_wildcards
from infra.nag import acknowledge
from infra.schedules import JobSchedules
from infra.storage import read_statements, write_once_statements
from lambdas.common import contracts as c
from lambdas.common.settings import DrillNetwork, DrillSettings, VerifySettings

JOB: Final = "drill"
SCHEDULE: Final = "restore_drill"
CLEANUP_SCHEDULE: Final = "drill_cleanup"
CLEANUP_EXPRESSION: Final = "cron(15 9 * * ? *)"  # daily 09:15 in the configured timezone (never a DST gap)
CHECK_SCRIPT: Final = (
    Path(__file__).resolve().parent.parent / "lambdas" / "dump" / "schoolbackup-drill-check.sh"
)
DBSECRET: Final = CHECK_SCRIPT.with_name("dbsecret.py")
CIDR: Final = "10.254.0.0/24"
WAIT_READY: Final = Duration.seconds(60)
WAIT_CHECKS: Final = Duration.seconds(30)
WAIT_TEARDOWN: Final = Duration.seconds(60)
TASK_TIMEOUT: Final = Duration.minutes(3)
# Patterns of the check document's parameters (what the drill function passes); none admits a quote.
PATTERNS: Final[dict[str, str]] = {
    "DbHost": r"^([A-Za-z0-9._-]{1,253})?$",
    "DbPort": r"^([0-9]{1,5})?$",
    "DbSecretArn": r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@!-]+)?$",
    "DumpFolder": r"^(dumps/i-[0-9a-f]{8,17}/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{8}T[0-9]{4}Z/)?$",
}
VARIABLES: Final[dict[str, str]] = {
    "DbHost": "SB_DB_HOST",
    "DbPort": "SB_DB_PORT",
    "DbSecretArn": "SB_DB_SECRET_ARN",
    "DumpFolder": "SB_DUMP_FOLDER",
}
# What the SSM agent needs for Run Command (the Run Command part of AmazonSSMManagedInstanceCore).
SSM_AGENT_ACTIONS: Final = (
    "ssm:UpdateInstanceInformation",
    "ssm:ListInstanceAssociations",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)


def check_commands(config: Config, bucket: str, region: str) -> list[str]:
    """The check script with its settings: the document's parameters (each checked by its pattern), the
    configuration's constants (the SQL base64-encoded, so no quote of it can reach the shell) and
    dbsecret.py as a shell variable."""
    lines = CHECK_SCRIPT.read_text(encoding="utf-8").splitlines()
    shebang, body = lines[0], lines[1:]
    helper = DBSECRET.read_text(encoding="utf-8").splitlines()
    for name, text in (("check script", body), ("dbsecret.py", helper)):
        if any("{{" in line for line in text):
            raise ValueError(f"the drill's {name} must not contain '{{{{': SSM would read it as a parameter")
    drill, dump = config.restore_drill, config.dump
    constants = {
        "SB_APP_URL": drill.app_url,
        "SB_CHECK_SQL_B64": base64.b64encode(drill.check_sql(dump.engine).encode()).decode(),
        "SB_DB_ENGINE": dump.engine,
        "SB_DB_NAME": dump.db_name,
        "SB_PROD_DB_HOST": dump.db_host,
        "SB_BUCKET": bucket,
        "SB_REGION": region,
    }
    return [
        shebang,
        *[f"export {var}='{{{{ {param} }}}}'" for param, var in VARIABLES.items()],
        *[f"export {var}='{value}'" for var, value in constants.items()],
        "SB_DBSECRET_PY=$(cat <<'SB_DBSECRET_PY_END'",
        *helper,
        "SB_DBSECRET_PY_END",
        ")",
        *body,
    ]


class RestoreDrill(Construct):
    """``function`` (every step and the daily cleanup), ``state_machine``, ``alarms``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        verify: VerifySettings,
        factory: FunctionFactory,
        schedules: JobSchedules,
        bucket: s3.IBucket,
        key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config, self.bucket, self.key, self.topic = config, bucket, key, topic
        stack = Stack.of(self)
        self._network()
        self.instance_role, self.instance_profile = self._instance_profile()
        self.document_name, self.document = self._document()
        self.settings = DrillSettings(
            verify=verify,
            network=DrillNetwork(
                vpc_id=self.vpc.vpc_id,
                subnet_ids=tuple(s.subnet_id for s in self.vpc.isolated_subnets),
                server_security_group=self.server_sg.security_group_id,
                db_security_group=self.db_sg.security_group_id,
                endpoint_security_group=self.endpoint_sg.security_group_id,
                db_subnet_group=self.db_subnets.subnet_group_name,
            ),
            instance_profile=self.instance_profile.ref,
            check_document=self.document_name,
            topic_arn=topic.topic_arn,
            instance_type=config.restore_drill.instance_type,
            db_instance_class=config.restore_drill.db_instance_class,
            rto_target_minutes=config.restore_drill.rto_target_minutes,
            max_runtime_minutes=config.restore_drill.max_runtime_minutes,
        )
        self.function = factory.function(
            JOB,
            description="the restore drill's steps (launch, poll, check, teardown, report) and daily cleanup",
            environment=self.settings.to_env(),
            timeout=Duration.minutes(2),
        )
        for statement in self._statements(stack):
            self.function.add_to_role_policy(statement)
        acknowledge_wildcards(self.function, self._wildcards())
        self.state_machine = self._state_machine()
        schedules.state_machine_job(SCHEDULE, self.state_machine.state_machine_arn)
        schedules.lambda_job(CLEANUP_SCHEDULE, self.function, {"step": "cleanup"}, CLEANUP_EXPRESSION)
        self.stopped_rule = self._stopped_rule()
        self.alarms = self._alarms()

    def _stopped_rule(self) -> events.Rule:
        """An execution stopped by hand or timed out never reaches its Teardown state: EventBridge hands
        its status change to the drill function, which deletes that drill's resources at once (the daily
        cleanup stays the net for a lost event). The permission to invoke is bound to this rule."""
        rule = events.Rule(
            self,
            "Stopped",
            description="schoolbackup: tear down a restore drill whose execution was stopped or timed out",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[c.DRILL_STOPPED_EVENT],
                detail={
                    "status": list(c.DRILL_STOPPED_STATUSES),
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
        )
        rule.add_target(
            events_targets.LambdaFunction(self.function, retry_attempts=4, max_event_age=Duration.hours(6))
        )
        return rule

    # --- the network ------------------------------------------------------------------------------

    def _network(self) -> None:
        self.vpc = ec2.Vpc(
            self,
            "Network",
            ip_addresses=ec2.IpAddresses.cidr(CIDR),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="drill", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=26
                )
            ],
            restrict_default_security_group=False,  # the drill never uses the default group
        )
        acknowledge(
            self.vpc,
            "AwsSolutions-VPC7",
            "The drill VPC has no route out and holds resources only during a drill (twice a year); its "
            "servers and database are deleted after each drill. Flow logs would record nothing of use.",
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        gateway = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[isolated]
        )
        region = Stack.of(self).region
        gateway.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[
                    self.bucket.arn_for_objects(f"{c.DUMP_PREFIX}/*"),
                    # the SSM agent's own plugins and updates
                    f"arn:aws:s3:::amazon-ssm-{region}/*",
                    f"arn:aws:s3:::aws-ssm-{region}/*",
                ],
            )
        )
        groups = {
            construct_id: ec2.SecurityGroup(
                self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False
            )
            for construct_id, description in (
                (
                    "ServerGroup",
                    "schoolbackup drill: the restored server; nothing in, out only to the drill DB and endpoints",
                ),
                (
                    "DatabaseGroup",
                    "schoolbackup drill: the restored database; in only from the restored server",
                ),
                (
                    "EndpointGroup",
                    "schoolbackup drill: the SSM and Secrets Manager endpoints; HTTPS from the restored server",
                ),
            )
        }
        self.server_sg, self.db_sg, self.endpoint_sg = groups.values()
        port = self.config.dump.db_port
        self.db_sg.add_ingress_rule(self.server_sg, ec2.Port.tcp(port), "the restored server")
        self.endpoint_sg.add_ingress_rule(self.server_sg, ec2.Port.tcp(443), "the restored server")
        self.server_sg.add_egress_rule(self.db_sg, ec2.Port.tcp(port), "the restored database")
        # HTTPS to the VPC's endpoints: the interface endpoints and S3's gateway (its address ranges);
        # the VPC has no other route, so this reaches nothing outside it.
        self.server_sg.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "VPC endpoints only (no route out)"
        )
        self.db_subnets = rds.SubnetGroup(
            self,
            "DatabaseSubnets",
            vpc=self.vpc,
            vpc_subnets=isolated,
            description="schoolbackup drill: the restored database",
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _instance_profile(self) -> tuple[iam.Role, iam.CfnInstanceProfile]:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="schoolbackup drill: the restored server (SSM agent, read dumps, the restored DB's secret)",
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="SsmAgent", actions=list(SSM_AGENT_ACTIONS), resources=["*"])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDumps",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{c.DUMP_PREFIX}/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptDumps",
                actions=["kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )
        )
        db_arn = f"arn:{stack.partition}:rds:{stack.region}:{stack.account}:db:{c.NAME_PREFIX}drill-*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRestoredDbSecret",
                actions=["secretsmanager:GetSecretValue"],
                resources=[
                    f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:rds!db-*"
                ],
                conditions={
                    "StringLike": {"secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn": db_arn}
                },
            )
        )
        bucket_id = stack.resolve(stack.get_logical_id(self.bucket.node.default_child))  # type: ignore[arg-type]
        for resource, reason in (
            (
                "*",
                "The SSM agent's Run Command actions (ssm, ssmmessages, ec2messages) have no resource-level permissions.",
            ),
            (
                f"<{bucket_id}.Arn>/{c.DUMP_PREFIX}/*",
                "The restored server reads the dump it checks; only under dumps/.",
            ),
            (
                "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:rds!db-*",
                "RDS names the restored database's master secret rds!db-<uuid>; the tag condition limits it to "
                "secrets of drill databases (sb-drill-*).",
            ),
        ):
            acknowledge(role, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)
        profile = iam.CfnInstanceProfile(self, "InstanceProfile", roles=[role.role_name])
        return role, profile

    def _document(self) -> tuple[str, ssm.CfnDocument]:
        stack = Stack.of(self)
        content = {
            "schemaVersion": "2.2",
            "description": "schoolbackup restore drill: check the restored server (lambdas/dump/schoolbackup-drill-check.sh)",
            "parameters": {
                name: {"type": "String", "default": "", "allowedPattern": pattern, "description": name}
                for name, pattern in PATTERNS.items()
            },
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": "checks",
                    "precondition": {"StringEquals": ["platformType", "Linux"]},
                    "inputs": {
                        "timeoutSeconds": 1800,
                        "runCommand": check_commands(self.config, self.bucket.bucket_name, stack.region),
                    },
                }
            ],
        }
        digest = hashlib.sha256(
            json.dumps(stack.resolve(content), sort_keys=True, default=str).encode()
        ).hexdigest()
        name = f"{stack.stack_name}-DrillCheck-{digest[:10]}"
        document = ssm.CfnDocument(
            self,
            "CheckDocument",
            name=name,
            document_type="Command",
            document_format="JSON",
            target_type="/AWS::EC2::Instance",
            update_method="Replace",
            content=content,
        )
        return name, document

    # --- the function's role ------------------------------------------------------------------

    def _statements(self, stack: Stack) -> list[iam.PolicyStatement]:
        partition, region, account = stack.partition, stack.region, stack.account
        ec2_arn = f"arn:{partition}:ec2:{region}:{account}"
        rds_arn = f"arn:{partition}:rds:{region}:{account}"
        drill_request = {"StringEquals": {f"aws:RequestTag/{c.JOB_KEY}": c.JOB_DRILL}}
        drill_resource = {
            "StringEquals": {
                f"aws:ResourceTag/{c.JOB_KEY}": c.JOB_DRILL,
                f"aws:ResourceTag/{c.MANAGED_BY_KEY}": c.MANAGED_BY_VALUE,
            }
        }
        subnets = [f"{ec2_arn}:subnet/{s.subnet_id}" for s in self.vpc.isolated_subnets]
        document_arn = f"arn:{partition}:ssm:{region}:{account}:document/{self.document_name}"
        records = f"{c.DRILL_PREFIX}/"
        return [
            iam.PolicyStatement(
                sid="Describe",
                actions=[
                    "ec2:DescribeInstances",
                    "ec2:DescribeImages",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeVpcEndpoints",
                    "rds:DescribeDBInstances",
                    "rds:DescribeDBClusters",
                    "rds:DescribeDBSnapshots",
                    "ssm:GetCommandInvocation",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="LaunchFromOwnImages",
                actions=["ec2:RunInstances"],
                resources=[f"arn:{partition}:ec2:{region}::image/*"],
                conditions={"StringEquals": {f"aws:ResourceTag/{c.MANAGED_BY_KEY}": c.MANAGED_BY_VALUE}},
            ),
            iam.PolicyStatement(
                sid="LaunchIntoDrillNetwork",
                actions=["ec2:RunInstances"],
                resources=[*subnets, f"{ec2_arn}:security-group/{self.server_sg.security_group_id}"],
            ),
            iam.PolicyStatement(
                sid="LaunchDrillServer",
                actions=["ec2:RunInstances"],
                resources=[f"{ec2_arn}:instance/*", f"{ec2_arn}:volume/*"],
                conditions=drill_request,
            ),
            # The network interface is untagged; where it can be is fixed by the subnet and security group.
            iam.PolicyStatement(
                sid="LaunchDrillInterface",
                actions=["ec2:RunInstances"],
                resources=[f"{ec2_arn}:network-interface/*"],
            ),
            iam.PolicyStatement(
                sid="TagOnCreate",
                actions=["ec2:CreateTags"],
                resources=[
                    f"{ec2_arn}:instance/*",
                    f"{ec2_arn}:volume/*",
                    f"{ec2_arn}:network-interface/*",
                    f"{ec2_arn}:vpc-endpoint/*",
                ],
                conditions={"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateVpcEndpoint"]}},
            ),
            iam.PolicyStatement(
                sid="PassDrillInstanceRole",
                actions=["iam:PassRole"],
                resources=[self.instance_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="CreateDrillEndpoints",
                actions=["ec2:CreateVpcEndpoint"],
                resources=[
                    f"{ec2_arn}:vpc/{self.vpc.vpc_id}",
                    *subnets,
                    f"{ec2_arn}:security-group/{self.endpoint_sg.security_group_id}",
                ],
            ),
            iam.PolicyStatement(
                sid="CreateTaggedDrillEndpoints",
                actions=["ec2:CreateVpcEndpoint"],
                resources=[f"{ec2_arn}:vpc-endpoint/*"],
                conditions=drill_request,
            ),
            iam.PolicyStatement(
                sid="RemoveDrillResources",
                actions=["ec2:TerminateInstances", "ec2:DeleteVpcEndpoints", "ec2:DeleteVolume"],
                resources=[f"{ec2_arn}:instance/*", f"{ec2_arn}:vpc-endpoint/*", f"{ec2_arn}:volume/*"],
                conditions=drill_resource,
            ),
            iam.PolicyStatement(
                sid="RestoreFromOwnSnapshots",
                actions=["rds:RestoreDBInstanceFromDBSnapshot"],
                resources=[f"{rds_arn}:snapshot:{c.NAME_PREFIX}*"],
                conditions={"StringEquals": {f"rds:snapshot-tag/{c.MANAGED_BY_KEY}": c.MANAGED_BY_VALUE}},
            ),
            iam.PolicyStatement(
                sid="RestoreIntoDrillDatabase",
                actions=["rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource"],
                resources=[f"{rds_arn}:db:{c.NAME_PREFIX}drill-*"],
                conditions=drill_request,
            ),
            iam.PolicyStatement(
                sid="RestoreIntoDrillNetwork",
                actions=["rds:RestoreDBInstanceFromDBSnapshot"],
                resources=[
                    f"{rds_arn}:subgrp:{self.db_subnets.subnet_group_name}",
                    f"{rds_arn}:og:*",
                    f"{rds_arn}:pg:*",
                ],
            ),
            iam.PolicyStatement(
                sid="RestoredDbMasterSecret",  # ManageMasterUserPassword: RDS creates it as the caller
                actions=["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
                resources=[f"arn:{partition}:secretsmanager:{region}:{account}:secret:rds!*"],
            ),
            iam.PolicyStatement(
                sid="DeleteDrillDatabase",
                actions=["rds:DeleteDBInstance"],
                resources=[f"{rds_arn}:db:{c.NAME_PREFIX}drill-*"],
                conditions={"StringEquals": {f"rds:db-tag/{c.JOB_KEY}": c.JOB_DRILL}},
            ),
            iam.PolicyStatement(
                sid="SendCheckDocument", actions=["ssm:SendCommand"], resources=[document_arn]
            ),
            iam.PolicyStatement(
                sid="SendToDrillServers",
                actions=["ssm:SendCommand"],
                resources=[f"{ec2_arn}:instance/*"],
                conditions={"StringEquals": {f"ssm:resourceTag/{c.JOB_KEY}": c.JOB_DRILL}},
            ),
            *read_statements(self.bucket, self.key, [f"{c.DUMP_PREFIX}/", records], sid="BackupsAndRecords"),
            *write_once_statements(self.bucket, self.key, records, sid="DrillRecord"),
            iam.PolicyStatement(sid="Mail", actions=["sns:Publish"], resources=[self.topic.topic_arn]),
        ]

    def _wildcards(self) -> dict[str, str]:
        stack = Stack.of(self)
        bucket_id = stack.resolve(stack.get_logical_id(self.bucket.node.default_child))  # type: ignore[arg-type]
        ec2_arn = "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>"
        rds_arn = "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>"
        sm_arn = "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>"
        launched = (
            "RunInstances creates the instance, its volumes and network interface under ids AWS assigns; "
            "the request must carry BackupJob=drill (aws:RequestTag)."
        )
        removed = "Only resources tagged BackupJob=drill and ManagedBy=schoolbackup (aws:ResourceTag)."
        return {
            "*": "EC2/RDS Describe* and ssm:GetCommandInvocation support no resource-level permissions; read only.",
            "arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": (
                "The drill launches only from AMIs tagged ManagedBy=schoolbackup (aws:ResourceTag condition)."
            ),
            f"{ec2_arn}:instance/*": launched
            + " "
            + removed
            + " SendCommand only to BackupJob=drill servers.",
            f"{ec2_arn}:volume/*": launched + " " + removed,
            f"{ec2_arn}:network-interface/*": launched,
            f"{ec2_arn}:vpc-endpoint/*": (
                "The drill's interface endpoints get ids at creation; creation needs BackupJob=drill in the "
                "request, deletion the tag on the endpoint."
            ),
            f"{rds_arn}:snapshot:sb-*": "Restores only from schoolbackup's snapshots (sb-*, tagged ManagedBy).",
            f"{rds_arn}:db:sb-drill-*": "Only the drill's temporary databases (sb-drill-*, tagged BackupJob=drill).",
            f"{rds_arn}:og:*": "A restore uses the snapshot's option group; its name is the snapshot's.",
            f"{rds_arn}:pg:*": "A restore uses the engine's default parameter group; its name varies by version.",
            f"{sm_arn}:secret:rds!*": (
                "RDS creates the restored instance's master secret (ManageMasterUserPassword) as the caller; "
                "its name is rds!db-<uuid>."
            ),
            f"<{bucket_id}.Arn>/{c.DUMP_PREFIX}/*": "Reads manifests of the dumps it restores; nothing else.",
            f"<{bucket_id}.Arn>/{c.DRILL_PREFIX}/*": "Writes one record per drill under reports/drills/, once.",
        }

    # --- the state machine ----------------------------------------------------------------------

    def _task(self, step: str, name: str) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.function,
            payload=sfn.TaskInput.from_object({"step": step, "drill": sfn.JsonPath.entire_payload}),
            payload_response_only=True,
            task_timeout=sfn.Timeout.duration(TASK_TIMEOUT),
            retry_on_service_exceptions=True,
        )

    @staticmethod
    def _is(flag: str) -> sfn.Condition:
        """``$.<flag>`` is true; a missing flag is false (a Choice on a missing path is a runtime error)."""
        return sfn.Condition.and_(
            sfn.Condition.is_present(f"$.{flag}"), sfn.Condition.boolean_equals(f"$.{flag}", True)
        )

    def _state_machine(self) -> sfn.StateMachine:
        drill = self.config.restore_drill
        # The teardown loop: delete what is left, wait, until nothing is (or it gives up).
        teardown = self._task("teardown", "Teardown")
        report = self._task("report", "Report")
        passed = sfn.Choice(self, "Passed?")
        passed.when(
            sfn.Condition.and_(
                sfn.Condition.is_present("$.result"), sfn.Condition.string_equals("$.result", "passed")
            ),
            sfn.Succeed(self, "Passed"),
        )
        passed.otherwise(
            sfn.Fail(self, "Failed", error="DrillFailed", cause="the restore drill failed; see its report")
        )
        report.next(passed)
        gone = sfn.Choice(self, "Torn down?")
        wait_teardown = sfn.Wait(self, "WaitTeardown", time=sfn.WaitTime.duration(WAIT_TEARDOWN))
        teardown.next(gone)
        gone.when(self._is("gone"), report).otherwise(wait_teardown)
        wait_teardown.next(teardown)
        # A teardown step that errors: report anyway (leftovers are listed; the cleanup finds them).
        teardown.add_catch(report, result_path="$.teardown_error")
        report.add_catch(
            sfn.Fail(
                self, "ReportFailed", error="ReportFailed", cause="the drill report could not be written"
            )
        )

        def failed_then(step: sfn.INextable, after: sfn.IChainable) -> sfn.Choice:
            choice = sfn.Choice(self, f"{step.node.id} failed?")  # type: ignore[attr-defined]
            choice.when(self._is("failed"), teardown).otherwise(after)
            return choice

        plan = self._task("plan", "Plan")
        launch = self._task("launch", "Launch")
        wait_ready = sfn.Wait(self, "WaitReady", time=sfn.WaitTime.duration(WAIT_READY))
        poll = self._task("poll", "Poll")
        check_start = self._task("check_start", "StartChecks")
        wait_sent = sfn.Wait(self, "WaitAgent", time=sfn.WaitTime.duration(WAIT_CHECKS))
        wait_checks = sfn.Wait(self, "WaitChecks", time=sfn.WaitTime.duration(WAIT_CHECKS))
        check_poll = self._task("check_poll", "PollChecks")
        for task in (plan, launch, poll, check_start, check_poll):
            task.add_catch(teardown, result_path="$.error")

        ready = sfn.Choice(self, "Ready?")
        ready.when(self._is("ready"), check_start).otherwise(wait_ready)
        sent = sfn.Choice(self, "Sent?")
        sent.when(self._is("sent"), wait_checks).otherwise(wait_sent)
        done = sfn.Choice(self, "Checked?")
        done.when(self._is("checks_done"), teardown).otherwise(wait_checks)

        plan.next(failed_then(plan, launch))
        launch.next(failed_then(launch, wait_ready))
        wait_ready.next(poll)
        poll.next(failed_then(poll, ready))
        check_start.next(failed_then(check_start, sent))
        wait_sent.next(check_start)
        wait_checks.next(check_poll)
        check_poll.next(failed_then(check_poll, done))

        log_group = logs.LogGroup(self, "ExecutionLogs", removal_policy=RemovalPolicy.DESTROY)
        cfn_log = log_group.node.default_child
        assert isinstance(cfn_log, logs.CfnLogGroup)
        cfn_log.retention_in_days = self.config.log_retention_days
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=c.job_resource_name(Stack.of(self).stack_name, "restore-drill"),
            definition_body=sfn.DefinitionBody.from_chainable(plan),
            # The whole drill, teardown included, ends by then (an execution that is stopped or times
            # out is cleaned up by the daily cleanup).
            timeout=Duration.minutes(drill.max_runtime_minutes + 60),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        stack = Stack.of(self)
        fn_id = stack.resolve(stack.get_logical_id(self.function.node.default_child))  # type: ignore[arg-type]
        acknowledge(
            machine.role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{fn_id}.Arn>:*]",
            "CDK's grant to invoke the drill function includes its versions and aliases (:*); only this function.",
        )
        acknowledge(
            machine.role,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "Execution logs (CloudWatch Logs delivery) and X-Ray traces support no resource-level permissions.",
        )
        return machine

    # --- alarms ---------------------------------------------------------------------------------

    def _alarms(self) -> list[cw.Alarm]:
        alarms = HealthAlarms(
            self, prefix=c.alarm_prefix(Stack.of(self).stack_name), topic=self.topic, config=self.config
        )
        period = Duration.hours(1)

        def ours(name: str) -> cw.Metric:
            return cw.Metric(namespace=c.NAMESPACE, metric_name=name, statistic="Maximum", period=period)

        machine = self.state_machine
        failed = cw.MathExpression(
            # A report that says failed, or an execution that failed, timed out or was stopped by hand.
            expression="IF(FILL(passed, 1) < 1, 1, 0) + FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)",
            using_metrics={
                "passed": cw.Metric(
                    namespace=c.NAMESPACE, metric_name=c.DRILL_PASSED, statistic="Minimum", period=period
                ),
                "failed": machine.metric_failed(period=period, statistic="Sum"),
                "timedout": machine.metric_timed_out(period=period, statistic="Sum"),
                "aborted": machine.metric_aborted(period=period, statistic="Sum"),
            },
            period=period,
            label="failed drills",
        )
        for base, metric in (
            ("DrillFailed", failed),
            ("DrillRtoExceeded", ours(c.DRILL_RTO_EXCEEDED)),
            ("DrillLeftovers", ours(c.DRILL_LEFTOVERS)),
        ):
            alarms.alarm(
                base,
                metric,
                threshold=0,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                missing=cw.TreatMissingData.NOT_BREACHING,
                description=alarms.describe(base),
            )
        return alarms.alarms
