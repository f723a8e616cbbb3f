"""rds_snapshot: a manual snapshot of every selected RDS instance, once per scheduled time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.aws.clients import rds_client
from lambdas.common.contracts import scheduled_time
from lambdas.common.jobs.rds_snapshot import create_snapshots
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.publishing import publish_backup_result
from lambdas.common.settings import RdsSnapshotSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = create_snapshots(rds_client(), RdsSnapshotSettings.from_env(), scheduled_time(event))
    publish_backup_result(result)
    result.raise_if_failed()
    return result.as_dict()
