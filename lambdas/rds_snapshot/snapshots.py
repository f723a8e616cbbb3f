"""Manual RDS snapshots of every selected DB instance (replaces rds_snapshot.sh).

Selection: instances tagged with the selection tag, plus the ids listed in RDS_INSTANCE_IDS.
Names derive from the scheduled time, so a retried or doubled run finds its snapshot instead of
making a second one. The manual-snapshot quota is read first: it is published as metrics, warned
about above 80 %, and a full quota gives a clear failure instead of a raw AWS error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import metric_names
from lambdas.common.backup_job import BackupResult
from lambdas.common.naming import JOB_RDS, backup_name, backup_tags
from lambdas.common.observability import logger
from lambdas.common.rds_quota import QUOTA_WARN_PERCENT, SnapshotQuota, read_snapshot_quota
from lambdas.common.settings import SelectionTag, SettingsError, env_list, tag_dict

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBClusterTypeDef, DBInstanceTypeDef, DBSnapshotTypeDef, TagTypeDef

AURORA_NOT_SUPPORTED: Final = (
    "Aurora clusters are not supported yet (cluster snapshots are not made by schoolbackup)"
)

_RDS_ID = re.compile(r"^[a-zA-Z](?:-?[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True)
class RdsSnapshotSettings:
    selection: SelectionTag
    instance_ids: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RdsSnapshotSettings:
        ids = env_list("RDS_INSTANCE_IDS", environ)
        bad = [i for i in ids if not _RDS_ID.match(i)]
        if bad:
            raise SettingsError(
                f"environment variable RDS_INSTANCE_IDS has invalid DB identifiers {bad}; "
                "expected comma-separated identifiers like school-db"
            )
        return cls(selection=SelectionTag.from_env(environ), instance_ids=ids)


def publish_quota(quota: SnapshotQuota) -> None:
    """Used, quota and percent as metrics of their own (no Job dimension); warn above 80 %."""
    for name, unit, value in (
        (metric_names.RDS_SNAPSHOTS_USED, MetricUnit.Count, float(quota.used)),
        (metric_names.RDS_SNAPSHOTS_QUOTA, MetricUnit.Count, float(quota.limit)),
        (metric_names.RDS_SNAPSHOTS_PERCENT, MetricUnit.Percent, round(quota.percent, 1)),
    ):
        with single_metric(name=name, unit=unit, value=value, namespace=metric_names.NAMESPACE):
            pass
    if quota.percent > QUOTA_WARN_PERCENT:
        logger.warning(
            f"RDS manual snapshot quota at {quota.percent:.0f} %: {quota.used} of {quota.limit} in use; "
            "let prune run or ask AWS for a higher quota",
            extra={"used": quota.used, "quota": quota.limit},
        )


def _quota_reached_message(quota: SnapshotQuota | None) -> str:
    usage = f": {quota.used} of {quota.limit} manual snapshots in use in this region" if quota else ""
    return (
        f"RDS manual snapshot quota reached{usage}; delete old snapshots (prune) "
        "or request a higher ManualSnapshots quota"
    )


def _instances(rds: RDSClient) -> dict[str, DBInstanceTypeDef]:
    pages = rds.get_paginator("describe_db_instances").paginate()
    return {i["DBInstanceIdentifier"]: i for page in pages for i in page.get("DBInstances", [])}


def _clusters(rds: RDSClient) -> dict[str, DBClusterTypeDef]:
    pages = rds.get_paginator("describe_db_clusters").paginate()
    return {c["DBClusterIdentifier"]: c for page in pages for c in page.get("DBClusters", [])}


def _tags(db_id: str) -> list[TagTypeDef]:
    return [{"Key": k, "Value": v} for k, v in backup_tags(JOB_RDS, db_id).items()]


def _error_text(err: ClientError | BotoCoreError) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', str(err))}"
    return str(err)


def _existing_snapshot(rds: RDSClient, name: str) -> DBSnapshotTypeDef | None:
    try:
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=name, SnapshotType="manual")["DBSnapshots"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "DBSnapshotNotFound":
            return None
        raise
    return found[0] if found else None


def create_snapshots(rds: RDSClient, settings: RdsSnapshotSettings, when: datetime) -> BackupResult:
    """Snapshot every selected instance once for ``when``; failures are collected, not raised."""
    result = BackupResult(job=JOB_RDS)
    quota = read_snapshot_quota(rds)
    if quota is not None:
        publish_quota(quota)

    listed = set(settings.instance_ids)
    instances = _instances(rds)
    clusters = _clusters(rds)

    # Aurora: the cluster is the unit of backup; its member instances cannot be snapshotted one by one.
    aurora: set[str] = {
        cid
        for cid, c in clusters.items()
        if settings.selection.matches(tag_dict(c.get("TagList"))) or cid in listed
    }
    selected: list[DBInstanceTypeDef] = []
    for db_id, instance in sorted(instances.items()):
        if not (settings.selection.matches(tag_dict(instance.get("TagList"))) or db_id in listed):
            continue
        cluster_id = instance.get("DBClusterIdentifier")
        if cluster_id:
            logger.info("skipping Aurora member instance", extra={"db": db_id, "cluster": cluster_id})
            aurora.add(cluster_id)
        else:
            selected.append(instance)
    for cluster_id in sorted(aurora):
        result.add_failed(cluster_id, AURORA_NOT_SUPPORTED)
    for missing in sorted(listed - set(instances) - set(clusters)):
        result.add_failed(missing, "listed in RDS_INSTANCE_IDS but no such DB instance exists in this region")

    for instance in selected:
        db_id = instance["DBInstanceIdentifier"]
        name = backup_name(db_id, when)
        try:
            quota = _snapshot_one(rds, instance, name, quota, result)
        except (ClientError, BotoCoreError) as err:
            result.add_failed(db_id, _error_text(err))
    logger.info("rds snapshots done", extra={"result": result.as_dict()})
    return result


def _snapshot_one(
    rds: RDSClient, instance: DBInstanceTypeDef, name: str, quota: SnapshotQuota | None, result: BackupResult
) -> SnapshotQuota | None:
    """One instance; returns the quota as it stands afterwards."""
    db_id = instance["DBInstanceIdentifier"]
    existing = _existing_snapshot(rds, name)
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
            Tags=_tags(db_id),
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if code == "DBSnapshotAlreadyExists":  # a concurrent run won the race
            result.add_already_existed(name, source=db_id)
            return quota
        if code == "SnapshotQuotaExceeded":
            result.add_failed(db_id, _quota_reached_message(quota))
            return quota
        raise
    result.add_created(name, source=db_id)
    return None if quota is None else SnapshotQuota(used=quota.used + 1, limit=quota.limit)
