"""Which EC2 and RDS instances are selected for backup: one rule for every job (DESIGN.md, Selection).

Selected are the instances that carry the selection tag and the ones listed by id. An instance that
is terminated (or shutting down) is never selected: a tagged one is reported as gone (ami_backup says
it could not image it, verify no longer expects backups of it), a listed id that does not exist or is
terminated is reported as missing (every job says so). For RDS, Aurora
is reported separately: the cluster is its unit of backup, and schoolbackup does not make cluster
snapshots yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from lambdas.common.contracts import JOB_DRILL, JOB_KEY, tag_dict
from lambdas.common.settings import SelectionTag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef

LIVE_EC2_STATES: Final = ("pending", "running", "stopping", "stopped")


def is_drill(tags: object) -> bool:
    """A restore drill's temporary server or database (``BackupJob=drill``): never a source of backups,
    whatever other tags it carries (an AMI's or a snapshot's copied ``Backup=true``)."""
    return tag_dict(tags).get(JOB_KEY) == JOB_DRILL


AURORA_NOT_SUPPORTED: Final = (
    "Aurora clusters are not supported yet (cluster snapshots are not made by schoolbackup)"
)


MISSING_EC2: Final = (
    "listed in EC2_INSTANCE_IDS but no such instance exists in this region (or it is terminated)"
)
MISSING_RDS: Final = "listed in RDS_INSTANCE_IDS but no such DB instance exists in this region"


@dataclass(frozen=True)
class SelectedServers:
    instances: dict[str, InstanceTypeDef]  # by instance id, live ones only
    missing: tuple[str, ...] = ()  # listed ids that do not exist or are terminated
    gone: dict[str, str] = field(default_factory=dict)  # tagged, terminated or shutting down: id -> state

    @property
    def ids(self) -> list[str]:
        return sorted(self.instances)


@dataclass(frozen=True)
class SelectedDatabases:
    instances: dict[str, DBInstanceTypeDef]  # by DB identifier, Aurora members left out
    aurora_clusters: tuple[str, ...] = ()  # selected clusters, or clusters of selected members
    missing: tuple[str, ...] = ()  # listed ids that are neither an instance nor a cluster
    aurora_members: dict[str, str] = field(default_factory=dict)  # member id -> cluster id

    @property
    def ids(self) -> list[str]:
        return sorted(self.instances)


def selected_servers(ec2: EC2Client, selection: SelectionTag, listed: Iterable[str] = ()) -> SelectedServers:
    """EC2 instances with the selection tag, plus the listed ones (one query each), split by liveness."""
    ids = sorted(set(listed))
    queries: list[list[FilterTypeDef]] = [[{"Name": f"tag:{selection.key}", "Values": [selection.value]}]]
    if ids:
        queries.append([{"Name": "instance-id", "Values": ids}])
    found: dict[str, InstanceTypeDef] = {}
    for filters in queries:
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    if not is_drill(instance.get("Tags")):
                        found[instance["InstanceId"]] = instance
    live = {i: x for i, x in found.items() if x.get("State", {}).get("Name") in LIVE_EC2_STATES}
    gone = {
        i: x.get("State", {}).get("Name", "unknown")
        for i, x in sorted(found.items())
        if i not in live and i not in ids
    }
    return SelectedServers(live, tuple(i for i in ids if i not in live), gone)


def selected_databases(
    rds: RDSClient, selection: SelectionTag, listed: Iterable[str] = ()
) -> SelectedDatabases:
    """DB instances with the selection tag, plus the listed ones; Aurora clusters named apart."""
    ids = set(listed)
    instances = {
        i["DBInstanceIdentifier"]: i
        for page in rds.get_paginator("describe_db_instances").paginate()
        for i in page.get("DBInstances", [])
        if not is_drill(i.get("TagList"))
    }
    clusters = {
        c["DBClusterIdentifier"]: c
        for page in rds.get_paginator("describe_db_clusters").paginate()
        for c in page.get("DBClusters", [])
    }
    aurora = {
        cid for cid, c in clusters.items() if selection.matches(tag_dict(c.get("TagList"))) or cid in ids
    }
    chosen: dict[str, DBInstanceTypeDef] = {}
    members: dict[str, str] = {}
    for db_id, instance in sorted(instances.items()):
        if not (selection.matches(tag_dict(instance.get("TagList"))) or db_id in ids):
            continue
        cluster_id = instance.get("DBClusterIdentifier")
        if cluster_id:  # an Aurora member cannot be snapshotted on its own
            members[db_id] = cluster_id
            aurora.add(cluster_id)
        else:
            chosen[db_id] = instance
    missing = tuple(sorted(ids - set(instances) - set(clusters)))
    return SelectedDatabases(chosen, tuple(sorted(aurora)), missing, members)


def source_names(servers: SelectedServers, databases: SelectedDatabases) -> dict[str, str]:
    """The ``Name`` tag of every selected server and database, by id (what the admin calls them)."""
    names = {i: tag_dict(x.get("Tags")).get("Name", "") for i, x in servers.instances.items()}
    names |= {i: tag_dict(x.get("TagList")).get("Name", "") for i, x in databases.instances.items()}
    return {k: v for k, v in names.items() if v}
