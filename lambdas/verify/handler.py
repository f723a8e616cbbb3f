"""verify (daily): a fresh, intact backup of every kind for every selected source, as metrics.

Publishes per Source+Kind the age of the newest good backup and VerificationPassed (1/0), per Kind
the worst age over all sources (what the age alarms watch; a source without any good backup counts
as NO_GOOD_BACKUP_AGE_HOURS so it cannot hide), and VerificationFailures. Raises after publishing
when any check failed, with one sentence per problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lambdas.common import metric_names
from lambdas.common.aws import ec2_client, rds_client, s3_client
from lambdas.common.naming import scheduled_time
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.retention import RetentionPolicy
from lambdas.common.settings import SelectionTag, env_bool, env_int, env_list, env_str, retention_from_env
from lambdas.verify.checks import Check, check_amis, check_dumps, check_rds, selected_ec2, selected_rds

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client

# What the worst-age metric shows for a kind when some source has no good backup at all (~14 months):
# far above any target, so the age alarm fires.
NO_GOOD_BACKUP_AGE_HOURS: Final = 10_000.0

# Targets when the stack does not set them (the same defaults as infra/config.py "targets"): a daily job
# may run a couple of hours late once, a weekly one a day. They are thresholds, not resource names.
DEFAULT_DUMP_MAX_AGE_HOURS: Final = 26
DEFAULT_RDS_MAX_AGE_HOURS: Final = 26
DEFAULT_AMI_MAX_AGE_HOURS: Final = 192


class VerificationFailed(RuntimeError):
    """At least one backup check failed; raised after every source was checked and metrics were published."""


@dataclass(frozen=True)
class VerifySettings:
    bucket: str
    selection: SelectionTag
    ec2_instance_ids: tuple[str, ...]
    rds_instance_ids: tuple[str, ...]
    dump_enabled: bool
    dump_max_age_hours: int
    rds_max_age_hours: int
    ami_max_age_hours: int
    retention: RetentionPolicy

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VerifySettings:
        return cls(
            bucket=env_str("BACKUP_BUCKET", environ),
            selection=SelectionTag.from_env(environ),
            ec2_instance_ids=env_list("EC2_INSTANCE_IDS", environ),
            rds_instance_ids=env_list("RDS_INSTANCE_IDS", environ),
            dump_enabled=env_bool("DUMP_ENABLED", True, environ),
            dump_max_age_hours=env_int("DUMP_MAX_AGE_HOURS", 1, environ, default=DEFAULT_DUMP_MAX_AGE_HOURS),
            rds_max_age_hours=env_int("RDS_MAX_AGE_HOURS", 1, environ, default=DEFAULT_RDS_MAX_AGE_HOURS),
            ami_max_age_hours=env_int("AMI_MAX_AGE_HOURS", 1, environ, default=DEFAULT_AMI_MAX_AGE_HOURS),
            retention=retention_from_env(environ),
        )


@dataclass
class VerifyResult:
    now: datetime
    checks: list[Check]
    problems: list[str]

    @property
    def failures(self) -> int:
        return sum(1 for c in self.checks if not c.ok) + (0 if self.checks else 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": f"{self.now:%Y-%m-%dT%H:%M:%SZ}",
            "passed": not self.problems,
            "failures": self.failures,
            "problems": list(self.problems),
            "checks": [c.as_dict() for c in self.checks],
        }


def run_checks(
    ec2: EC2Client, rds: RDSClient, s3: S3Client, settings: VerifySettings, now: datetime
) -> VerifyResult:
    servers = selected_ec2(ec2, settings.selection, settings.ec2_instance_ids)
    databases = selected_rds(rds, settings.selection, settings.rds_instance_ids)
    checks: list[Check] = []
    if settings.dump_enabled:
        checks += check_dumps(s3, settings.bucket, servers, settings.dump_max_age_hours, now)
    checks += check_rds(rds, databases, settings.rds_max_age_hours, now)
    checks += check_amis(ec2, servers, settings.ami_max_age_hours, now)
    for check in checks:
        check.check_pruned(settings.retention)
    problems = [p for c in checks for p in c.problems]
    if not checks:
        problems.append(
            f"No EC2 or RDS instance is selected for backup (tag {settings.selection} or listed ids), "
            "so nothing is backed up."
        )
    return VerifyResult(now=now, checks=checks, problems=problems)


def _metric(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> None:
    with single_metric(name=name, unit=unit, value=value, namespace=metric_names.NAMESPACE) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


def publish(result: VerifyResult) -> None:
    worst: dict[str, float] = {}
    for check in result.checks:
        dims = {metric_names.SOURCE: check.source, metric_names.KIND: check.kind}
        age = check.age_hours
        if age is not None:
            _metric(metric_names.BACKUP_AGE_HOURS, MetricUnit.NoUnit, round(age, 2), dims)
        _metric(metric_names.VERIFY_PASSED, MetricUnit.Count, 1.0 if check.ok else 0.0, dims)
        effective = NO_GOOD_BACKUP_AGE_HOURS if age is None else age
        worst[check.kind] = max(worst.get(check.kind, 0.0), effective)
    for kind, age in sorted(worst.items()):
        _metric(
            metric_names.WORST_BACKUP_AGE_HOURS, MetricUnit.NoUnit, round(age, 2), {metric_names.KIND: kind}
        )
    metrics.add_metric(name=metric_names.VERIFY_FAILURES, unit=MetricUnit.Count, value=result.failures)


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = VerifySettings.from_env()
    now = scheduled_time(event)  # ages are measured from the scheduled time, else from now (DESIGN.md)
    result = run_checks(ec2_client(), rds_client(), s3_client(), settings, now)
    publish(result)
    for check in result.checks:
        log = logger.info if check.ok else logger.error
        log("backup check", extra={"check": check.as_dict()})
    if result.problems:
        raise VerificationFailed(f"{len(result.problems)} backup problem(s): " + " ".join(result.problems))
    return result.as_dict()
