"""Manual RDS snapshots of every selected DB instance (replaces rds_snapshot.sh).

Selection: see lambdas.common.aws.selection (tagged or listed; Aurora is reported, not skipped). Names
derive from the scheduled time, so a retried or doubled run finds its snapshot instead of making a
second one. The manual-snapshot quota is read first: it is returned for publishing, warned about
above 80 %, and a full quota gives a clear failure instead of a raw AWS error.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.aws.db_snapshots import db_snapshot_named
from lambdas.common.aws.errors import error_code, error_text
from lambdas.common.aws.quota import QUOTA_WARN_PERCENT, SnapshotQuota, read_snapshot_quota
from lambdas.common.aws.selection import AURORA_NOT_SUPPORTED, MISSING_RDS, selected_databases
from lambdas.common.contracts import JOB_RDS, aws_tags, backup_name, backup_tags
from lambdas.common.jobs.backup_result import BackupResult
from lambdas.common.observability import logger
from lambdas.common.settings import RdsSnapshotSettings

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef


def _quota_reached_message(quota: SnapshotQuota | None) -> str:
    usage = f": {quota.used} of {quota.limit} manual snapshots in use in this region" if quota else ""
    return (
        f"RDS manual snapshot quota reached{usage}; delete old snapshots (prune) "
        "or request a higher ManualSnapshots quota"
    )


def _warn_about(quota: SnapshotQuota) -> None:
    if quota.percent > QUOTA_WARN_PERCENT:
        logger.warning(
            f"RDS manual snapshot quota at {quota.percent:.0f} %: {quota.used} of {quota.limit} in use; "
            "let prune run or ask AWS for a higher quota",
            extra={"used": quota.used, "quota": quota.limit},
        )


def create_snapshots(rds: RDSClient, settings: RdsSnapshotSettings, when: datetime) -> BackupResult:
    """Snapshot every selected instance once for ``when``; failures are collected, not raised."""
    result = BackupResult(job=JOB_RDS)
    quota = result.quota = read_snapshot_quota(rds)  # published as AWS reported it
    if quota is not None:
        _warn_about(quota)
    selected = selected_databases(rds, settings.selection, settings.instance_ids)
    for member, cluster in sorted(selected.aurora_members.items()):
        logger.info("skipping Aurora member instance", extra={"db": member, "cluster": cluster})
    for cluster_id in selected.aurora_clusters:
        result.add_failed(cluster_id, AURORA_NOT_SUPPORTED)
    for missing in selected.missing:
        result.add_failed(missing, MISSING_RDS)
    for db_id in selected.ids:
        try:
            quota = _snapshot_one(rds, selected.instances[db_id], backup_name(db_id, when), quota, result)
        except (ClientError, BotoCoreError) as err:
            result.add_failed(db_id, error_text(err))
    logger.info("rds snapshots done", extra={"result": result.as_dict()})
    return result


def _snapshot_one(
    rds: RDSClient, instance: DBInstanceTypeDef, name: str, quota: SnapshotQuota | None, result: BackupResult
) -> SnapshotQuota | None:
    """One instance; returns the quota as it stands afterwards."""
    db_id = instance["DBInstanceIdentifier"]
    existing = db_snapshot_named(rds, name)
    if existing is not None:
        result.add_already_existed(name, source=db_id, status=existing.get("Status"))
        return quota
    status = instance.get("DBInstanceStatus", "unknown")
    if status != "available":
        result.add_failed(db_id, f"DB instance is {status!r}, not 'available'; no snapshot {name} was made")
        return quota
    if quota is not None and quota.reached:
        result.add_failed(db_id, _quota_reached_message(quota))
        return quota
    try:
        rds.create_db_snapshot(
            DBSnapshotIdentifier=name,
            DBInstanceIdentifier=db_id,
            Tags=aws_tags(backup_tags(JOB_RDS, db_id)),
        )
    except ClientError as err:
        code = error_code(err)
        if code == "DBSnapshotAlreadyExists":  # a concurrent run won the race
            result.add_already_existed(name, source=db_id)
            return quota
        if code == "SnapshotQuotaExceeded":
            result.add_failed(db_id, _quota_reached_message(quota))
            return quota
        raise
    result.add_created(name, source=db_id)
    return None if quota is None else SnapshotQuota(used=quota.used + 1, limit=quota.limit)
