"""schoolbackup's AMIs and their EBS snapshots, read once for ami_backup, prune, verify and report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from lambdas.common.contracts import JOB_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, is_managed, tag_dict

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, ImageTypeDef, SnapshotTypeDef

# The largest page EC2 allows: fewest listing calls.
EC2_PAGE_SIZE: Final = 1000
# Values per filter that EC2 accepts in one request.
FILTER_VALUES: Final = 200


def managed_filter(job: str | None = None) -> list[FilterTypeDef]:
    """Only what carries ``ManagedBy=schoolbackup`` (and, with ``job``, ``BackupJob=<job>``)."""
    filters: list[FilterTypeDef] = [{"Name": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]}]
    if job is not None:
        filters.append({"Name": f"tag:{JOB_KEY}", "Values": [job]})
    return filters


def snapshot_ids(image: ImageTypeDef) -> list[str]:
    """The EBS snapshots an image needs, in the order of its block device mappings."""
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if "Ebs" in m and m["Ebs"].get("SnapshotId")
    ]


def mappings_without_snapshot(image: ImageTypeDef) -> int:
    """EBS mappings that name no snapshot yet (an image that is still pending)."""
    return sum(
        1 for m in image.get("BlockDeviceMappings", []) if "Ebs" in m and not m["Ebs"].get("SnapshotId")
    )


def managed_images(ec2: EC2Client, job: str | None = None, *, hidden_too: bool = False) -> list[ImageTypeDef]:
    """Our AMIs (``hidden_too``: also disabled and deprecated ones, which still hold snapshots)."""
    images: list[ImageTypeDef] = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"],
        Filters=managed_filter(job),
        IncludeDeprecated=hidden_too,
        IncludeDisabled=hidden_too,
        PaginationConfig={"PageSize": EC2_PAGE_SIZE},
    ):
        images.extend(i for i in page.get("Images", []) if is_managed(tag_dict(i.get("Tags"))))
    return images


def managed_snapshots(ec2: EC2Client) -> dict[str, SnapshotTypeDef]:
    """Our EBS snapshots by id (the filter does it; the tag is checked again, never trusting one check)."""
    found: dict[str, SnapshotTypeDef] = {}
    for page in ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=managed_filter(), PaginationConfig={"PageSize": EC2_PAGE_SIZE}
    ):
        for snap in page.get("Snapshots", []):
            if is_managed(tag_dict(snap.get("Tags"))):
                found[snap["SnapshotId"]] = snap
    return found


def snapshots_by_id(ec2: EC2Client, ids: Iterable[str]) -> dict[str, SnapshotTypeDef]:
    """These snapshots (one call per 200 ids). A filter, not SnapshotIds, so a deleted snapshot is
    simply absent instead of failing the whole call."""
    wanted = sorted(set(ids))
    found: dict[str, SnapshotTypeDef] = {}
    for start in range(0, len(wanted), FILTER_VALUES):
        chunk = wanted[start : start + FILTER_VALUES]
        pages = ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": chunk}]
        )
        for page in pages:
            found.update({s["SnapshotId"]: s for s in page.get("Snapshots", [])})
    return found


def snapshot_states(ec2: EC2Client, ids: Iterable[str]) -> dict[str, str]:
    """The state of each snapshot that exists; a missing one is absent."""
    return {sid: snap.get("State", "unknown") for sid, snap in snapshots_by_id(ec2, ids).items()}
