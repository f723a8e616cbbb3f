"""prune: apply the retention policy to our AMIs (+ their EBS snapshots) and RDS manual snapshots.

Event: ``{"scheduled_time": "2026-11-27T04:00:00Z", "dry_run": true}``, both optional. ``dry_run`` (or
DRY_RUN) returns the plan and deletes nothing. With offsite copies of rds/ami the offsite region is
pruned afterwards by the offsite policy (``offsite`` in the answer, metrics with dimension Region).
Raises after doing everything else when a deletion failed (other than a snapshot still in use).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lambdas.common.aws.clients import ec2_client, rds_client
from lambdas.common.contracts import event_dry_run, scheduled_time
from lambdas.common.jobs.prune import offsite_clients, prune_everywhere
from lambdas.common.observability import accepts_missing_context, logger, metrics, remaining_time_ms, traced
from lambdas.common.publishing import publish_prune_run
from lambdas.common.settings import PruneSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = PruneSettings.from_env()
    settings = replace(settings, dry_run=settings.dry_run or event_dry_run(event))
    offsite, remaining = offsite_clients(settings), remaining_time_ms(context)
    run = prune_everywhere(
        ec2_client(), rds_client(), settings, scheduled_time(event), offsite=offsite, remaining_ms=remaining
    )
    publish_prune_run(run)
    run.raise_if_failed()
    return run.as_dict()
