"""The function factory: every Lambda of schoolbackup is built here, the same way.

Newest Python runtime that both Lambda and the Powertools layer support, arm64, JSON logs into a
log group with retention, Powertools from the public AWS layer of exactly the version pinned in
requirements.txt (the one the tests run with), its own IAM role that can write only to its own log
group. :meth:`FunctionFactory.job` adds what a scheduled job needs on top: the statements of its
role, one cdk-nag acknowledgement per wildcard resource (each with its reason) and its schedule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import Config
from infra.nag import acknowledge
from lambdas.common.contracts import job_resource_name
from lambdas.common.settings import FunctionSettings

if TYPE_CHECKING:
    from infra.schedules import JobSchedules

RUNTIME: Final = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE: Final = lambda_.Architecture.ARM_64
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
REQUIREMENTS: Final = REPO_ROOT / "requirements.txt"
# One asset for all functions: the `lambdas` package (handlers + common), nothing else. Handlers are
# imported as `lambdas.<function>.handler`, the same path tests and the CLI use.
_ASSET_EXCLUDES: Final = [
    "*",
    "!lambdas",
    "!lambdas/**",
    "**/__pycache__",
    "**/*.pyc",
    "lambdas/dump",
    "lambdas/dump/**",
]


def powertools_version(requirements: Path = REQUIREMENTS) -> str:
    """The ``aws-lambda-powertools==X.Y.Z`` pin of requirements.txt (extras allowed)."""
    text = requirements.read_text(encoding="utf-8")
    found = re.findall(r"^aws-lambda-powertools(?:\[[^\]]*\])?==([0-9][0-9A-Za-z.]*)\s*(?:#.*)?$", text, re.M)
    if len(found) != 1:
        raise ValueError(f"{requirements.name} must pin aws-lambda-powertools exactly once (==X.Y.Z)")
    return str(found[0])


def powertools_layer_parameter(version: str) -> str:
    """AWS's public SSM parameter that holds the layer ARN of that exact Powertools version for this
    runtime and architecture (resolved by CloudFormation at deploy time, in the stack's region)."""
    runtime = RUNTIME.name  # python3.14
    arch = ARCHITECTURE.name  # arm64 or x86_64, as the parameter path names them
    return f"/aws/service/powertools/python/{arch}/{runtime}/{version}"


class FunctionFactory(Construct):
    """Creates functions that share one code asset, one layer reference and one set of defaults."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.code = lambda_.Code.from_asset(str(REPO_ROOT), exclude=_ASSET_EXCLUDES)
        self.powertools_parameter = powertools_layer_parameter(powertools_version())
        layer_arn = ssm.StringParameter.value_for_string_parameter(self, self.powertools_parameter)
        self.layer = lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", layer_arn)
        self.functions: list[lambda_.Function] = []

    def function(
        self,
        name: str,
        *,
        description: str,
        environment: dict[str, str] | None = None,
        timeout: Duration | None = None,
        memory_mb: int = 256,
    ) -> lambda_.Function:
        """A function whose handler is ``lambdas/<name>/handler.py``; ``name`` is snake_case."""
        scope = Construct(self, name)
        log_group = logs.LogGroup(
            scope,
            "Logs",
            removal_policy=RemovalPolicy.DESTROY,
        )
        cfn_log_group = log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = self.config.log_retention_days
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"schoolbackup {name}: only what this function needs",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:log-stream:*"],
            )
        )
        stack = Stack.of(self)
        log_group_id = stack.resolve(stack.get_logical_id(cfn_log_group))
        acknowledge(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{log_group_id}.Arn>:log-stream:*]",
            "Lambda names its log streams at run time; the wildcard is limited to this function's own log group.",
        )
        env = {**FunctionSettings(name=name, tracing=self.config.tracing).to_env(), **(environment or {})}
        fn = lambda_.Function(
            scope,
            "Function",
            function_name=job_resource_name(Stack.of(self).stack_name, name),
            description=f"schoolbackup: {description}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"lambdas.{name}.handler.handler",
            code=self.code,
            layers=[self.layer],
            role=role,
            timeout=timeout or Duration.minutes(5),
            memory_size=memory_mb,
            environment=env,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE if self.config.tracing else lambda_.Tracing.DISABLED,
        )
        if self.config.tracing:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
                )
            )
            acknowledge(
                role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level permissions (only with "
                "tracing switched on in the configuration).",
            )
        self.functions.append(fn)
        return fn

    def job(
        self,
        name: str,
        *,
        description: str,
        environment: Mapping[str, str],
        statements: Sequence[iam.PolicyStatement],
        wildcards: Mapping[str, str],
        schedules: JobSchedules,
        timeout: Duration | None = None,
        memory_mb: int = 256,
    ) -> lambda_.Function:
        """A scheduled function: its role gets ``statements``; ``wildcards`` maps each wildcard resource
        of them (as cdk-nag prints it) to the reason it is needed."""
        fn = self.function(
            name, description=description, environment=dict(environment), timeout=timeout, memory_mb=memory_mb
        )
        for statement in statements:
            fn.add_to_role_policy(statement)
        acknowledge_wildcards(fn, wildcards)
        schedules.lambda_job(name, fn)
        return fn


def acknowledge_wildcards(function: lambda_.Function, reasons: Mapping[str, str]) -> None:
    """One acknowledgement per wildcard resource of the function's role, each with its reason."""
    target = function.role or function
    for resource, reason in reasons.items():
        acknowledge(target, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)
