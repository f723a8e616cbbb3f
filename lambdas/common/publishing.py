"""Metrics (CloudWatch EMF through Powertools) of every job, published by the handlers only.

The jobs return results; publishing them is the handler's last step before raising on failure, so
that a job called from backupctl or the rehearsal prints no EMF. Names and dimensions come from
lambdas.common.contracts, which the alarms and the dashboard read too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lambdas.common import contracts as c
from lambdas.common.observability import metrics

if TYPE_CHECKING:
    from lambdas.common.aws.quota import SnapshotQuota
    from lambdas.common.jobs.backup_result import BackupResult
    from lambdas.common.jobs.iam_review import IamReviewResult
    from lambdas.common.jobs.offsite_copy import CopyResult
    from lambdas.common.jobs.prune import PruneResult, PruneRun
    from lambdas.common.jobs.restore_test import RestoreTestResult
    from lambdas.common.jobs.verify import VerifyResult


def _metric(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str] | None = None) -> None:
    """One metric with exactly these dimensions (and no others), in its own EMF document."""
    with single_metric(name=name, unit=unit, value=value, namespace=c.NAMESPACE) as metric:
        for key, dim in (dimensions or {}).items():
            metric.add_dimension(name=key, value=dim)


def publish_quota(quota: SnapshotQuota | None, dimensions: dict[str, str] | None = None) -> None:
    """Used, quota and percent as metrics of their own (no dimension at home, Region for the offsite
    region's quota); nothing when it is unknown."""
    if quota is None:
        return
    _metric(c.RDS_SNAPSHOTS_USED, MetricUnit.Count, float(quota.used), dimensions)
    _metric(c.RDS_SNAPSHOTS_QUOTA, MetricUnit.Count, float(quota.limit), dimensions)
    _metric(c.RDS_SNAPSHOTS_PERCENT, MetricUnit.Percent, round(quota.percent, 1), dimensions)


def publish_backup_result(result: BackupResult) -> None:
    """Counts per outcome with dimension Job (zeros included, so alarms see every run), and the quota."""
    metrics.add_dimension(name=c.JOB, value=result.job)
    metrics.add_metric(name=c.BACKUPS_CREATED, unit=MetricUnit.Count, value=len(result.created))
    metrics.add_metric(
        name=c.BACKUPS_ALREADY_EXISTED, unit=MetricUnit.Count, value=len(result.already_existed)
    )
    metrics.add_metric(name=c.BACKUPS_FAILED, unit=MetricUnit.Count, value=len(result.failed))
    publish_quota(result.quota)


def publish_prune_result(result: PruneResult, region: str | None = None) -> None:
    """Per kind (dimension Kind): deleted, kept, failures, remaining; the RDS quota without dimension.

    ``region``: the offsite region's run (its kinds only), every metric with the extra dimension
    Region=<region>; the home metrics never carry Region.
    """
    kept, failures = result.kept(), result.failures_by_kind()
    where = {c.REGION: region} if region else {}
    for kind in result.kinds if region else c.PRUNED_KINDS:
        for name, value in (
            (c.PRUNE_DELETED, result.deleted[kind]),
            (c.PRUNE_KEPT, kept[kind]),
            (c.PRUNE_FAILURES, failures[kind]),
            (c.PRUNE_REMAINING, result.remaining[kind]),
        ):
            _metric(name, MetricUnit.Count, value, {c.KIND: kind, **where})
    publish_quota(result.rds_quota, where or None)


def publish_prune_run(run: PruneRun) -> None:
    """The home result, then the offsite region's (if it ran) with the dimension Region."""
    publish_prune_result(run.home)
    if run.offsite is not None:
        publish_prune_result(run.offsite, region=run.offsite.region)


def publish_verify_result(result: VerifyResult) -> None:
    """Per Source+Kind the age of the newest good backup and VerificationPassed; per Kind the worst age
    (a source without any good backup counts as c.NO_GOOD_BACKUP_AGE_HOURS, so it cannot hide); failures.
    The offsite copies' checks publish the same with the extra dimension Region=<offsite region>."""
    worst: dict[tuple[str, str], float] = {}  # (region or "" at home, kind) -> worst age
    for check in (*result.checks, *result.offsite_checks):
        where = {c.REGION: check.region} if check.region else {}
        dims = {c.SOURCE: check.source, c.KIND: check.kind, **where}
        age = check.age_hours
        if age is not None:
            _metric(c.BACKUP_AGE_HOURS, MetricUnit.NoUnit, round(age, 2), dims)
        _metric(c.VERIFY_PASSED, MetricUnit.Count, 1.0 if check.ok else 0.0, dims)
        effective = c.NO_GOOD_BACKUP_AGE_HOURS if age is None else age
        key = (check.region, check.kind)
        worst[key] = max(worst.get(key, 0.0), effective)
    for (region, kind), age in sorted(worst.items()):
        where = {c.REGION: region} if region else {}
        _metric(c.WORST_BACKUP_AGE_HOURS, MetricUnit.NoUnit, round(age, 2), {c.KIND: kind, **where})
    metrics.add_metric(name=c.VERIFY_FAILURES, unit=MetricUnit.Count, value=result.failures)


def publish_restore_test_result(result: RestoreTestResult) -> None:
    metrics.add_metric(name=c.RESTORE_TEST_PASSED, unit=MetricUnit.Count, value=int(result.passed))
    metrics.add_metric(
        name=c.RESTORE_TEST_SECONDS, unit=MetricUnit.Seconds, value=round(result.duration_seconds, 3)
    )


def publish_drill_report(record: dict[str, Any]) -> None:
    """Passed 1/0; the achieved RTO when the school was restored; RTO exceeded 1/0 (a failed drill has
    no RTO: its alarm is the drill-failed one)."""
    metrics.add_metric(name=c.DRILL_PASSED, unit=MetricUnit.Count, value=int(record["result"] == "passed"))
    rto = record.get("rto_minutes")
    if rto is not None:
        metrics.add_metric(name=c.DRILL_RTO_MINUTES, unit=MetricUnit.Count, value=float(rto))
        exceeded = int(float(rto) > float(record["rto_target_minutes"]))
        metrics.add_metric(name=c.DRILL_RTO_EXCEEDED, unit=MetricUnit.Count, value=exceeded)


def publish_drill_cleanup(removed: int) -> None:
    metrics.add_metric(name=c.DRILL_LEFTOVERS, unit=MetricUnit.Count, value=removed)


def publish_iam_review_result(result: IamReviewResult) -> None:
    """Findings per severity (dimension Severity, zeros included) and the new high findings (no dimension,
    what the alarm watches), from the month's record (a repeated run publishes the same numbers)."""
    for severity, count in result.counts.items():
        _metric(c.IAM_FINDINGS, MetricUnit.Count, float(count), {c.SEVERITY: severity})
    _metric(c.IAM_NEW_HIGH_FINDINGS, MetricUnit.Count, float(result.new_high))


def read_emf(text: str) -> list[dict[str, Any]]:
    """Every metric in EMF lines as printed by the handlers: {"name", "value", "unit", "dimensions",
    "namespace", "timestamp_ms"}, dimensions exactly as published (what CloudWatch makes of them)."""
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        meta = blob["_aws"]
        for directive in meta["CloudWatchMetrics"]:
            dims = {d: blob[d] for group in directive["Dimensions"] for d in group}
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found.append(
                    {
                        "name": metric["Name"],
                        "value": value[0] if isinstance(value, list) else value,
                        "unit": metric.get("Unit", "None"),
                        "dimensions": dims,
                        "namespace": directive["Namespace"],
                        "timestamp_ms": meta.get("Timestamp"),
                    }
                )
    return found


def publish_copy_result(result: CopyResult) -> None:
    """Per copied kind the counts of :func:`publish_backup_result` with dimensions Job and Region=<offsite
    region> (zeros included), and the offsite region's RDS quota with dimension Region."""
    where = {c.REGION: result.region}
    for backup in result.results.values():
        dims = {c.JOB: backup.job, **where}
        _metric(c.BACKUPS_CREATED, MetricUnit.Count, float(len(backup.created)), dims)
        _metric(c.BACKUPS_ALREADY_EXISTED, MetricUnit.Count, float(len(backup.already_existed)), dims)
        _metric(c.BACKUPS_FAILED, MetricUnit.Count, float(len(backup.failed)), dims)
        publish_quota(backup.quota, where)
