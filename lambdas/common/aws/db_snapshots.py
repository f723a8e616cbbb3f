"""schoolbackup's RDS manual snapshots, listed once for prune, verify and report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from lambdas.common.aws.errors import error_code
from lambdas.common.contracts import is_managed, tag_dict

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBSnapshotTypeDef

# The largest page RDS allows: fewest listing calls. Tags come with the listing (TagList).
RDS_PAGE_SIZE: Final = 100


def managed_db_snapshots(rds: RDSClient) -> list[DBSnapshotTypeDef]:
    """Every manual snapshot tagged ``ManagedBy=schoolbackup``."""
    found: list[DBSnapshotTypeDef] = []
    for page in rds.get_paginator("describe_db_snapshots").paginate(
        SnapshotType="manual", PaginationConfig={"PageSize": RDS_PAGE_SIZE}
    ):
        found.extend(s for s in page.get("DBSnapshots", []) if is_managed(tag_dict(s.get("TagList"))))
    return found


def db_snapshot_named(rds: RDSClient, name: str) -> DBSnapshotTypeDef | None:
    """The manual snapshot ``name`` of this region, or None when there is none."""
    try:
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=name, SnapshotType="manual")["DBSnapshots"]
    except ClientError as err:
        if error_code(err) == "DBSnapshotNotFound":
            return None
        raise
    return found[0] if found else None
