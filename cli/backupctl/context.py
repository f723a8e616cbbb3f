"""What every command shares: the AWS session (profile, region, endpoint), the stack's names, the configuration.

Names come from the contracts the stack uses (``lambdas.common.contracts``): the bucket is
``schoolbackup-<account>-<region>``, a job's function and schedule ``<stack>-<job>``, the alarms
``<stack>-...``. The configuration is the same cdk.json that ``cdk synth`` reads, with the same validation.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import boto3
import typer
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from cli.backupctl.errors import PROBLEM, USAGE, CliError
from cli.backupctl.output import Output
from infra.config import CONTEXT_KEY, Config, ConfigError, load_config
from lambdas.common.aws.clients import RegionClients
from lambdas.common.aws.errors import error_code, error_text
from lambdas.common.contracts import (
    alarm_prefix,
    bucket_name,
    job_resource_name,
    offsite_bucket_name,
    offsite_stack_name,
)
from lambdas.common.messages import say

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient

REPO_ROOT = Path(__file__).resolve().parents[2]
RETRIES = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=120)
# For calls that must not be sent twice (a retry after a lost answer would start a second dump or collide
# with the restore it already started): one attempt, and TCP keepalive so a long wait is not cut by a NAT.
ONCE = BotoConfig(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120, tcp_keepalive=True)

# An STS role session name: 2 to 64 of these characters.
_SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]")
SESSION_NAME_MAX = 64

READ_ROLE = "read"  # backupctl only reads in a target account (one of contracts.OFFSITE_ROLE_USES)

P = ParamSpec("P")
R = TypeVar("R")


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of writing (a test runner swaps it per command)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def domain_logs_to_stderr(verbose: bool) -> None:
    """The jobs log JSON lines for CloudWatch; here they go to stderr, and only with ``--verbose``."""
    from lambdas.common.observability import logger  # noqa: PLC0415 - Powertools only when a command runs

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(_CurrentStderr())
    logger.setLevel(logging.INFO if verbose else logging.CRITICAL)


def read_config(path: Path | None = None) -> Config:
    """The configuration block of cdk.json (``path``, else ./cdk.json, else the repository's), validated.

    Its sentences stay English: the language is part of the configuration that could not be read.
    """
    candidates = [path] if path else [Path("cdk.json"), REPO_ROOT / "cdk.json"]
    found = next((p for p in candidates if p is not None and p.is_file()), None)
    if found is None:
        raise CliError(
            f"No configuration file: {candidates[0]} does not exist (pass --config cdk.json)", USAGE
        )
    try:
        context = json.loads(found.read_text(encoding="utf-8")).get("context", {})
    except ValueError as err:
        raise CliError(f"{found} is not valid JSON ({err})", USAGE) from None
    try:
        return load_config(context.get(CONTEXT_KEY))
    except ConfigError as err:
        raise CliError(f"{found}: " + "; ".join(err.problems), USAGE) from None


@dataclass
class Aws:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    stack: str = "SchoolBackup"
    offsite: bool = False  # the region is the offsite region: the bucket is the copy bucket there
    # The language of its sentences: the Cli points it at the configuration's (English on its own).
    speaks: Callable[[], str] = field(default=lambda: "en", repr=False)
    _session: boto3.Session | None = field(default=None, repr=False)
    _identity: dict[str, str] | None = field(default=None, repr=False)

    def session(self) -> boto3.Session:
        if self._session is None:
            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound:
                raise CliError(
                    say("cli.common.no_profile", self.speaks(), profile=self.profile), USAGE
                ) from None
        return self._session

    @property
    def region_name(self) -> str:
        region = self.session().region_name
        if not region:
            raise CliError(say("cli.common.no_region", self.speaks()), USAGE)
        return region

    def client(self, service: str, config: BotoConfig = RETRIES) -> Any:
        return self.session().client(
            service,  # type: ignore[call-overload]
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            config=config,
        )

    def once(self, service: str) -> Any:
        """A client that sends each request once (see ONCE)."""
        return self.client(service, ONCE)

    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    def rds(self) -> RDSClient:
        return self.client("rds")  # type: ignore[no-any-return]

    def s3(self) -> S3Client:
        return self.client("s3")  # type: ignore[no-any-return]

    def cloudwatch(self) -> CloudWatchClient:
        return self.client("cloudwatch")  # type: ignore[no-any-return]

    def sns(self) -> SNSClient:
        return self.client("sns")  # type: ignore[no-any-return]

    def lambda_(self) -> LambdaClient:
        return self.client("lambda")  # type: ignore[no-any-return]

    def ssm(self) -> SSMClient:
        return self.client("ssm")  # type: ignore[no-any-return]

    @property
    def identity(self) -> dict[str, str]:
        """Who these credentials are (STS GetCallerIdentity): ``Account`` and ``Arn``."""
        if self._identity is None:
            answer = self.client("sts").get_caller_identity()
            self._identity = {"Account": answer["Account"], "Arn": answer["Arn"]}
        return self._identity

    @property
    def account(self) -> str:
        return self.identity["Account"]

    @property
    def partition(self) -> str:
        """The partition of these credentials (``aws``, ``aws-cn``, ...), from their ARN."""
        return self.identity["Arn"].split(":")[1]

    @property
    def bucket(self) -> str:
        name = offsite_bucket_name if self.offsite else bucket_name
        return name(self.account, self.region_name)

    def function_name(self, job: str) -> str:
        return job_resource_name(self.stack, job)

    @property
    def alarm_prefix(self) -> str:
        return alarm_prefix(self.stack)

    def in_offsite_region(self, region: str) -> Aws:
        """The same profile, endpoint, stack and language in the offsite region ``region`` (a new session;
        its bucket is the copy bucket there); this one stays as it is."""
        return replace(self, region=region, offsite=True, _session=None, _identity=None)

    def as_role(self, role_arn: str, session_name: str) -> Aws:
        """The same region, endpoint, stack and language as the role ``role_arn`` (STS AssumeRole with this
        session's credentials, here and now: a role that cannot be assumed raises the ClientError of STS
        at once); this one stays as it is. The credentials last an hour, longer than a command reads."""
        sts = self.client("sts")
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=3600)[
            "Credentials"
        ]
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.region_name,
        )
        return replace(self, profile=None, _session=session, _identity=None)

    def session_name(self, command: str) -> str:
        """What the target account's CloudTrail shows for a role session of ``command``: backupctl, the
        command and who runs it (the last part of the caller's ARN: a user, or the session of an SSO role)."""
        who = _SESSION_NAME_CHARS.sub("-", self.identity["Arn"].rsplit("/", 1)[-1].rsplit(":", 1)[-1])
        return f"backupctl-{command}-{who}"[:SESSION_NAME_MAX]

    def region_clients(self) -> RegionClients:
        """This region's EC2, RDS and S3 clients, as the jobs take them for the offsite region."""
        return RegionClients(self.region_name, self.ec2(), self.rds(), self.s3())


@dataclass
class Cli:
    """``ctx.obj`` of every command."""

    aws: Aws
    config_path: Path | None = None
    _config: Config | None = None

    def __post_init__(self) -> None:
        self.aws.speaks = lambda: self.language

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = read_config(self.config_path)
        return self._config

    @property
    def language(self) -> str:
        """The configuration's ``language`` (English while the configuration itself cannot be read)."""
        try:
            return self.config.language
        except CliError:
            return "en"

    def from_region(self, region: str | None) -> None:
        """With ``region`` (``--from-region``): from here on, AWS is the offsite region of the configuration
        and the bucket its copy bucket, so a restore finds the offsite copies and creates what it restores
        there. Any other region is bad usage, named with the setting that decides it. With copies in a target
        account (``offsite.account``) the restore is made in that account: credentials of any other account
        are refused (bad usage) before anything is read or created, naming both accounts and how to switch."""
        if region is None:
            return
        offsite = self.config.offsite
        if not offsite.enabled:
            raise CliError(self.say("cli.common.offsite_off", region=region), USAGE)
        if region != offsite.region:
            raise CliError(self.say("cli.common.offsite_other", region=region, offsite=offsite.region), USAGE)
        # a new session for the other region; the profile, endpoint, stack and language stay
        there = self.aws.in_offsite_region(region)
        # the copy bucket is offsite_bucket_name(<these credentials' account>, region): in a target account
        # that is the target account's own copy bucket, as the copies and the restore are there
        if offsite.cross_account and there.account != offsite.account:
            raise CliError(
                self.say(
                    "cli.offsite.restore_other_account",
                    region=region,
                    target=offsite.account,
                    account=there.account,
                ),
                USAGE,
            )
        self.aws = there

    def offsite_clients(self, command: str) -> RegionClients | None:
        """The offsite region's clients (``offsite.region`` of the configuration), None when offsite copies
        are off; ``self.aws`` stays the home region. With a target account (``offsite.account``) they are
        that account's, as its ``-read`` role (assumed by ``command``: the session name says who and what),
        unless these credentials already are of the target account. A role that cannot be assumed is an
        :class:`OffsiteUnreadable` naming the role, the account and what is missing."""
        offsite = self.config.offsite
        if not offsite.enabled:
            return None
        there = self.aws.in_offsite_region(offsite.region)
        role = offsite.role_arn(READ_ROLE, there.partition)
        if role is None or there.account == offsite.account:
            return there.region_clients()
        try:
            return there.as_role(role, there.session_name(command)).region_clients()
        except ClientError as err:
            if error_code(err) != "AccessDenied":
                raise
            raise OffsiteUnreadable(
                self.say(
                    "cli.offsite.role_denied",
                    account=offsite.account,
                    region=offsite.region,
                    caller=there.identity["Arn"],
                    role=role,
                    reason=error_text(err),
                    stack=offsite_stack_name(self.aws.stack),
                    home=offsite.home_account,
                    caller_account=there.account,
                ),
                PROBLEM,
            ) from None

    def say(self, key: str, **values: object) -> str:
        """The catalogue's sentence ``key`` (lambdas.common.messages) in the configured language."""
        return say(key, self.language, **values)


class OffsiteUnreadable(CliError):
    """The offsite copies in the target account cannot be read: its ``-read`` role was not assumed."""


def _language(values: tuple[object, ...]) -> str:
    """The configured language of the command's ``Cli`` (its ``ctx.obj``), English without one."""
    for value in values:
        cli = getattr(value, "obj", None)
        if isinstance(cli, Cli):
            return cli.language
    return "en"


def speaks_aws(command: Callable[P, R]) -> Callable[P, R]:
    """Turn what AWS (or the lack of it) says into one sentence and exit status 1 (2 for bad usage)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        def fail(key: str, **values: object) -> None:
            Output().error(say(key, _language((*args, *kwargs.values())), **values))

        try:
            return command(*args, **kwargs)
        except CliError as err:
            Output().error(str(err))
            raise typer.Exit(err.exit_code) from None
        except NoCredentialsError:
            fail("cli.common.no_credentials")
            raise typer.Exit(PROBLEM) from None
        except NoRegionError:
            fail("cli.common.no_region")
            raise typer.Exit(USAGE) from None
        except EndpointConnectionError as err:
            fail("cli.common.unreachable", error=err)
            raise typer.Exit(PROBLEM) from None
        except ClientError as err:
            code = error_code(err)
            if code in (
                "ExpiredToken",
                "ExpiredTokenException",
                "InvalidClientTokenId",
                "UnrecognizedClientException",
            ):
                fail("cli.common.credentials_rejected", code=code)
            else:
                fail("cli.common.aws_refused", operation=err.operation_name, reason=error_text(err))
            raise typer.Exit(PROBLEM) from None
        except BotoCoreError as err:
            fail("cli.common.aws_failed", error=err)
            raise typer.Exit(PROBLEM) from None

    return wrapper
