"""Prune Lambda: apply the retention policy to our AMIs (+ their EBS snapshots) and RDS manual snapshots.

Event: ``{"scheduled_time": "2026-11-27T04:00:00Z", "dry_run": true}``, both optional. ``dry_run`` (or
the DRY_RUN variable) returns the plan and deletes nothing. Raises after doing everything else when a
deletion failed (other than a snapshot still in use), so that the Lambda error alarm fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lambdas.common import metric_names
from lambdas.common.aws import ec2_client, rds_client
from lambdas.common.naming import EventError, scheduled_time
from lambdas.common.observability import (
    NAMESPACE,
    accepts_missing_context,
    logger,
    metrics,
    remaining_time_ms,
    traced,
)
from lambdas.common.rds_quota import read_snapshot_quota
from lambdas.prune.prune import KINDS, Outcome, PruneError, Settings, prune

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def event_dry_run(event: Mapping[str, Any] | None) -> bool:
    raw = (event or {}).get("dry_run", False)
    if not isinstance(raw, bool):
        raise EventError(f"event field dry_run must be true or false, got {raw!r}")
    return raw


def publish_metrics(outcome: Outcome) -> None:
    """Per kind (dimension Kind): deleted, kept, failures, remaining; the RDS quota without dimension."""
    kept, failures = outcome.kept(), outcome.failures_by_kind()
    for kind in KINDS:
        for name, value in (
            (metric_names.PRUNE_DELETED, outcome.deleted[kind]),
            (metric_names.PRUNE_KEPT, kept[kind]),
            (metric_names.PRUNE_FAILURES, failures[kind]),
            (metric_names.PRUNE_REMAINING, outcome.remaining[kind]),
        ):
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=value,
                namespace=NAMESPACE,
                default_dimensions={metric_names.KIND: kind},
            ):
                pass
    quota = outcome.rds_quota
    if quota is not None:
        metrics.add_metric(metric_names.RDS_SNAPSHOTS_USED, MetricUnit.Count, quota.used)
        metrics.add_metric(metric_names.RDS_SNAPSHOTS_QUOTA, MetricUnit.Count, quota.limit)
        metrics.add_metric(metric_names.RDS_SNAPSHOTS_PERCENT, MetricUnit.Percent, round(quota.percent, 1))


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_env()
    now = scheduled_time(event)
    dry_run = settings.dry_run or event_dry_run(event)
    rds = rds_client()
    outcome = prune(
        ec2_client(),
        rds,
        settings.policy,
        now,
        dry_run=dry_run,
        remaining_ms=remaining_time_ms(context),
    )
    outcome.rds_quota = read_snapshot_quota(rds)
    publish_metrics(outcome)
    result = outcome.as_dict()
    logger.info("prune: done", extra={k: v for k, v in result.items() if k != "plan"})
    if outcome.failures:
        raise PruneError(
            f"{len(outcome.failures)} deletion(s) failed: "
            + "; ".join(f"{f['id']} ({f['error']})" for f in outcome.failures)
        )
    return result
